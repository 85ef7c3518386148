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


def run_swr_stages(backbone, x, y, batch_size):
    """Runs the four SWR stages on `backbone`; checks what each may change.

    Returns the trainer after the "reparam" stage.
    """
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    data = (x, y)
    trainer = swr_keras.SWRTrainer(swr_keras.reparametrize(backbone), seed=0)
    layers = swr_keras.reparam_layers(trainer.model)
    base_kernels = [layer.base_kernel.numpy() for layer in layers]
    affine = [
        v.numpy()
        for n in batch_norm_layers(trainer.model)
        for v in (n.gamma, n.beta)
        if v is not None
    ]
    steps = max(len(x) // batch_size, 1)
    for stage in ("supernet", "policy", "joint", "reparam"):
        history = swr_keras.fit_stage(
            trainer,
            stage,
            keras_dataset(data, batch_size),
            epochs=1,
            steps_per_epoch=steps,
            learning_rate=1e-3,
            target_cost=0.5,
            loss=loss,
            verbose=0,
        )
        assert np.isfinite(history.history["loss"][-1]), stage
    for layer, kernel in zip(layers, base_kernels):
        np.testing.assert_array_equal(layer.base_kernel.numpy(), kernel)
        if float(layer.gate.numpy()) == 0.0:
            assert not np.any(layer.kernel_delta.numpy())
    after = [
        v.numpy()
        for n in batch_norm_layers(trainer.model)
        for v in (n.gamma, n.beta)
        if v is not None
    ]
    for before_value, after_value in zip(affine, after):
        np.testing.assert_array_equal(before_value, after_value)
    return trainer


def keras_dataset(data, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).repeat()
