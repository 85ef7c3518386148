"""Tiny causal models with random weights and BN statistics for the streaming tests."""

import numpy as np
import pytest

import swr_keras
from swr_keras.models import BCResNet

NUM_CLASSES = 5


def random_causal_model(seed=0, causal=True):
    """A BC-ResNet-1 with random BN statistics (so BN is not the identity)."""
    model = BCResNet(tau=1, num_classes=NUM_CLASSES, causal=causal)
    rng = np.random.default_rng(seed)
    for norm in swr_keras.batch_norm_layers(model):
        norm.moving_mean.assign(rng.normal(0, 0.1, norm.moving_mean.shape))
        norm.moving_variance.assign(rng.uniform(0.5, 1.5, norm.moving_variance.shape))
    return model


@pytest.fixture(scope="module")
def causal_model():
    return random_causal_model()
