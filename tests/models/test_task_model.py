"""The feature extractor / classifier split: transferring to a new task."""

import keras
import numpy as np
import pytest

import swr_keras
from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import iter_layers
from swr_keras.models import (
    BCResNet,
    build_task_model,
    classifier,
    feature_extractor,
    with_new_classifier,
)


@pytest.fixture(scope="module")
def multilingual():
    """A 22-class BC-ResNet-1 standing in for the multi-lingual pre-trained model."""
    keras.utils.set_random_seed(0)
    return BCResNet(1, 22)


def log_mel(batch=2, frames=30):
    return np.random.default_rng(0).normal(size=(batch, 40, frames, 1)).astype("float32")


def test_new_classifier_keeps_the_trained_features_in_new_variables(multilingual):
    task = with_new_classifier(multilingual, 12)
    assert task.output.shape == (None, 12)
    assert classifier(task).kernel.shape == (feature_extractor(task).output.shape[-1], 12)
    old, new = feature_extractor(multilingual), feature_extractor(task)
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not {id(v) for v in old.weights} & {id(v) for v in new.weights}
    x = log_mel()
    np.testing.assert_allclose(new(x, training=False), old(x, training=False), atol=1e-6)
    new.weights[0].assign(new.weights[0] + 1.0)
    assert not np.allclose(new.weights[0].numpy(), old.weights[0].numpy())


def test_reparametrize_touches_only_the_feature_extractor(multilingual):
    swr_model = swr_keras.reparametrize(with_new_classifier(multilingual, 12))
    reparametrised = {id(layer) for layer in swr_keras.reparam_layers(swr_model)}
    inside_features = {id(layer) for layer in iter_layers(feature_extractor(swr_model))}
    assert reparametrised <= inside_features and len(reparametrised) == 43
    head = classifier(swr_model)
    assert not isinstance(head, ReparamLayer) and head.trainable


def test_multilingual_model_transfers_to_a_twelve_class_task(multilingual):
    task = with_new_classifier(multilingual, 12)
    swr_model = swr_keras.reparametrize(task)
    rng = np.random.default_rng(0)
    for layer in swr_keras.reparam_layers(swr_model)[::3]:
        layer.kernel_delta.assign(rng.normal(0, 0.05, layer.kernel_delta.shape))
    state = swr_keras.extract_task_state(swr_model)
    x = log_mel()
    np.testing.assert_allclose(
        swr_keras.apply_task_state(task, state)(x, training=False),
        swr_keras.merge(swr_model)(x, training=False),
        atol=1e-5,
    )


def test_classifier_activation_is_kept_or_replaced(multilingual):
    softmax = with_new_classifier(multilingual, 3, classifier_activation="softmax")
    assert classifier(softmax).activation is keras.activations.softmax
    assert classifier(with_new_classifier(softmax, 4)).activation is keras.activations.softmax


def test_models_without_the_split_get_clear_errors():
    flat = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.ReLU()])
    with pytest.raises(ValueError, match="nested models"):
        feature_extractor(flat)
    with pytest.raises(ValueError, match="does not end with a Dense"):
        classifier(flat)
    with pytest.raises(ValueError, match=r"\[batch, features\]"):
        build_task_model(keras.Sequential([keras.Input((3, 3)), keras.layers.Dense(2)]), 2)
    with pytest.raises(ValueError, match="num_classes must be"):
        with_new_classifier(BCResNet(1, 2), 0)
