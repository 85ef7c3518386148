"""Tiny image data for the image tests: a synthetic corpus cache and a tiny backbone."""

import keras
import numpy as np
import pytest

from swr_keras import models
from swr_keras.data import synthetic_images
from swr_keras.data.synthetic_images import render

TINY_SIZES = {domain: synthetic_images.DomainSize(train=3, test=2) for domain in render.DOMAINS}
TINY_IMAGE_SIZE = 24


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory):
    """`$SWR_KERAS_CACHE` with a tiny synthetic image corpus (3 + 2 images per class)."""
    cache = tmp_path_factory.mktemp("image_cache")
    synthetic_images.ensure_corpus(cache, sizes=TINY_SIZES, progress=False)
    return str(cache)


def tiny_small_resnet(num_classes=10, seed=3):
    """A narrow SmallResNet with BN statistics away from 0/1, as after pre-training."""
    keras.utils.set_random_seed(seed)
    model = models.SmallResNet(
        num_classes, input_shape=(TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3), widths=(4, 8, 8, 8)
    )
    batch = np.random.default_rng(seed).normal(size=(8, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3))
    for _ in range(3):
        model(batch.astype("float32"), training=True)
    return model


@pytest.fixture(scope="session")
def tiny_backbone_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("image_backbone") / "model.keras")
    tiny_small_resnet().save(path)
    return path
