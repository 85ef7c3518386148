"""SpotTune: block copies chosen per example by the agent, and what a task stores."""

import math

import keras
import numpy as np
import pytest

from swr_keras import cost
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.models import classifier, feature_extractor
from swr_keras.module_methods import module_state
from swr_keras.module_methods.blocks import block_layout
from swr_keras.module_methods.spottune import block_copies, build_spottune, policy_model
from tests.module_methods import helpers

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def parts(model):
    features = feature_extractor(model)
    return {layer.name: layer for layer in features.layers}


def set_agent_logits(model, kernel=None, bias=None):
    dense = parts(model)["agent"].get_layer("agent_logits")
    kernel = np.zeros(dense.kernel.shape, "float32") if kernel is None else kernel
    dense.set_weights([kernel, np.zeros(dense.bias.shape, "float32") if bias is None else bias])


def perturb_tuned_copies(model, rng):
    for _, tuned in block_copies(model):
        for variable in tuned.trainable_weights:
            noise = rng.normal(0.0, 0.3, variable.shape).astype("float32")
            variable.assign(variable + noise)


def test_block_layout_of_the_backbones():
    from swr_keras.models import BCResNet, Res15

    layout = block_layout(feature_extractor(BCResNet(tau=1)))
    assert (layout.num_blocks, layout.stage_starts) == (12, (0, 2, 4, 8))
    layout = block_layout(feature_extractor(Res15(num_maps=4)))
    assert (layout.num_blocks, layout.stage_starts) == (6, (0, 3))


@pytest.mark.parametrize("choice", [0, 1])
def test_either_path_starts_as_the_backbone(choice, backbones, data):
    x, _ = data
    for _, model in backbones:
        spottune = build_spottune(model, seed=0)
        blocks = len(block_copies(spottune))
        bias = np.tile(np.array([1.0, -1.0] if choice == 0 else [-1.0, 1.0], "float32"), blocks)
        set_agent_logits(spottune, bias=bias)
        policy = keras.ops.convert_to_numpy(policy_model(spottune)(x, training=False))
        np.testing.assert_array_equal(policy, np.full_like(policy, choice))
        helpers.assert_close(spottune(x, training=False), model(x, training=False))


def test_decisions_differ_across_examples_and_each_path_is_one_copy(backbones, data):
    rng = np.random.default_rng(1)
    # Examples that differ in level as well as noise (a scaled input scales
    # the fresh agent's features, which keeps its decisions).
    x = data[0] + rng.normal(0.0, 2.0, (len(data[0]), 1, 1, 1)).astype("float32")
    for _, model in backbones:
        spottune = build_spottune(model, seed=0)
        copies = block_copies(spottune)
        perturb_tuned_copies(spottune, rng)
        dense = parts(spottune)["agent"].get_layer("agent_logits")
        set_agent_logits(spottune, kernel=rng.normal(0, 30.0, dense.kernel.shape).astype("float32"))
        policy = keras.ops.convert_to_numpy(policy_model(spottune)(x, training=False))
        assert len({tuple(row) for row in policy}) > 1, policy
        assert 0 < policy.mean() < 1

        stem, head = parts(spottune)["stem"], parts(spottune)["head"]
        for example, choices in zip(x, policy):
            h = stem(example[None], training=False)
            for (frozen, tuned), choice in zip(copies, choices):
                h = (tuned if choice else frozen)(h, training=False)
            expected = classifier(spottune)(head(h, training=False))
            helpers.assert_close(spottune(example[None], training=False), expected, atol=1e-5)


def test_training_samples_decisions_per_example(backbones):
    x, _ = helpers.batch(size=16, seed=3)
    spottune = build_spottune(backbones[1][1], seed=0)
    policy = keras.ops.convert_to_numpy(policy_model(spottune)(x, training=True))
    assert set(np.unique(policy)) == {0.0, 1.0}
    assert len({tuple(row) for row in policy}) > 1


@pytest.fixture(scope="module")
def trained(backbones, data):
    x, y = data
    runs = []
    rng = np.random.default_rng(2)
    for name, model in backbones:
        spottune = build_spottune(model, seed=0)
        # Identical copies give the choice no gradient; a tuned copy that
        # differs (as after some training) lets the agent learn.
        perturb_tuned_copies(spottune, rng)
        runs.append((name, model, spottune, helpers.train_one_step(spottune, x, y)))
    return runs


def test_one_step_leaves_frozen_convolutions_alone(trained):
    for _, _, spottune, changed in trained:
        named = parts(spottune)
        frozen = {
            id(layer.kernel)
            for copy in [frozen for frozen, _ in block_copies(spottune)] + [named["head"]]
            for layer in iter_layers(copy)
            if isinstance(layer, CONVOLUTIONS)
        }
        allowed = {id(v) for _, tuned in block_copies(spottune) for v in tuned.weights}
        allowed |= {id(v) for layer in batch_norm_layers(spottune) for v in layer.weights}
        allowed |= {id(v) for v in named["agent"].weights + classifier(spottune).weights}
        allowed |= {id(v) for v in named["stem"].weights}
        assert frozen and not changed & frozen
        assert changed <= allowed
        tuned_kernels = {
            id(layer.kernel)
            for _, tuned in block_copies(spottune)
            for layer in iter_layers(tuned)
            if isinstance(layer, CONVOLUTIONS)
        }
        assert changed & tuned_kernels
        assert changed & {id(v) for v in named["agent"].get_layer("agent_logits").weights}


def test_stored_task_counts_and_restores(trained, data, tmp_path):
    x, _ = data
    for name, model, spottune, _ in trained:
        learnable, statistics = module_state.stored_tensors(spottune)
        frozen_kernels = sum(
            math.prod(layer.kernel.shape)
            for layer in iter_layers(spottune)
            if isinstance(layer, CONVOLUTIONS) and not layer.trainable
        )
        stored = sum(a.size for a in learnable.values())
        assert stored == cost.count_parameters(spottune) - frozen_kernels
        assert statistics

        restored = module_state.assign_stored_tensors(
            build_spottune(model, seed=0), learnable, statistics
        )
        helpers.assert_close(restored(x, training=False), spottune(x, training=False))
        path = tmp_path / f"{name}.keras"
        spottune.save(path)
        loaded = keras.models.load_model(path)
        helpers.assert_close(loaded(x, training=False), spottune(x, training=False))


def test_bad_agent_widths_name_the_value(backbones):
    with pytest.raises(ValueError, match="Received a block from 8 to 32"):
        build_spottune(backbones[0][1], agent_widths=(8, 32))
