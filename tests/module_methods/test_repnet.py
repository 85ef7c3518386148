"""Rep-Net: side modules on a frozen backbone, and what a task stores."""

import math

import keras
import numpy as np
import pytest

from swr_keras import cost
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.models import classifier, feature_extractor
from swr_keras.module_methods import module_state
from swr_keras.module_methods.repnet import (
    ResizeLike,
    WeightStandardizedConv2D,
    build_repnet,
    make_divisible,
)
from tests.module_methods import helpers

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True


def side_layers(model):
    features = feature_extractor(model)
    return [layer for layer in features.layers if layer.name.startswith("program")]


def backbone_parts(model):
    features = feature_extractor(model)
    return [
        layer
        for layer in features.layers
        if isinstance(layer, keras.Model) and not layer.name.startswith("program")
    ]


def test_weight_standardised_conv_standardises_each_filter():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 9, 4)).astype("float32")
    conv = WeightStandardizedConv2D(6, 3, groups=2, padding="same", use_bias=False)
    conv.build(x.shape)
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    standard = (kernel - kernel.mean(axis=(0, 1, 2))) / (kernel.std(axis=(0, 1, 2), ddof=1) + 1e-5)
    plain = keras.layers.Conv2D(6, 3, groups=2, padding="same", use_bias=False)
    plain.build(x.shape)
    plain.set_weights([standard])
    helpers.assert_close(conv(x), plain(x), atol=1e-5)


def test_resize_like_and_make_divisible():
    source = np.ones((2, 3, 5, 4), "float32")
    target = np.zeros((2, 6, 11, 1), "float32")
    assert tuple(ResizeLike()([source, target]).shape) == (2, 6, 11, 4)
    helpers.assert_close(ResizeLike()([source, target]), np.ones((2, 6, 11, 4)))
    assert [make_divisible(c) for c in (45, 64, 12, 3)] == [48, 64, 16, 8]


def test_starts_as_the_backbone_with_one_module_per_stage(backbones, data):
    x, _ = data
    for name, model in backbones:
        repnet = build_repnet(model)
        final_norms = [layer for layer in side_layers(repnet) if layer.name.endswith("_final_bn")]
        assert len(final_norms) == (4 if name == "bc_resnet1" else 2)
        helpers.assert_close(repnet(x, training=False), model(x, training=False))
        for norm in final_norms:  # a side module that outputs something changes the model
            norm.gamma.assign(np.ones(norm.gamma.shape, "float32"))
        assert not np.allclose(repnet(x, training=False), model(x, training=False), atol=1e-3)


@pytest.fixture(scope="module")
def trained(backbones, data):
    x, y = data
    runs = []
    for name, model in backbones:
        repnet = build_repnet(model)
        # The zero scale of the last BN blocks the modules' gradients at the
        # very first step; a trained-looking scale lets every module learn.
        for layer in side_layers(repnet):
            if layer.name.endswith("_final_bn"):
                layer.gamma.assign(np.full(layer.gamma.shape, 0.5, "float32"))
        runs.append((name, model, repnet, helpers.train_one_step(repnet, x, y)))
    return runs


def test_one_step_trains_modules_biases_and_classifier_only(trained):
    for _, _, repnet, changed in trained:
        side = {id(v) for layer in side_layers(repnet) for v in layer.weights}
        norms = [norm for part in backbone_parts(repnet) for norm in batch_norm_layers(part)]
        biases = {id(norm.beta) for norm in norms if norm.beta is not None}
        allowed = side | biases | helpers.statistics_of(norms)
        allowed |= {id(v) for v in classifier(repnet).weights}
        frozen = {
            id(layer.kernel)
            for part in backbone_parts(repnet)
            for layer in iter_layers(part)
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
        }
        frozen |= {id(norm.gamma) for norm in norms if norm.gamma is not None}
        assert frozen and not changed & frozen
        assert changed <= allowed
        convolutions = [layer for layer in side_layers(repnet) if "_conv" in layer.name]
        assert {id(layer.kernel) for layer in convolutions} <= changed


def test_stored_task_counts_and_restores(trained, data, tmp_path):
    x, _ = data
    for name, model, repnet, _ in trained:
        learnable, statistics = module_state.stored_tensors(repnet)
        statistics_ids = helpers.statistics_of(batch_norm_layers(repnet))
        frozen_parameters = sum(
            math.prod(v.shape)
            for v in module_state.distinct_weights(repnet)
            if not v.trainable and id(v) not in statistics_ids
        )
        stored = sum(a.size for a in learnable.values())
        assert stored == cost.count_parameters(repnet) - frozen_parameters
        assert statistics

        restored = module_state.assign_stored_tensors(build_repnet(model), learnable, statistics)
        helpers.assert_close(restored(x, training=False), repnet(x, training=False))
        path = tmp_path / f"{name}.keras"
        repnet.save(path)
        loaded = keras.models.load_model(path)
        helpers.assert_close(loaded(x, training=False), repnet(x, training=False))
