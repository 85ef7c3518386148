"""SmallResNet, the backbone of the image example, through SWR and the block-based baselines."""

import keras
import numpy as np

import swr_keras
from swr_keras.models import SmallResNet
from swr_keras.module_methods import blocks
from tests.models.backbone_checks import (
    assert_keras_round_trip,
    assert_merge_equals_reparametrized,
    assert_zero_delta_equals_base,
)


def images(batch, size=24, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


def test_counts_and_layers():
    model = SmallResNet(10, input_shape=(40, 40, 3))
    assert swr_keras.cost.count_parameters(model) == 308_826
    assert model.count_params() == 308_826 + 1_440
    assert len(swr_keras.reparam_layers(swr_keras.reparametrize(model))) == 12
    layout = blocks.block_layout(swr_keras.models.feature_extractor(model))
    assert layout.num_blocks == 4 and layout.stage_starts == (0, 1, 2, 3)


def test_swr_invariants_and_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = SmallResNet(5, input_shape=(24, 24, 3), widths=(4, 8, 8, 8))
    x = images(4)
    assert_zero_delta_equals_base(model, x)
    assert_merge_equals_reparametrized(model, x)
    assert_keras_round_trip(model, x, str(tmp_path / "small.keras"))
