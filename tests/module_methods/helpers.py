"""Tiny backbones and checks shared by the module-method tests."""

import keras
import numpy as np

from swr_keras.model_walk import batch_norm_layers
from swr_keras.models import BCResNet, Res15

NUM_CLASSES = 3
FRAMES = 12


def tiny_backbones():
    """`[(name, task model)]`: BC-ResNet-1 and a 4-map Res15 with non-trivial BN."""
    keras.utils.set_random_seed(0)
    models = [
        ("bc_resnet1", BCResNet(tau=1, num_classes=NUM_CLASSES)),
        ("res15", Res15(NUM_CLASSES, num_maps=4)),
    ]
    rng = np.random.default_rng(0)
    for _, model in models:
        # Pre-trained-looking BN: identity statistics would hide a misplaced BN.
        for layer in batch_norm_layers(model):
            for variable in layer.weights:
                shape = tuple(variable.shape)
                if variable is layer.moving_variance:
                    variable.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))
                else:
                    variable.assign(
                        rng.normal(0.0, 0.3, shape).astype("float32") + (variable is layer.gamma)
                    )
    return models


def batch(size=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 40, FRAMES, 1)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=size)
    return x, y


def snapshot(model):
    return {id(v): keras.ops.convert_to_numpy(v).copy() for v in model.weights}


def changed_variables(model, before):
    return {
        id(v)
        for v in model.weights
        if not np.array_equal(keras.ops.convert_to_numpy(v), before[id(v)])
    }


def train_one_step(model, x, y):
    """One SGD step on one batch; returns the ids of the variables that changed."""
    before = snapshot(model)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    return changed_variables(model, before)


def statistics_of(layers):
    return {id(v) for layer in layers for v in (layer.moving_mean, layer.moving_variance)}


def assert_close(a, b, atol=1e-6):
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=atol
    )
