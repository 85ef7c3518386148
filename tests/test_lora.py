"""Keras LoRA as a baseline: ranks within SWR's budgets, what trains, merging and task states."""

import math

import keras
import numpy as np
import pytest

import swr_keras
from swr_keras import lora
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.reparametrize import reparametrizable_layers
from tests.conftest import randomize_batch_norm


def train_one_step(model, images, rng):
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(images, rng.integers(0, 5, len(images)), epochs=1, batch_size=len(images), verbose=0)


@pytest.fixture
def tiny_bc_resnet(rng):
    model = swr_keras.models.BCResNet(tau=1, num_classes=3)
    randomize_batch_norm(model, rng)
    return model


@pytest.mark.parametrize("target_cost", [0.1, 0.3, 0.5])
def test_the_rank_for_a_budget_is_the_largest_within_it(tiny_bc_resnet, target_cost):
    rank = lora.rank_for_budget(tiny_bc_resnet, target_cost)
    feature_kernels = reparametrizable_layers(tiny_bc_resnet)[:-1]
    assert len(feature_kernels) == 43
    budget = target_cost * sum(math.prod(layer.kernel.shape) for layer in feature_kernels)
    model = lora.enable_lora(tiny_bc_resnet, rank)
    added = sum(
        math.prod(layer.lora_kernel_a.shape) + math.prod(layer.lora_kernel_b.shape)
        for layer in lora.lora_layers(model)
    )
    assert 0 < added <= budget
    assert lora.added_parameters(tiny_bc_resnet, rank + 1) > budget
    # Every Conv2D of the feature extractor has LoRA, no DepthwiseConv2D and not the classifier.
    convolutions = [l for l in feature_kernels if type(l) is keras.layers.Conv2D]
    assert [l.name for l in lora.lora_layers(model)] == [l.name for l in convolutions]


def test_at_initialisation_lora_computes_the_backbone(tiny_bc_resnet, rng):
    model = lora.enable_lora(tiny_bc_resnet, lora.rank_for_budget(tiny_bc_resnet, 0.3))
    x = rng.normal(size=(2, 40, 21, 1)).astype("float32")
    np.testing.assert_allclose(model(x), tiny_bc_resnet(x), atol=1e-6)


def test_rank_is_capped_at_full_rank(conv_net):
    model = lora.enable_lora(conv_net, 1000)
    for layer in lora.lora_layers(model):
        assert layer.lora_rank == lora.full_rank(layer)
    assert lora.full_rank(model.get_layer("nested").layers[0]) == 8  # 3x3x8 in, 8 out


def test_one_step_changes_exactly_what_lora_trains(conv_net, images, rng):
    model = lora.enable_lora(conv_net, 2)
    layers = lora.lora_layers(model)
    norms = batch_norm_layers(model)
    depthwise = [l for l in iter_layers(model) if type(l) is keras.layers.DepthwiseConv2D]
    block = [l for l in iter_layers(model) if type(l).__name__ == "ConvNormBlock"][0]
    groups = {
        "frozen": [l._kernel for l in layers]
        + [l.bias for l in layers if l.use_bias]
        + [v for l in depthwise for v in l.weights]
        + [v for n in norms for v in (n.gamma, n.beta)]
        + block.conv.weights,
        "factors_b": [l.lora_kernel_b for l in layers],
        "classifier": model.get_layer("classifier").weights,
        "bn_statistics": [v for n in norms for v in (n.moving_mean, n.moving_variance)],
    }
    before = {name: [v.numpy().copy() for v in group] for name, group in groups.items()}
    assert len(layers) == 4 and len(depthwise) == 1
    train_one_step(model, images, rng)
    for old, variable in zip(before["frozen"], groups["frozen"]):
        np.testing.assert_array_equal(old, variable.numpy(), err_msg=variable.path)
    for name in ("factors_b", "classifier", "bn_statistics"):
        for old, variable in zip(before[name], groups[name]):
            assert not np.array_equal(old, variable.numpy()), variable.path
    assert {v.path.split("/")[-1] for v in model.trainable_variables} == {
        "lora_kernel_a",
        "lora_kernel_b",
        "kernel",
        "bias",
    }
    assert len(model.trainable_variables) == 2 * 4 + 2


def test_merged_equals_unmerged_and_the_task_state_restores_it(conv_net, images, rng, tmp_path):
    model = lora.enable_lora(conv_net, 2)
    train_one_step(model, images, rng)
    assert all(np.any(l.lora_kernel_b.numpy() != 0) for l in lora.lora_layers(model))
    merged = lora.merge_lora(model)
    assert not lora.lora_layers(merged)
    assert swr_keras.cost.count_parameters(merged) == swr_keras.cost.count_parameters(conv_net)
    np.testing.assert_allclose(merged(images), model(images), atol=1e-5)

    state = lora.extract_lora_task_state(model)
    state.save(tmp_path / "task.npz")
    restored = swr_keras.apply_task_state(conv_net, tmp_path / "task.npz")
    np.testing.assert_allclose(restored(images), model(images), atol=1e-5)
    factors = sum(np.size(a) for group in state.low_rank.values() for a in group)
    assert factors == sum(
        np.size(l.lora_kernel_a) + np.size(l.lora_kernel_b) for l in lora.lora_layers(model)
    )
    statistics = sum(np.size(a) for group in state.batch_norm.values() for a in group)
    classifier = sum(np.size(w) for w in model.get_layer("classifier").weights)
    assert state.num_parameters == factors + statistics + classifier


def test_bad_budgets_and_ranks_say_what_to_do(conv_net):
    with pytest.raises(ValueError, match="target_cost"):
        lora.rank_for_budget(conv_net, 1.5)
    with pytest.raises(ValueError, match="larger target_cost"):
        lora.rank_for_budget(conv_net, 0.01)
    with pytest.raises(ValueError, match="rank=0"):
        lora.enable_lora(conv_net, 0)
