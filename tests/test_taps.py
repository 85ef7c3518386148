"""TAPS: score-gated layers, what a training step changes, merging and task states."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras import taps
from swr_keras.layers import ScoreGatedConv2D, straight_through_indicator
from swr_keras.model_walk import batch_norm_layers, iter_layers
from tests.conftest import randomize_batch_norm

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

LOSS = "sparse_categorical_crossentropy"


def trained_one_step(model, images, labels, learning_rate=0.05, sparsity_weight=1.0):
    trainer = taps.TAPSTrainer(model, sparsity_weight=sparsity_weight, warmup_epochs=0)
    trainer.compile(optimizer=taps.sgd(learning_rate, 10), loss=LOSS)
    trainer.fit(images, labels, epochs=1, batch_size=len(images), verbose=0)
    return trainer


def snapshot(model):
    layers = taps.score_gated_layers(model)
    norms = batch_norm_layers(model)
    block = [layer for layer in iter_layers(model) if type(layer).__name__ == "ConvNormBlock"][0]
    groups = {
        "base": [layer.base_kernel for layer in layers],
        "bias": [layer.bias for layer in layers if layer.use_bias],
        "deltas": [layer.kernel_delta for layer in layers],
        "scores": [layer.score for layer in layers],
        "bn_affine": [v for n in norms for v in (n.gamma, n.beta)],
        "bn_statistics": [v for n in norms for v in (n.moving_mean, n.moving_variance)],
        "classifier": model.get_layer("classifier").weights,
        "frozen_conv": block.conv.weights,
    }
    return {name: [v.numpy().copy() for v in group] for name, group in groups.items()}


def test_indicator_is_exact_and_passes_the_gradient_straight_through():
    score = tf.Variable([0.05, 0.1, 0.15, -0.3])
    with tf.GradientTape() as tape:
        gate = straight_through_indicator(score)
        loss = tf.reduce_sum(gate * tf.constant([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(gate.numpy(), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(tape.gradient(loss, score).numpy(), [1.0, 2.0, 3.0, 4.0])


def test_at_initialisation_taps_computes_the_backbone(conv_net, images):
    model = taps.taps_reparametrize(conv_net)
    layers = taps.score_gated_layers(model)
    assert len(layers) == 5  # the 4 graph convolutions (stem included) and the inner Dense
    np.testing.assert_array_equal(taps.scores(model), np.full(5, 0.15, "float32"))
    np.testing.assert_allclose(model(images), conv_net(images), atol=1e-6)


def test_taps_on_a_tiny_bc_resnet_starts_at_the_backbone(rng):
    backbone = swr_keras.models.BCResNet(tau=1, num_classes=3)
    randomize_batch_norm(backbone, rng)
    model = taps.taps_reparametrize(backbone)
    assert len(taps.score_gated_layers(model)) == 43  # every conv of BC-ResNet, stem included
    x = rng.normal(size=(2, 40, 21, 1)).astype("float32")
    np.testing.assert_allclose(model(x), backbone(x), atol=1e-6)


def test_one_step_changes_exactly_what_taps_trains(conv_net, images, rng):
    model = taps.taps_reparametrize(conv_net)
    before = snapshot(model)
    trained_one_step(model, images, rng.integers(0, 5, len(images)))
    after = snapshot(model)
    for name in ("base", "bias", "frozen_conv"):
        for old, new in zip(before[name], after[name]):
            np.testing.assert_array_equal(old, new, err_msg=name)
    for name in ("deltas", "scores", "bn_affine", "bn_statistics", "classifier"):
        assert all(not np.array_equal(o, n) for o, n in zip(before[name], after[name])), name


def test_a_score_below_the_threshold_switches_the_layer_off_and_still_learns(conv_net, images):
    model = taps.taps_reparametrize(conv_net)
    layer = taps.score_gated_layers(model)[0]
    layer.kernel_delta.assign(np.full(layer.kernel_delta.shape, 0.3, "float32"))
    switched_on = model(images).numpy()
    layer.score.assign(0.0999)
    np.testing.assert_array_equal(model(images).numpy(), conv_net(images).numpy())
    assert not np.allclose(switched_on, conv_net(images).numpy(), atol=1e-3)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(images) * np.arange(5, dtype="float32"))
    gradient = tape.gradient(loss, layer.score.value)
    assert gradient is not None and abs(float(gradient)) > 0.0


def test_sparsity_loss_starts_after_the_warm_up_epochs_also_when_resumed(conv_net, images, rng):
    labels = rng.integers(0, 5, len(images))
    trainer = taps.TAPSTrainer(
        taps.taps_reparametrize(conv_net), sparsity_weight=0.7, warmup_epochs=2
    )
    trainer.compile(optimizer=taps.sgd(0.01, 12), loss=LOSS)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.active_sparsity_weight.numpy()))

    history = trainer.fit(images, labels, epochs=3, batch_size=6, callbacks=[Record()], verbose=0)
    assert seen == [0.0, 0.0, pytest.approx(0.7)]
    assert "added_ratio" in history.history
    seen.clear()
    trainer.fit(images, labels, epochs=4, initial_epoch=3, batch_size=6, callbacks=[Record()])
    assert seen == [pytest.approx(0.7)]


def test_a_warm_up_fraction_starts_the_sparsity_loss_at_that_share_of_the_steps(
    conv_net, images, rng
):
    labels = rng.integers(0, 5, len(images))
    trainer = taps.TAPSTrainer(
        taps.taps_reparametrize(conv_net), sparsity_weight=0.7, warmup_fraction=0.4
    )
    trainer.compile(optimizer=taps.sgd(0.01, 12), loss=LOSS)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.active_sparsity_weight.numpy()))

    # 4 epochs of 3 batches: 0.4 of 12 steps is 4.8, so steps 0-4 are unregularised,
    # and the loss starts inside the second epoch.
    trainer.fit(images, labels, epochs=4, batch_size=2, callbacks=[Record()], verbose=0)
    assert seen == [0.0] * 5 + [pytest.approx(0.7)] * 7
    seen.clear()
    trainer.fit(images, labels, epochs=4, initial_epoch=1, batch_size=2, callbacks=[Record()])
    assert seen == [0.0] * 2 + [pytest.approx(0.7)] * 7


def test_the_official_warm_up_is_three_epochs_of_thirty_one():
    trainer = taps.TAPSTrainer(
        taps.taps_reparametrize(_two_layer_model()), warmup_fraction=taps.WARMUP_FRACTION
    )
    for steps_per_epoch in (1, 38, 100):
        assert trainer.warmup_steps(31 * steps_per_epoch) == 3 * steps_per_epoch
    with pytest.raises(ValueError, match="warmup_fraction=1.0"):
        taps.TAPSTrainer(taps.taps_reparametrize(_two_layer_model()), warmup_fraction=1.0)


def test_the_sparsity_loss_is_lambda_times_the_mean_absolute_score(conv_net, images, rng):
    model = taps.taps_reparametrize(conv_net)
    for layer, value in zip(taps.score_gated_layers(model), [0.2, -0.1, 0.3, 0.05, 0.15]):
        layer.score.assign(value)
    trainer = taps.TAPSTrainer(model, sparsity_weight=2.0)
    trainer.compile(loss=LOSS)
    labels = rng.integers(0, 5, len(images))
    plain = trainer.compute_loss(y=labels, y_pred=model(images), training=True)
    trainer.start_epoch(2)
    regularised = trainer.compute_loss(y=labels, y_pred=model(images), training=True)
    np.testing.assert_allclose(float(regularised - plain), 2.0 * 0.16, rtol=1e-5)


def test_merged_model_and_task_state_deploy_what_was_trained(conv_net, images, rng, tmp_path):
    model = taps.taps_reparametrize(conv_net)
    trained_one_step(model, images, rng.integers(0, 5, len(images)))
    layers = taps.score_gated_layers(model)
    layers[1].score.assign(0.05)  # one layer off: its delta must not be deployed
    merged = swr_keras.merge(model)
    assert not any(
        isinstance(layer, swr_keras.layers.ReparamLayer) for layer in iter_layers(merged)
    )
    np.testing.assert_allclose(merged(images), model(images), atol=1e-5)

    state = swr_keras.extract_task_state(model)
    np.testing.assert_array_equal(state.gates, [1, 0, 1, 1, 1])
    assert len(state.deltas) == 4
    state.save(tmp_path / "task.npz")
    restored = swr_keras.apply_task_state(conv_net, tmp_path / "task.npz")
    np.testing.assert_allclose(restored(images), model(images), atol=1e-5)
    stored = sum(np.size(a) for a in state.deltas.values())
    stored += sum(np.size(a) for group in state.batch_norm.values() for a in group)
    stored += sum(np.size(a) for group in state.head.values() for a in group)
    assert state.num_parameters == stored
    assert swr_keras.cost.added_parameter_ratio(model) == pytest.approx(
        taps.TAPSTrainer(model).added_ratio()
    )


def test_score_gated_layer_survives_a_keras_file(tmp_path, rng):
    inputs = keras.Input((6, 6, 2))
    plain = keras.Model(inputs, keras.layers.Conv2D(3, 3, name="conv")(inputs))
    model = taps.taps_reparametrize(
        keras.Model(inputs, keras.layers.Dense(2, name="classifier")(plain.output))
    )
    layer = model.get_layer("conv")
    assert isinstance(layer, ScoreGatedConv2D)
    layer.kernel_delta.assign(rng.normal(size=layer.kernel_delta.shape).astype("float32"))
    layer.score.assign(0.12)
    path = tmp_path / "taps.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = rng.normal(size=(2, 6, 6, 2)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))
    assert float(loaded.get_layer("conv").score.numpy()) == pytest.approx(0.12)
    assert loaded.get_layer("conv").get_config()["threshold"] == 0.1


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="sparsity_weight=-1"):
        taps.TAPSTrainer(taps.taps_reparametrize(_two_layer_model()), sparsity_weight=-1)
    with pytest.raises(ValueError, match="warmup_epochs=1.5"):
        taps.TAPSTrainer(taps.taps_reparametrize(_two_layer_model()), warmup_epochs=1.5)
    with pytest.raises(ValueError, match="no TAPS layer"):
        taps.TAPSTrainer(_two_layer_model())
    with pytest.raises(ValueError, match="gradient_accumulation_steps=1"):
        taps.sgd(0.01, 10, gradient_accumulation_steps=1)


def _two_layer_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="classifier")(hidden))
