"""The 22-class English + Mandarin union."""

import json

import numpy as np
import pytest

from swr_keras.data import gsc2, mc_kws, multilingual, pipeline
from tests.data.conftest import GSC_KEYWORDS, MC_KNOWN, gsc_frequency, mc_frequency


@pytest.fixture(scope="module")
def corpus(gsc2_root, mc_kws_root, mapping_path):
    return multilingual.list_multilingual(gsc2_root, mc_kws_root, mapping_path)


def test_class_names(corpus):
    assert corpus.class_names == (("_silence_", "_unknown_") + GSC_KEYWORDS + MC_KNOWN)
    assert len(corpus.class_names) == 22


def test_counts_are_the_union(corpus, gsc2_root, mc_kws_root, mapping_path):
    english = gsc2.list_gsc2(gsc2_root, clip_seconds=1.2)
    mandarin = mc_kws.list_mc_kws(mc_kws_root, f"{gsc2_root}/_background_noise_", mapping_path)
    for split in pipeline.SPLITS:
        union, en, zh = (c.class_counts(split) for c in (corpus, english, mandarin))
        for name in ("_silence_", "_unknown_"):
            assert union[name] == en[name] + zh[name]
        assert all(union[k] == en[k] for k in GSC_KEYWORDS)
        assert all(union[k] == zh[k] for k in MC_KNOWN)


def test_waveforms_carry_their_labels(corpus):
    assert corpus.clip_samples == int(1.2 * 16000)  # the mapping's clip length
    dataset = pipeline.make_dataset(corpus, "test", batch_size=64, features=False)
    languages = set()
    for waves, labels in dataset:
        assert waves.shape[1] == corpus.clip_samples
        for wave, label in zip(waves.numpy(), labels.numpy()):
            name = corpus.class_names[label]
            if name in ("_silence_", "_unknown_"):
                continue
            hz = np.argmax(np.abs(np.fft.rfft(wave))) * 16000 / len(wave)
            if name in GSC_KEYWORDS:
                assert abs(hz - gsc_frequency(name)) < 20
                languages.add("en")
            else:
                assert abs(hz - mc_frequency(name)) < 20
                languages.add("zh")
    assert languages == {"en", "zh"}


def test_training_features(corpus):
    x, y = next(iter(pipeline.make_dataset(corpus, "train", batch_size=8)))
    assert x.shape == (8, 40, 1 + corpus.clip_samples // 160, 1)
    assert y.numpy().max() < 22


def test_name_clash(tmp_path, gsc2_root, mc_kws_root):
    path = tmp_path / "clash.json"
    path.write_text(
        json.dumps({"known": ["yes"], "unknown": [], "excluded": [], "clip_seconds": 2.24})
    )
    with pytest.raises(ValueError, match=r"\['yes'\].*clash with GSC2"):
        multilingual.list_multilingual(gsc2_root, mc_kws_root, str(path))


def test_training_order_mixes_languages(corpus):
    waves = pipeline.waveform_dataset(corpus, "train", seed=0)
    labels = np.array([int(y) for _, y in waves])
    english = (labels >= 2) & (labels < 12)
    mandarin = labels >= 12
    assert len(labels) == sum(len(t) for t in corpus.splits["train"])
    # Both languages appear in the first and in the last quarter.
    quarter = len(labels) // 4
    for part in (slice(0, quarter), slice(-quarter, None)):
        assert english[part].any() and mandarin[part].any()
