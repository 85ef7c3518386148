"""A tiny backbone and SWR tasks made without training, for the bank tests.

A task is what SWR stores after stage 2: random deltas on the layers a random
policy gates, BN statistics of its own and a new classifier. Training is not
needed to test storing, merging and serving, and would cost minutes.
"""

import types

import keras
import numpy as np
import pytest

from swr_keras import methods
from swr_keras.model_walk import batch_norm_layers, reparam_layers
from swr_keras.models import task_model
from swr_keras.reparametrize import reparametrize

CLIP_SAMPLES = 4000  # 0.25 s: 26 log-mel frames, enough for BC-ResNet, fast
PRETRAINED_CLASSES = 6


def build_backbone(seed):
    """A small conv net as a task model (feature extractor + classifier), log-mel in.

    Every layer kind SWR reparametrises, BN with variances that keep the
    signal alive; small so that cloning and restoring take milliseconds
    (BC-ResNet-8 itself is exercised by the bar run, BUILD.md).
    """
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((40, None, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(16, 1, use_bias=True)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    features = layers.Dense(16, activation="relu")(layers.GlobalAveragePooling2D()(x))
    extractor = keras.Model(inputs, features, name="feature_extractor")
    model = task_model.build_task_model(extractor, PRETRAINED_CLASSES, name="tiny_kws")
    rng = np.random.default_rng(seed)
    for layer in batch_norm_layers(model):
        layer.moving_variance.assign(rng.uniform(0.1, 0.3, layer.moving_variance.shape))
    return model


@pytest.fixture(scope="session")
def backbone_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("backbone") / "model.keras")
    build_backbone(3).save(path)
    return path


@pytest.fixture(scope="session")
def backbone(backbone_path):
    return keras.saving.load_model(backbone_path, compile=False)


def make_swr_task(backbone, class_names, seed):
    """`(StoredTask, deployed model)` of an SWR task with half the layers gated.

    The deployed model is what the job exports (`Swr.deploy`, i.e. `merge`).
    """
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    base = task_model.with_new_classifier(backbone, len(class_names))
    holder = types.SimpleNamespace(model=reparametrize(base))  # what SWRTrainer.model is
    for layer in reparam_layers(holder.model):
        gate = float(rng.random() < 0.5)
        layer.gate.assign(gate)
        shape = layer.kernel_delta.shape
        layer.kernel_delta.assign(rng.normal(0, 0.05, shape) * gate)
    for layer in batch_norm_layers(holder.model):
        layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.1, 0.3, layer.moving_variance.shape))
    head = task_model.classifier(holder.model)
    head.set_weights([rng.normal(0, 1, w.shape) for w in head.get_weights()])
    method = methods.get("swr")
    return method.task_state(holder), method.deploy(holder)


@pytest.fixture(scope="session")
def swr_tasks(backbone):
    """Two tasks of different class counts: `{name: (class_names, StoredTask, deployed)}`."""
    tasks = {}
    for seed, (name, classes) in enumerate(
        [("english", ["_silence_", "_unknown_", "yes", "no"]), ("mandarin", ["a", "b", "c"])]
    ):
        tasks[name] = (classes, *make_swr_task(backbone, classes, seed))
    return tasks


@pytest.fixture(scope="session")
def bank_template(tmp_path_factory, backbone_path, backbone, swr_tasks):
    """A bank of the two tasks; tests that change a bank copy it (`shutil.copytree`)."""
    from swr_keras.bank import TaskBank

    bank = TaskBank(tmp_path_factory.mktemp("bank_template") / "bank")
    add_tasks(bank, backbone_path, backbone, swr_tasks)
    return bank


def add_tasks(bank, backbone_path, backbone, swr_tasks, names=None):
    for name in names or swr_tasks:
        classes, stored, _ = swr_tasks[name]
        bank.add(
            name,
            stored,
            method="swr",
            class_names=classes,
            backbone_path=backbone_path,
            backbone_model=backbone,
            target_cost=0.5,
            clip_samples=CLIP_SAMPLES,
            metrics={"test_accuracy": 0.5, "task_parameters": stored.num_parameters},
        )
