"""The method registry and the contract every registered method keeps, on a tiny BC-ResNet.

The contract tests run for every name in `methods.names()`, so a method added
to the registry is held to them without editing this file.
"""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from swr_keras import cost, methods, models
from swr_keras.kws.job import Settings
from swr_keras.model_walk import reparam_layers
from swr_keras.models import task_model

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

BUILT_IN = ("swr", "not_staged", "finetune_all", "finetune_classifier")
INPUT_SHAPE = (40, 12, 1)
CLASSES = 3
STEPS = 2
SETTINGS = Settings(
    supernet_epochs=1, policy_epochs=1, reparam_epochs=1, batch_size=4, learning_rate=1e-2
)


# -- the registry --------------------------------------------------------------
def test_importing_the_package_registers_the_built_in_methods():
    assert methods.names()[: len(BUILT_IN)] == BUILT_IN
    assert [m.name for m in methods.methods()] == list(methods.names())


def test_an_unknown_method_is_a_one_line_error_listing_the_registry():
    with pytest.raises(ValueError) as error:
        methods.get("adaptr")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("Unknown method 'adaptr'. Choose one of: swr, not_staged, ")
    assert all(name in message for name in methods.names())


def test_register_refuses_a_method_that_breaks_the_contract():
    def method(**attributes):
        return type("Broken", (methods.Method,), {"label": "x", "help": "x", **attributes})

    @dataclasses.dataclass(frozen=True)
    class Unprefixed:
        rank: int = dataclasses.field(default=4, metadata={"help": "rank"})

    with pytest.raises(ValueError, match="lower_snake_case"):
        methods.register(method(name="Bad Name"))
    with pytest.raises(ValueError, match="'swr' is registered already"):
        methods.register(method(name="swr"))
    with pytest.raises(ValueError, match="must start with 'brand_new_'"):
        methods.register(method(name="brand_new", Options=Unprefixed))
    with pytest.raises(ValueError, match="one-line help"):
        methods.register(method(name="brand_new", help="two\nlines"))
    assert "brand_new" not in methods.names()


@pytest.mark.parametrize("name", methods.names())
def test_every_method_declares_help_options_and_resumable_stage_names(name):
    method = methods.get(name)
    assert method.label and method.help and "\n" not in method.help
    options = method.options()  # every option has a default
    for field in dataclasses.fields(options):
        assert field.name.startswith(f"{name}_") and field.metadata["help"]
    with pytest.raises(ValueError, match=f"Method '{name}' has no option 'no_such'"):
        method.options({"no_such": 1})
    variant = 0.5 if method.takes_target_costs else None

    def stage_names(settings):
        stages = method.shared_stages(settings, options)
        stages += method.variant_stages(settings, options, variant)
        assert all(stage.epochs > 0 for stage in stages)
        return [stage.name for stage in stages]

    names = stage_names(SETTINGS)
    assert len(set(names)) == len(names)
    # A variant's stages are named with their schedule, so a checkpoint of
    # another number of epochs is never resumed under the same name.
    longer = stage_names(dataclasses.replace(SETTINGS, reparam_epochs=7))
    assert set(longer) != set(names)


# -- the contract, per method ---------------------------------------------------
@pytest.fixture(scope="module")
def pretrained():
    """BC-ResNet-1 with BN statistics away from 0/1, as after pre-training."""
    keras.utils.set_random_seed(1)
    model = models.BCResNet(tau=1, num_classes=5)
    batch = np.random.default_rng(1).normal(size=(8, *INPUT_SHAPE)).astype("float32")
    for _ in range(3):
        model(batch, training=True)
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4 * STEPS, *INPUT_SHAPE)).astype("float32")
    y = rng.integers(0, CLASSES, size=4 * STEPS)
    return x, tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()


def bn_statistics(model):
    """Every BN moving mean/variance of `model` (SubSpectralNorm's inner BN included)."""
    return [
        variable
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]


def train(method, model, data, variant):
    """Every stage of `method` for `variant`, one epoch of `STEPS` steps each."""
    options = method.options()

    def fit(stage):
        context = methods.FitContext(SETTINGS, options, STEPS, [], 0, 0, variant)
        method.fit(model, stage, data, context)

    for stage in method.shared_stages(SETTINGS, options):
        fit(stage)
    method.begin_variant(model, SETTINGS, options, variant)
    for stage in method.variant_stages(SETTINGS, options, variant):
        fit(stage)


@pytest.fixture(scope="module", params=methods.names())
def trained(request, pretrained, data):
    """`(method, backbone, model, weights before training, deployed, stored, outputs at
    initialisation of the model and of the backbone)` per method."""
    method = methods.get(request.param)
    keras.utils.set_random_seed(3)
    base = task_model.with_new_classifier(pretrained, CLASSES)
    backbone = keras.models.clone_model(base, recursive=True)
    backbone.set_weights(base.get_weights())
    x, dataset = data
    model = method.build(base, SETTINGS, method.options())
    at_init = (model(x, training=False).numpy(), backbone(x, training=False).numpy())
    before = {id(v): v.numpy() for v in model.weights}
    train(method, model, dataset, 0.5 if method.takes_target_costs else None)
    deployed = method.deploy(model)
    return method, backbone, model, before, deployed, method.task_state(model), at_init


def test_at_initialisation_the_method_computes_what_the_backbone_computes(trained):
    model_outputs, backbone_outputs = trained[-1]
    np.testing.assert_allclose(model_outputs, backbone_outputs, rtol=0, atol=1e-6)


def test_the_deployed_model_computes_what_the_trained_one_does(trained, data):
    method, backbone, model, _, deployed, _, _ = trained
    x, _ = data
    np.testing.assert_allclose(
        deployed(x, training=False), model(x, training=False), rtol=0, atol=1e-5
    )
    if method.deploys_merged:
        assert not reparam_layers(deployed)
        assert cost.multiply_ratio(deployed, backbone, INPUT_SHAPE) == 1.0


def test_the_stored_task_restores_the_deployed_model_from_the_backbone(trained, data, tmp_path):
    method, backbone, _, _, deployed, stored, _ = trained
    x, _ = data
    path = str(tmp_path / "task.npz")
    size = stored.save(path)
    assert size == os.path.getsize(path)
    loaded = methods.StoredTask.load(path)
    assert loaded.num_parameters == stored.num_parameters
    weights = [w.numpy() for w in backbone.weights]
    restored = method.restore(backbone, loaded)
    np.testing.assert_allclose(
        restored(x, training=False), deployed(x, training=False), rtol=0, atol=1e-5
    )
    for weight, value in zip(backbone.weights, weights):  # the backbone is not modified
        np.testing.assert_array_equal(weight.numpy(), value)


def test_param_counts_stored_learnable_tensors_and_never_bn_statistics(trained):
    method, backbone, model, _, _, stored, _ = trained
    assert stored.num_parameters == sum(np.size(a) for a in stored.learnable.values())
    statistics = sum(np.size(v) for v in bn_statistics(backbone))
    classifier = cost.count_parameters(task_model.classifier(backbone))
    if method.name in ("swr", "not_staged"):
        gated = sum(
            np.size(layer.kernel_delta)
            for layer in reparam_layers(model.model)
            if float(layer.gate.numpy()) == 1.0
        )
        assert stored.num_parameters == gated + classifier
        assert stored.num_statistics == statistics
    elif method.name == "finetune_all":
        assert stored.num_parameters == cost.count_parameters(backbone)
        assert stored.num_statistics == statistics
    elif method.name == "finetune_classifier":
        assert stored.num_parameters == classifier
        assert stored.num_statistics == 0


def test_only_what_the_method_trains_changes(trained):
    method, _, model, before, _, _, _ = trained
    changed = {id(v) for v in model.weights if not np.array_equal(v.numpy(), before[id(v)])}
    if method.name in ("swr", "not_staged"):
        frozen = [layer.base_kernel for layer in reparam_layers(model.model)]
        assert any(id(layer.kernel_delta) in changed for layer in reparam_layers(model.model))
    elif method.name == "finetune_classifier":
        frozen = task_model.feature_extractor(model).weights  # BN statistics included
        assert {id(v) for v in task_model.classifier(model).weights} <= changed
    elif method.name == "finetune_all":
        frozen = []
        assert {id(v) for v in bn_statistics(model)} <= changed
    else:
        pytest.skip(f"{method.name} tests what it trains in its own test module")
    assert not changed & {id(v) for v in frozen}
