"""ReparamConv2D / ReparamDepthwiseConv2D / ReparamDense against their sources."""

import keras
import numpy as np
import pytest

from swr_keras.layers import (
    ReparamConv2D,
    ReparamDense,
    ReparamDepthwiseConv2D,
    example_gates,
)

CONV_CASES = [
    dict(filters=6, kernel_size=3),
    dict(filters=6, kernel_size=(3, 1), strides=(2, 1), padding="same"),
    dict(filters=4, kernel_size=3, padding="same", dilation_rate=2, activation="relu"),
    dict(filters=8, kernel_size=1, groups=2, use_bias=False),
    dict(filters=6, kernel_size=(1, 3), strides=2, padding="valid", activation="swish"),
]
DEPTHWISE_CASES = [
    dict(kernel_size=3),
    dict(kernel_size=(3, 1), strides=2, padding="same", use_bias=False),
    dict(kernel_size=(1, 3), padding="same", dilation_rate=(1, 4), depth_multiplier=2),
    dict(kernel_size=5, padding="valid", activation="relu"),
]
DENSE_CASES = [dict(units=5), dict(units=3, activation="tanh", use_bias=False)]


def twin_of(layer_class, twin_class, config, input_shape, rng):
    plain = layer_class(**config)
    plain.build(input_shape)
    plain.set_weights([rng.normal(size=w.shape).astype("float32") for w in plain.get_weights()])
    twin = twin_class.from_plain_layer(plain)
    twin.build(input_shape)
    twin.set_pretrained_weights(plain.kernel, plain.bias if plain.use_bias else None)
    return plain, twin


ALL_CASES = (
    [(keras.layers.Conv2D, ReparamConv2D, c, (3, 10, 9, 4)) for c in CONV_CASES]
    + [
        (keras.layers.DepthwiseConv2D, ReparamDepthwiseConv2D, c, (3, 10, 9, 4))
        for c in DEPTHWISE_CASES
    ]
    + [(keras.layers.Dense, ReparamDense, c, (3, 7, 4)) for c in DENSE_CASES]
)


@pytest.mark.parametrize("layer_class, twin_class, config, input_shape", ALL_CASES)
def test_zero_delta_equals_source_and_delta_adds_to_kernel(
    layer_class, twin_class, config, input_shape, rng
):
    plain, twin = twin_of(layer_class, twin_class, config, input_shape, rng)
    x = rng.normal(size=input_shape).astype("float32")
    np.testing.assert_allclose(twin(x), plain(x), atol=1e-6)

    delta = rng.normal(size=twin.kernel_delta.shape).astype("float32")
    twin.kernel_delta.assign(delta)
    shifted = layer_class(**config)
    shifted.build(input_shape)
    weights = plain.get_weights()
    weights[0] = weights[0] + delta
    shifted.set_weights(weights)
    np.testing.assert_allclose(twin(x), shifted(x), atol=1e-5)

    twin.gate.assign(0.0)
    np.testing.assert_allclose(twin(x), plain(x), atol=1e-6)


@pytest.mark.parametrize("layer_class, twin_class, config, input_shape", ALL_CASES)
def test_per_example_gates_match_examples_run_alone(
    layer_class, twin_class, config, input_shape, rng
):
    _, twin = twin_of(layer_class, twin_class, config, input_shape, rng)
    twin.kernel_delta.assign(rng.normal(size=twin.kernel_delta.shape).astype("float32"))
    x = rng.normal(size=input_shape).astype("float32")
    gates = np.array([[1.0], [0.0], [1.0]], "float32")
    with example_gates([twin], gates):
        batched = keras.ops.convert_to_numpy(twin(x))
    for i, gate in enumerate(gates[:, 0]):
        twin.gate.assign(gate)
        np.testing.assert_allclose(batched[i : i + 1], twin(x[i : i + 1]), atol=1e-5)


def test_weights_are_frozen_base_trainable_delta_and_fixed_gate(rng):
    _, twin = twin_of(keras.layers.Conv2D, ReparamConv2D, CONV_CASES[0], (1, 8, 8, 4), rng)
    assert [v.name for v in twin.trainable_weights] == ["kernel_delta"]
    assert sorted(v.name for v in twin.non_trainable_weights) == ["base_kernel", "bias", "gate"]
    assert not np.any(keras.ops.convert_to_numpy(twin.kernel_delta))


def test_config_round_trip_keeps_every_argument():
    layer = ReparamConv2D(
        7,
        (3, 1),
        strides=(2, 1),
        padding="same",
        dilation_rate=(1, 1),
        groups=1,
        activation="relu",
        use_bias=False,
        name="stem",
    )
    clone = ReparamConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    depthwise = ReparamDepthwiseConv2D((1, 3), dilation_rate=(1, 8), depth_multiplier=2)
    assert (
        ReparamDepthwiseConv2D.from_config(depthwise.get_config()).get_config()
        == depthwise.get_config()
    )


def test_keras_file_keeps_base_delta_and_gate_separate(tmp_path, rng):
    inputs = keras.Input((8, 8, 4))
    layer = ReparamConv2D(5, 3, padding="same", name="reparam")
    model = keras.Model(inputs, layer(inputs))
    layer.base_kernel.assign(rng.normal(size=layer.base_kernel.shape))
    layer.kernel_delta.assign(rng.normal(size=layer.kernel_delta.shape))
    layer.bias.assign(rng.normal(size=layer.bias.shape))
    layer.gate.assign(0.0)
    path = tmp_path / "reparam.keras"
    model.save(path)
    loaded = keras.saving.load_model(path).get_layer("reparam")
    for name in ("base_kernel", "kernel_delta", "gate", "bias"):
        np.testing.assert_array_equal(getattr(loaded, name).numpy(), getattr(layer, name).numpy())
    x = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_allclose(loaded(x), layer(x), atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReparamConv2D(4, 3, padding="causal"),
        lambda: ReparamConv2D(5, 3, groups=2),
        lambda: ReparamConv2D(4, (3, 3, 3)),
        lambda: ReparamDense(0),
        lambda: ReparamDepthwiseConv2D(3, data_format="channels_middle"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(make):
    with pytest.raises(ValueError, match="Received"):
        make()


def test_example_gates_need_one_column_per_layer(rng):
    _, twin = twin_of(keras.layers.Dense, ReparamDense, DENSE_CASES[0], (3, 4), rng)
    with pytest.raises(ValueError, match="one column per reparametrised layer"):
        with example_gates([twin], np.ones((3, 2), "float32")):
            pass
