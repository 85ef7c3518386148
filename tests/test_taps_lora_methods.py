"""TAPS and Keras LoRA through the method interface, on a tiny BC-ResNet."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from swr_keras import lora, methods, models, taps
from swr_keras.kws.job import Settings
from swr_keras.model_walk import batch_norm_layers
from tests.conftest import randomize_batch_norm

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

CLASSES = 3


@pytest.fixture
def backbone(rng):
    """A tiny pre-trained BC-ResNet with the task's (untrained) classifier."""
    keras.utils.set_random_seed(0)
    pretrained = models.BCResNet(tau=1, num_classes=5)
    randomize_batch_norm(pretrained, rng)
    return models.with_new_classifier(pretrained, CLASSES)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(16, 40, 21, 1)).astype("float32")
    y = rng.integers(0, CLASSES, 16)
    return x, tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()


def train(method, backbone, data, settings, option_values):
    options = method.options(option_values)
    base = keras.models.clone_model(backbone, recursive=True)
    base.set_weights(backbone.get_weights())
    model = method.build(base, settings, options)
    x, dataset = data
    np.testing.assert_allclose(model(x[:4]), backbone(x[:4]), atol=1e-6)
    before = {v.path: v.numpy().copy() for v in model.weights}
    [stage] = method.variant_stages(settings, options, None)
    context = methods.FitContext(
        settings=settings,
        options=options,
        steps_per_epoch=2,
        callbacks=[],
        initial_epoch=0,
        verbose=0,
    )
    method.fit(model, stage, dataset, context)
    changed = {v.path for v in model.weights if not np.array_equal(before[v.path], v.numpy())}
    return model, changed


def check_deployment(method, model, backbone, x, tmp_path):
    deployed = method.deploy(model)
    assert all(type(layer).__module__.startswith("keras") for layer in deployed.layers)
    np.testing.assert_allclose(deployed(x), model(x), atol=1e-5)
    stored = method.task_state(model)
    stored.save(tmp_path / "task.npz")
    restored = method.restore(backbone, type(stored).load(tmp_path / "task.npz"))
    np.testing.assert_allclose(restored(x), model(x), atol=1e-5)
    return stored


@pytest.mark.slow  # trains BC-ResNet-1 through the method: over 10 s on 2 cores
def test_taps_method(backbone, data, tmp_path):
    method = methods.get("taps")
    settings = Settings(method="taps", reparam_epochs=2)
    trainer, changed = train(
        method, backbone, data, settings, {"taps_warmup_fraction": 0.5, "taps_lambda": 2.0}
    )
    inner = trainer.model
    layers = taps.score_gated_layers(inner)
    assert len(layers) == 43
    frozen = {layer.base_kernel.path for layer in layers}
    assert not frozen & changed
    assert {layer.score.path for layer in layers} <= changed
    assert {layer.kernel_delta.path for layer in layers} <= changed
    norms = batch_norm_layers(inner)
    assert {v.path for n in norms for v in (n.gamma, n.beta, n.moving_mean)} <= changed

    layers[3].score.assign(0.0)  # switched off: not stored, not deployed
    stored = check_deployment(method, trainer, backbone, data[0][:4], tmp_path)
    on = [layer for layer in layers if float(layer.score.numpy()) >= 0.1]
    expected = sum(math.prod(layer.kernel_delta.shape) for layer in on)
    expected += sum(math.prod(n.gamma.shape) + math.prod(n.beta.shape) for n in norms)
    expected += sum(math.prod(w.shape) for w in inner.get_layer("classifier").weights)
    assert stored.num_parameters == expected
    row = method.result_columns(trainer, None)
    assert row["reparametrised_layers"] == len(on) and row["num_layers"] == 43
    assert 0 < row["added_ratio"] < 1


def test_taps_options_are_checked():
    method = methods.get("taps")
    with pytest.raises(ValueError, match="taps_lambda=-1"):
        method.options({"taps_lambda": -1.0})
    with pytest.raises(ValueError, match="taps_gradient_accumulation=0"):
        method.options({"taps_gradient_accumulation": 0})


@pytest.mark.slow  # trains BC-ResNet-1 through the method: over 10 s on 2 cores
@pytest.mark.parametrize("budget", [0.1])
def test_lora_method(backbone, data, tmp_path, budget):
    method = methods.get("lora")
    settings = Settings(method="lora", reparam_epochs=1)
    model, changed = train(method, backbone, data, settings, {"lora_budget": budget})
    layers = lora.lora_layers(model)
    factors = {v.path for layer in layers for v in (layer.lora_kernel_a, layer.lora_kernel_b)}
    statistics = {
        v.path for n in batch_norm_layers(model) for v in (n.moving_mean, n.moving_variance)
    }
    classifier = {v.path for v in model.get_layer("classifier").weights}
    assert changed <= factors | statistics | classifier
    assert classifier <= changed and statistics & changed

    stored = check_deployment(method, model, backbone, data[0][:4], tmp_path)
    added = sum(math.prod(v.shape) for layer in layers for v in layer.trainable_weights)
    assert stored.num_parameters == added + sum(
        math.prod(v.shape) for v in model.layers[-1].weights
    )
    row = method.result_columns(model, None)
    assert row["target_cost"] == budget and 0 < row["added_ratio"] <= budget
    assert row["lora_ranks"][0] == lora.rank_for_budget(backbone, budget) or row["lora_ranks"][
        0
    ] == (lora.full_rank(layers[0]))
