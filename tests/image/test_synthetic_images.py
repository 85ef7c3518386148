"""The synthetic image corpus: deterministic, in the ImageFolder layout, domains that differ."""

import os

import numpy as np
from PIL import Image

from swr_keras.data import synthetic_images
from swr_keras.data.synthetic_images import corpus, render

TINY = {domain: synthetic_images.DomainSize(train=2, test=1) for domain in render.DOMAINS}


def _pixels(root):
    """`{relative path: pixels}` of every PNG under `root`."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".png"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, root)] = np.asarray(Image.open(path))
    return found


def test_the_corpus_is_the_same_wherever_and_however_often_it_is_made(tmp_path):
    first = synthetic_images.ensure_corpus(tmp_path / "a", sizes=TINY, progress=False)
    second = synthetic_images.ensure_corpus(tmp_path / "b", sizes=TINY, progress=False)
    a, b = _pixels(first), _pixels(second)
    assert len(a) == len(render.DOMAINS) * len(synthetic_images.CLASS_NAMES) * 3
    assert a.keys() == b.keys()
    for path in a:
        np.testing.assert_array_equal(a[path], b[path], err_msg=path)
    # Made once: a second call finds the domains and writes nothing.
    stamp = os.path.getmtime(os.path.join(first, "sketch", "train", "star", "0000.png"))
    synthetic_images.ensure_corpus(tmp_path / "a", sizes=TINY, progress=False)
    assert os.path.getmtime(os.path.join(first, "sketch", "train", "star", "0000.png")) == stamp


def test_the_layout_is_imagefolder_with_every_class_in_both_splits(tmp_path):
    root = synthetic_images.ensure_corpus(tmp_path, sizes=TINY, progress=False)
    for domain in render.DOMAINS:
        for split, count in (("train", 2), ("test", 1)):
            classes = sorted(os.listdir(os.path.join(root, domain, split)))
            assert classes == list(synthetic_images.CLASS_NAMES)
            for name in classes:
                assert len(os.listdir(os.path.join(root, domain, split, name))) == count


def test_images_depend_on_seed_domain_split_and_index_only():
    image = corpus.render_image("sketch", "train", "star", 3, seed=0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, corpus.render_image("sketch", "train", "star", 3, seed=0))
    for other in (
        corpus.render_image("sketch", "train", "star", 3, seed=1),
        corpus.render_image("sketch", "train", "star", 4, seed=0),
        corpus.render_image("sketch", "test", "star", 3, seed=0),
        corpus.render_image("painting", "train", "star", 3, seed=0),
    ):
        assert np.abs(other.astype(int) - image).mean() > 5


def test_the_domains_are_shifted_sketches_are_grey_photos_are_coloured():
    sketches = [corpus.render_image("sketch", "train", n, 0) for n in synthetic_images.CLASS_NAMES]
    photos = [corpus.render_image("photo", "train", n, 0) for n in synthetic_images.CLASS_NAMES]
    spread = [np.ptp(image.astype(int), axis=2).mean() for image in sketches]
    assert max(spread) < 8  # grey pencil on paper
    assert min(np.ptp(image.astype(int), axis=2).mean() for image in photos) > 10
