"""ResNet-50: the keras.applications backbone with a task classifier, through SWR.

Inputs are 32x32 to stay fast; the weights do not depend on the input size.
"""

import keras
import numpy as np
import pytest

import swr_keras
from swr_keras.models import feature_extractor, resnet50
from tests.models.backbone_checks import (
    assert_merge_equals_reparametrized,
    assert_zero_delta_equals_base,
    run_swr_stages,
)

SMALL = (32, 32, 3)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return resnet50(10, input_shape=SMALL)


def images(batch, seed=0):
    return np.random.default_rng(seed).uniform(-100, 100, (batch, *SMALL)).astype("float32")


def test_counts_are_the_keras_backbone_plus_the_classifier(model):
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SMALL)
    statistics = sum(
        int(np.prod(v.shape))
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in (layer.moving_mean, layer.moving_variance)
    )
    learnable = backbone.count_params() - statistics
    assert learnable == 23_534_592
    assert swr_keras.cost.count_parameters(model) == learnable + 2048 * 10 + 10
    assert len(swr_keras.reparam_layers(swr_keras.reparametrize(model))) == 53


def test_loads_a_local_weights_file(model, tmp_path):
    path = tmp_path / "features.weights.h5"
    feature_extractor(model).save_weights(path)
    loaded = resnet50(7, path, input_shape=SMALL)
    for expected, actual in zip(
        feature_extractor(model).get_weights(), feature_extractor(loaded).get_weights()
    ):
        np.testing.assert_array_equal(actual, expected)
    assert loaded.output.shape == (None, 7)


@pytest.mark.parametrize(
    "weights, message",
    [("imagenet", "never downloads"), ("/no/such/file.h5", "not a file")],
)
def test_weights_that_would_download_or_are_missing_raise(weights, message):
    with pytest.raises(ValueError, match=message):
        resnet50(10, weights, input_shape=SMALL)


def test_a_file_of_another_architecture_raises(tmp_path):
    path = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(path)
    with pytest.raises(ValueError, match="Could not load ResNet-50"):
        resnet50(10, path, input_shape=SMALL)


def test_zero_deltas_compute_the_backbone(model):
    assert_zero_delta_equals_base(model, images(2))


def test_merge_equals_reparametrized_model(model):
    assert_merge_equals_reparametrized(model, images(2), atol=1e-3)


@pytest.mark.slow
def test_four_swr_stages_run_and_change_only_what_they_may(model):
    run_swr_stages(model, images(4), np.arange(4) % 10, batch_size=2)


def test_v15_moves_the_stride_to_the_3x3_convolution_with_the_same_weights():
    v1 = feature_extractor(resnet50(10, input_shape=SMALL))
    v15 = feature_extractor(resnet50(10, input_shape=SMALL, variant="v1.5"))
    assert [tuple(w.shape) for w in v1.weights] == [tuple(w.shape) for w in v15.weights]
    for stage in (3, 4, 5):
        first, middle = f"conv{stage}_block1_1_conv", f"conv{stage}_block1_2_conv"
        assert v1.get_layer(first).strides == (2, 2) and v1.get_layer(middle).strides == (1, 1)
        assert v15.get_layer(first).strides == (1, 1) and v15.get_layer(middle).strides == (2, 2)
    assert v1.output_shape == v15.output_shape == (None, 2048)
    with pytest.raises(ValueError, match="Received: variant='v2'"):
        resnet50(10, input_shape=SMALL, variant="v2")


@pytest.mark.slow  # builds two ResNet-50s and converts 161 tensors: 30-60 s on 2 cores
def test_torchvision_state_dict_loads_into_v15(tmp_path):
    from swr_keras.models.resnet50 import torchvision_names

    keras.utils.set_random_seed(1)
    source = feature_extractor(resnet50(10, input_shape=SMALL, variant="v1.5"))
    rng = np.random.default_rng(0)
    arrays = {}
    for keras_name, torch_name in torchvision_names().items():
        layer = source.get_layer(keras_name)
        if isinstance(layer, keras.layers.Conv2D):
            layer.bias.assign(np.zeros(layer.filters))  # torchvision's convolutions have none
            arrays[f"{torch_name}.weight"] = np.transpose(layer.kernel.numpy(), (3, 2, 0, 1))
        else:
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
            for key, variable in zip(
                ("weight", "bias", "running_mean", "running_var"), layer.weights
            ):
                arrays[f"{torch_name}.{key}"] = variable.numpy()
    path = str(tmp_path / "resnet50_torchvision.npz")
    np.savez(path, **arrays)
    loaded = feature_extractor(resnet50(10, path, input_shape=SMALL, variant="v1.5"))
    x = images(2)
    np.testing.assert_allclose(loaded(x), source(x), rtol=1e-4, atol=1e-4)
    del arrays["layer3.0.bn2.running_var"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="has no 'layer3.0.bn2.running_var'"):
        resnet50(10, path, input_shape=SMALL, variant="v1.5")
