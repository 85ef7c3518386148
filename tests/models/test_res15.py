"""Res15: counts, shapes, the reference forward, and SWR."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.models import Res15, feature_extractor
from tests.models.backbone_checks import (
    assert_keras_round_trip,
    assert_merge_equals_reparametrized,
    assert_zero_delta_equals_base,
    run_swr_stages,
)


@pytest.fixture(scope="module")
def res15():
    keras.utils.set_random_seed(0)
    return Res15(12)


def features(batch, frames, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, 40, frames, 1)).astype("float32")


def reference_forward(model, x):
    """honk's `SpeechResModel.forward` for res15 in inference mode, in raw TF ops."""
    layers = feature_extractor(model)
    y = tf.nn.relu(tf.nn.conv2d(x, layers.get_layer("conv0").kernel, 1, "SAME"))
    old_x = x = y
    for i in range(1, 14):
        dilation = 2 ** ((i - 1) // 3)  # honk: 2 ** (j // 3) for the j-th of 13 convs
        y = tf.nn.relu(
            tf.nn.conv2d(x, layers.get_layer(f"conv{i}").kernel, 1, "SAME", dilations=dilation)
        )
        if i % 2 == 0:
            x = y + old_x
            old_x = x
        else:
            x = y
        norm = layers.get_layer(f"bn{i}")
        x = (x - norm.moving_mean) / tf.sqrt(norm.moving_variance + 1e-5)
    head = model.get_layer("classifier")
    return tf.reduce_mean(x, axis=(1, 2)) @ head.kernel + head.bias


def test_res15_has_the_papers_parameter_and_layer_counts(res15):
    assert swr_keras.cost.count_parameters(res15) == 237_882
    assert res15.count_params() == 239_052  # + 13 BN layers' moving statistics
    swr_model = swr_keras.reparametrize(res15)
    assert len(swr_keras.reparam_layers(swr_model)) == 14


def test_architecture_follows_the_reference(res15):
    layers = feature_extractor(res15)
    convolutions = [layers.get_layer(f"conv{i}") for i in range(14)]
    assert {conv.filters for conv in convolutions} == {45}
    assert not any(conv.use_bias for conv in convolutions)
    assert [conv.dilation_rate[0] for conv in convolutions[1:]] == [
        1,
        1,
        1,
        2,
        2,
        2,
        4,
        4,
        4,
        8,
        8,
        8,
        16,
    ]
    norms = swr_keras.batch_norm_layers(res15)
    assert len(norms) == 13 and all(n.gamma is None and n.beta is None for n in norms)
    assert [layer.name for layer in layers.layers if isinstance(layer, keras.layers.Add)] == [
        f"add{i}" for i in (2, 4, 6, 8, 10, 12)
    ]


def test_forward_equals_the_reference_computation(res15):
    model = keras.models.clone_model(res15)
    model.set_weights(res15.get_weights())
    rng = np.random.default_rng(1)
    for norm in swr_keras.batch_norm_layers(model):
        norm.moving_mean.assign(rng.normal(0, 0.3, norm.moving_mean.shape))
        norm.moving_variance.assign(rng.uniform(0.5, 2.0, norm.moving_variance.shape))
    x = features(2, 30)
    np.testing.assert_allclose(
        model(x, training=False), reference_forward(model, x), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("frames", [101, 225])
def test_output_shape_for_any_clip_length(res15, frames):
    assert res15(features(1, frames)).shape == (1, 12)


def test_multiplies_are_nine_maps_squared_per_position(res15):
    frames = 101
    expected = 9 * 45 * 40 * frames + 13 * 9 * 45 * 45 * 40 * frames + 45 * 12
    assert swr_keras.cost.count_multiplies(res15, input_shape=(40, frames, 1)) == expected
    assert expected == 958_813_740


def test_keras_round_trip(res15, tmp_path):
    assert_keras_round_trip(res15, features(2, 50), tmp_path / "res15.keras")


def test_zero_deltas_compute_the_backbone(res15):
    assert_zero_delta_equals_base(res15, features(2, 50))


def test_merge_equals_reparametrized_model(res15):
    assert_merge_equals_reparametrized(res15, features(2, 50))


def test_four_swr_stages_run_and_change_only_what_they_may():
    keras.utils.set_random_seed(0)
    model = Res15(3, num_maps=8)
    run_swr_stages(model, features(8, 16), np.arange(8) % 3, batch_size=4)


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"num_maps": 0}, {"num_features": 2.5}])
def test_bad_arguments_raise_clear_errors(kwargs):
    with pytest.raises(ValueError, match="must be a positive integer"):
        Res15(**kwargs)
