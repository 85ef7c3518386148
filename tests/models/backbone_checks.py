"""Checks every backbone must pass, shared by the backbone tests."""

import keras
import numpy as np

import swr_keras
from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.models import classifier


def randomize_task(swr_model, rng, delta_scale=0.05):
    """Random deltas, binary gates (both values), BN statistics and classifier."""
    layers = swr_keras.reparam_layers(swr_model)
    gates = rng.integers(0, 2, len(layers)).astype("float32")
    gates[:2] = (0.0, 1.0)
    for layer, gate in zip(layers, gates):
        scale = delta_scale * float(np.std(layer.base_kernel.numpy()) or 1.0)
        layer.kernel_delta.assign(rng.normal(0, scale, layer.kernel_delta.shape))
        layer.gate.assign(gate)
    for norm in batch_norm_layers(swr_model):
        norm.moving_mean.assign(rng.normal(0, 0.1, norm.moving_mean.shape))
        norm.moving_variance.assign(rng.uniform(0.5, 1.5, norm.moving_variance.shape))
    head = classifier(swr_model)
    head.set_weights([rng.normal(0, 0.1, w.shape) for w in head.get_weights()])
    return gates


def assert_merge_equals_reparametrized(backbone, x, seed=0, atol=1e-4):
    """reparametrize -> random task -> merge (and task state) equals the SWR model."""
    swr_model = swr_keras.reparametrize(backbone)
    randomize_task(swr_model, np.random.default_rng(seed))
    expected = keras.ops.convert_to_numpy(swr_model(x, training=False))
    merged = swr_keras.merge(swr_model)
    assert not any(isinstance(layer, ReparamLayer) for layer in iter_layers(merged))
    assert [type(layer) for layer in iter_layers(merged)] == [
        type(layer) for layer in iter_layers(backbone)
    ]
    np.testing.assert_allclose(merged(x, training=False), expected, atol=atol, rtol=1e-4)
    from_state = swr_keras.apply_task_state(backbone, swr_keras.extract_task_state(swr_model))
    np.testing.assert_allclose(from_state(x, training=False), expected, atol=atol, rtol=1e-4)
    # Something actually changed: the task is not the backbone.
    assert np.abs(expected - keras.ops.convert_to_numpy(backbone(x, training=False))).max() > 1e-3


def assert_keras_round_trip(model, x, path):
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)
    assert len(loaded.weights) == len(model.weights)
    return loaded


def assert_zero_delta_equals_base(backbone, x, seed=0):
    """A freshly reparametrised model computes the backbone, whatever its gates."""
    swr_model = swr_keras.reparametrize(backbone)
    layers = swr_keras.reparam_layers(swr_model)
    expected = keras.ops.convert_to_numpy(backbone(x, training=False))
    gates = np.random.default_rng(seed).integers(0, 2, len(layers)).astype("float32")
    for fixed in (np.ones(len(layers), "float32"), gates):
        for layer, gate in zip(layers, fixed):
            layer.gate.assign(gate)
        np.testing.assert_allclose(swr_model(x, training=False), expected, atol=1e-6, rtol=1e-6)


def stage_groups(trainer):
    """Named groups of variables, to check what a stage changed."""
    model = trainer.model
    norms = batch_norm_layers(model)
    head = classifier(model)
    return {
        "base": [layer.base_kernel for layer in swr_keras.reparam_layers(model)],
        "deltas": [layer.kernel_delta for layer in swr_keras.reparam_layers(model)],
        "bn_affine": [v for n in norms for v in (n.gamma, n.beta) if v is not None],
        "bn_statistics": [v for n in norms for v in (n.moving_mean, n.moving_variance)],
        "classifier": list(head.weights),
        "policy": list(trainer.policy_network.weights),
    }


def _values(trainer):
    return {
        name: [v.numpy().copy() for v in group] for name, group in stage_groups(trainer).items()
    }


def _changed(before, after):
    return {
        name: [not np.array_equal(b, a) for b, a in zip(before[name], after[name])]
        for name in before
    }


# What each stage must change (every variable of the group) and must leave
# bit-identical. Deltas in "joint" and "reparam" are checked per layer below.
MUST_CHANGE = {
    "supernet": ("deltas", "bn_statistics", "classifier"),
    "policy": ("policy",),
    "joint": ("policy", "classifier", "bn_statistics"),
    "reparam": ("bn_statistics", "classifier"),
}
MUST_NOT_CHANGE = {
    "supernet": ("base", "bn_affine", "policy"),
    "policy": ("base", "bn_affine", "deltas", "bn_statistics", "classifier"),
    "joint": ("base", "bn_affine"),
    "reparam": ("base", "bn_affine", "policy"),
}


def alternate_policy(trainer):
    """Sets the policy network to gate every other layer, whatever the cost."""
    policy = trainer.policy_network
    picks = (np.arange(policy.num_layers) % 2 == 0).astype("float32")
    bias = np.stack([picks - 0.5, 0.5 - picks], axis=-1).reshape(-1)
    policy.logits.kernel.assign(np.zeros(policy.logits.kernel.shape))
    policy.logits.bias.assign(bias)
    return picks


def run_swr_stages(backbone, x, y, batch_size):
    """Runs the four SWR stages on `backbone`; checks what each changes and keeps.

    Eager execution: tracing the graph of each stage dominated the time
    (BC-ResNet-1: 36.5 s -> 5.6 s) and the numbers do not depend on it.
    Returns the trainer after the "reparam" stage.
    """
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # The threshold rule deploys exactly `alternate_policy`'s picks.
    trainer = swr_keras.SWRTrainer(
        swr_keras.reparametrize(backbone), binarization="threshold", seed=0
    )
    layers = swr_keras.reparam_layers(trainer.model)
    steps = max(len(x) // batch_size, 1)
    for stage in ("supernet", "policy", "joint", "reparam"):
        if stage == "reparam":
            picks = alternate_policy(trainer)
        before = _values(trainer)
        history = swr_keras.fit_stage(
            trainer,
            stage,
            keras_dataset((x, y), batch_size),
            epochs=1,
            steps_per_epoch=steps,
            learning_rate=1e-3,
            target_cost=0.5,
            loss=loss,
            verbose=0,
            run_eagerly=True,
        )
        assert np.isfinite(history.history["loss"][-1]), stage
        diff = _changed(before, _values(trainer))
        for group in MUST_CHANGE[stage]:
            assert all(diff[group]), (stage, group, diff[group].count(False))
        for group in MUST_NOT_CHANGE[stage]:
            assert not any(diff[group]), (stage, group, diff[group].count(True))
        if stage == "joint":
            assert any(diff["deltas"]), stage
    # Stage 2: the gated deltas trained from zero, the others stayed exactly zero.
    np.testing.assert_array_equal([layer.gate.numpy() for layer in layers], picks)
    for layer, pick in zip(layers, picks):
        assert bool(np.any(layer.kernel_delta.numpy())) == bool(pick), layer.name
    return trainer


def keras_dataset(data, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).repeat()
