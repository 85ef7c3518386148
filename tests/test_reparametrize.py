"""`reparametrize`: same function, right layers replaced, right variables frozen."""

import keras
import numpy as np
import pytest

import swr_keras
from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import batch_norm_layers
from tests.conftest import ConvNormBlock, build_conv_net


@pytest.mark.parametrize("training", [False, True])
def test_fresh_reparametrized_model_equals_source(conv_net, images, training):
    swr_model = swr_keras.reparametrize(conv_net)
    expected = conv_net(images, training=training)
    np.testing.assert_allclose(swr_model(images, training=training), expected, atol=1e-6)


def test_every_feature_layer_is_replaced_recursively_and_classifier_kept(conv_net):
    swr_model = swr_keras.reparametrize(conv_net)
    layers = swr_keras.reparam_layers(swr_model)
    # stem, nested dilated conv, depthwise, grouped 1x1, hidden Dense; the
    # conv inside the custom block is not in the graph and stays frozen.
    assert [type(layer).__name__ for layer in layers] == [
        "ReparamConv2D",
        "ReparamConv2D",
        "ReparamDepthwiseConv2D",
        "ReparamConv2D",
        "ReparamDense",
    ]
    assert isinstance(swr_model.get_layer("nested").layers[0], ReparamLayer)
    classifier = swr_model.get_layer("classifier")
    assert type(classifier) is keras.layers.Dense
    assert {v.name for v in classifier.trainable_weights} == {"kernel", "bias"}


def test_only_deltas_classifier_are_trainable_and_bn_keeps_statistics(conv_net):
    swr_model = swr_keras.reparametrize(conv_net)
    trainable = {id(v) for v in swr_model.trainable_weights}
    deltas = {id(layer.kernel_delta) for layer in swr_keras.reparam_layers(swr_model)}
    head = {id(v) for v in swr_model.get_layer("classifier").weights}
    assert trainable == deltas | head
    norms = batch_norm_layers(swr_model)
    assert len(norms) == 3  # two in the graph, one inside the custom block
    assert all(norm.trainable and not norm.gamma.trainable for norm in norms)


def test_bn_statistics_update_in_training_but_affine_does_not(conv_net, images):
    swr_model = swr_keras.reparametrize(conv_net)
    norm = batch_norm_layers(swr_model)[2]  # inside the custom block
    before = [v.numpy().copy() for v in norm.weights]
    swr_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    swr_model.fit(images, np.arange(6) % 5, epochs=1, verbose=0)
    gamma, beta, mean, variance = [v.numpy() for v in norm.weights]
    np.testing.assert_array_equal(gamma, before[0])
    np.testing.assert_array_equal(beta, before[1])
    assert not np.allclose(mean, before[2]) and not np.allclose(variance, before[3])


def test_bn_affine_option_makes_gamma_beta_trainable(conv_net):
    swr_model = swr_keras.reparametrize(conv_net, bn_affine=True)
    assert all(n.gamma.trainable and n.beta.trainable for n in batch_norm_layers(swr_model))


def test_source_model_is_untouched(conv_net, images):
    before = [w.copy() for w in conv_net.get_weights()]
    swr_model = swr_keras.reparametrize(conv_net)
    for layer in swr_keras.reparam_layers(swr_model):
        layer.kernel_delta.assign(np.ones(layer.kernel_delta.shape))
    for old, new in zip(before, conv_net.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not any(isinstance(layer, ReparamLayer) for layer in conv_net.layers)


def test_exclude_options(conv_net):
    everything = swr_keras.reparametrize(conv_net, exclude=())
    assert len(swr_keras.reparam_layers(everything)) == 6
    by_object = swr_keras.reparametrize(conv_net, exclude=[conv_net.layers[1]])
    assert len(swr_keras.reparam_layers(by_object)) == 5
    assert isinstance(by_object.get_layer("classifier"), ReparamLayer)
    by_rule = swr_keras.reparametrize(
        conv_net, exclude=lambda layer: isinstance(layer, keras.layers.Dense)
    )
    assert len(swr_keras.reparam_layers(by_rule)) == 4


def test_bad_models_and_arguments_raise_clear_errors():
    no_convs = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="no Conv2D, DepthwiseConv2D or Dense"):
        swr_keras.reparametrize(no_convs)
    only_classifier = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="exclude fewer"):
        swr_keras.reparametrize(only_classifier)
    unbuilt = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        swr_keras.reparametrize(unbuilt)
    with pytest.raises(ValueError, match="layer objects"):
        swr_keras.reparametrize(build_conv_net(), exclude=["classifier_name"])
    with pytest.raises(ValueError, match="exclude must be"):
        swr_keras.reparametrize(build_conv_net(), exclude="head")


def test_subclassed_model_is_rejected_with_the_fix():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.block = ConvNormBlock(3)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(keras.ops.mean(self.block(x), axis=(1, 2)))

    net = Net()
    net(np.zeros((1, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="Functional API"):
        swr_keras.reparametrize(net)


def test_keras_file_round_trip_of_reparametrized_model(conv_net, images, tmp_path, rng):
    swr_model = swr_keras.reparametrize(conv_net)
    for layer in swr_keras.reparam_layers(swr_model):
        layer.kernel_delta.assign(rng.normal(0, 0.1, layer.kernel_delta.shape))
    swr_keras.reparam_layers(swr_model)[1].gate.assign(0.0)
    path = tmp_path / "swr.keras"
    swr_model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(images), swr_model(images), atol=1e-6)
    assert [float(l.gate.numpy()) for l in swr_keras.reparam_layers(loaded)] == [1, 0, 1, 1, 1]
