"""The synthetic corpus goes through the real loaders: formats agree end to end."""

import numpy as np
import pytest

from swr_keras.data import gsc2, mc_kws, multilingual, synthetic
from swr_keras.data.pipeline import make_dataset


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    gsc_root = synthetic.make_gsc_corpus(
        root / "gsc2",
        num_speakers=12,
        clips_per_word=1,
        background_noise_seconds=3.0,
        num_workers=1,
        seed=3,
    )
    mc_root = synthetic.make_mc_kws_corpus(
        root / "mc_kws",
        num_speakers=6,
        clips_per_word=1,
        num_workers=1,
        seed=3,
    )
    return gsc_root, mc_root


def test_gsc2_loader_reads_the_synthetic_tree(corpus):
    listed = gsc2.list_gsc2(corpus[0])
    assert listed.class_names == gsc2.CLASS_NAMES
    train = listed.class_counts("train")
    for keyword in gsc2.KEYWORDS:
        assert train[keyword] > 0, keyword
    features, labels = next(iter(make_dataset(listed, "train", batch_size=8, augment_mode="train")))
    assert features.shape[1:] == (40, 101, 1)
    assert np.all(np.isfinite(features.numpy())) and labels.shape == (8,)


def test_mc_kws_loader_maps_the_synthetic_keywords(corpus):
    listed = mc_kws.list_mc_kws(
        corpus[1], noise_dir=f"{corpus[0]}/_background_noise_", crop="start"
    )
    mapping = mc_kws.load_mapping(mc_kws.DEFAULT_MAPPING)
    assert len(listed.class_names) == 12
    assert list(listed.class_names[2:]) == mapping["known"]
    assert sum(listed.class_counts("test").values()) > 0
    features, _ = next(iter(make_dataset(listed, "test", batch_size=4)))
    assert features.shape[1:3] == (40, 225)


def test_multilingual_union_has_both_languages(corpus):
    listed = multilingual.list_multilingual(corpus[0], corpus[1], mc_kws_options={"crop": "start"})
    assert len(listed.class_names) == 22
    counts = listed.class_counts("train")
    assert all(counts[name] > 0 for name in listed.class_names), counts
