"""Residual Adapter: the parallel 1x1 adapter, its model transform and what a task stores."""

import math

import keras
import numpy as np
import pytest

from swr_keras import cost
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.models import classifier
from swr_keras.module_methods import module_state
from swr_keras.module_methods.residual_adapter import (
    ParallelAdapter,
    adapters,
    add_residual_adapters,
)
from tests.module_methods import helpers

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

CENTRE_CASES = [
    (keras.layers.Conv2D, dict(filters=5, kernel_size=5, strides=(2, 1), padding="valid")),
    (keras.layers.Conv2D, dict(filters=4, kernel_size=3, padding="same", dilation_rate=2)),
    (keras.layers.DepthwiseConv2D, dict(kernel_size=(3, 1), padding="valid")),
    (keras.layers.DepthwiseConv2D, dict(kernel_size=(5, 5), strides=2, padding="valid")),
    (keras.layers.DepthwiseConv2D, dict(kernel_size=(1, 3), padding="same", dilation_rate=(1, 4))),
]


@pytest.mark.parametrize("layer_class, config", CENTRE_CASES)
def test_adapter_is_a_delta_on_the_kernel_centre(layer_class, config):
    """A 1x1 adapter beside a k x k conv equals adding its kernel to the centre tap."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 11, 13, 3)).astype("float32")
    conv = layer_class(use_bias=False, **config)
    conv.build(x.shape)
    conv.set_weights([rng.normal(size=w.shape).astype("float32") for w in conv.get_weights()])
    wrapped = ParallelAdapter(layer_class.from_config(conv.get_config()))
    wrapped.build(x.shape)
    wrapped.conv.set_weights(conv.get_weights())
    helpers.assert_close(wrapped(x), conv(x))  # zero-initialised adapter

    delta = rng.normal(size=wrapped.adapter.kernel.shape).astype("float32")
    wrapped.adapter.kernel.assign(delta)
    kernel = conv.get_weights()[0]
    centre = tuple((k - 1) // 2 for k in conv.kernel_size)
    kernel[centre] += delta[0, 0]
    conv.set_weights([kernel])
    helpers.assert_close(wrapped(x), conv(x), atol=1e-5)


@pytest.mark.parametrize("mode", ["channelwise", "pointwise"])
def test_starts_as_the_backbone(mode, backbones, data):
    x, _ = data
    for _, model in backbones:
        adapted = add_residual_adapters(model, depthwise_adapter=mode)
        assert adapters(adapted)
        helpers.assert_close(adapted(x, training=False), model(x, training=False))


def test_spatial_convolutions_only_by_default(backbones):
    _, model = backbones[0]
    spatial = [
        layer
        for layer in iter_layers(model)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
        and max(layer.kernel_size) > 1
    ]
    assert len(adapters(add_residual_adapters(model))) == len(spatial)
    everything = add_residual_adapters(model, adapt_pointwise=True)
    assert len(adapters(everything)) > len(spatial)


@pytest.fixture(scope="module")
def trained(backbones, data):
    """`[(name, backbone, adapted model, changed variable ids)]` after one step."""
    x, y = data
    runs = []
    for name, model in backbones:
        adapted = add_residual_adapters(model)
        runs.append((name, model, adapted, helpers.train_one_step(adapted, x, y)))
    return runs


def test_one_step_trains_only_adapters_batch_norm_and_classifier(trained):
    for _, _, adapted, changed in trained:
        allowed = {id(layer.adapter.kernel) for layer in adapters(adapted)}
        allowed |= {id(v) for layer in batch_norm_layers(adapted) for v in layer.weights}
        allowed |= {id(v) for v in classifier(adapted).weights}
        frozen = {id(layer.conv.kernel) for layer in adapters(adapted)}
        assert changed <= allowed
        assert not changed & frozen
        assert {id(layer.adapter.kernel) for layer in adapters(adapted)} & changed


def test_stored_task_counts_its_parameters(trained):
    for _, _, adapted, _ in trained:
        learnable, statistics = module_state.stored_tensors(adapted)
        frozen_kernels = sum(
            math.prod(layer.kernel.shape)
            for layer in iter_layers(adapted)
            if type(layer) in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
            and not layer.trainable
        )
        stored = sum(a.size for a in learnable.values())
        assert stored == module_state.count_task_parameters(adapted)
        assert stored == cost.count_parameters(adapted) - frozen_kernels
        assert sum(a.size for a in statistics.values()) == 2 * sum(
            layer.moving_mean.shape[0] for layer in batch_norm_layers(adapted)
        )


def test_stored_task_and_keras_file_restore_the_trained_model(trained, data, tmp_path):
    x, _ = data
    for name, model, adapted, _ in trained:
        learnable, statistics = module_state.stored_tensors(adapted)
        restored = module_state.assign_stored_tensors(
            add_residual_adapters(model), learnable, statistics
        )
        helpers.assert_close(restored(x, training=False), adapted(x, training=False))
        path = tmp_path / f"{name}.keras"
        adapted.save(path)
        loaded = keras.models.load_model(path)
        helpers.assert_close(loaded(x, training=False), adapted(x, training=False))


def test_multiplies_count_the_adapters(backbones):
    _, model = backbones[1]
    adapted = add_residual_adapters(model)
    shape = (40, helpers.FRAMES, 1)
    added = sum(
        r.multiplies for r in cost.layer_multiplies(adapted, shape) if r.name.endswith("_adapter")
    )
    assert added > 0
    assert cost.count_multiplies(adapted, shape) == cost.count_multiplies(model, shape) + added


def test_bad_options_name_the_value(backbones):
    _, model = backbones[0]
    with pytest.raises(ValueError, match="depthwise_adapter='full'"):
        add_residual_adapters(model, depthwise_adapter="full")
    with pytest.raises(ValueError, match="use_bias=True"):
        ParallelAdapter(keras.layers.Conv2D(4, 3, use_bias=True))
