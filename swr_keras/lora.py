"""Keras' own LoRA (`layer.enable_lora(rank)`) as a transfer baseline with SWR's budgets.

Keras 3 gives `Conv2D` and `Dense` (not `DepthwiseConv2D`) a LoRA mode: the
kernel is frozen and the layer computes with `kernel + (alpha / r) * A @ B`,
`A` of shape `kernel.shape[:-1] + (r,)` (He-uniform) and `B` of shape
`(r, out)` (zeros), so the layer starts equal to its source. Here:

- Every `Conv2D` and `Dense` of the feature extractor (stem included, the
  classifier excluded: it is new and trains in full) gets LoRA with one rank
  `r` for the model, capped per layer at the kernel's full rank
  `min(prod(kernel.shape[:-1]), out)`, where more would add parameters
  without expressiveness.
- `DepthwiseConv2D` layers stay frozen. Keras has no LoRA for them, and a
  depthwise kernel has no input x output matrix to factorise (one small
  filter per channel); a delta of one's own there would no longer be "the
  LoRA Keras ships", which is what this baseline answers.
- `rank_for_budget` picks the largest `r` whose added parameters stay within
  SWR's budget `c * sum_l N(w_l)` (the denominator of SWR's added-parameter
  ratio: every Conv2D/DepthwiseConv2D/Dense kernel of the feature extractor).
- BN running statistics update, as under SWR (gamma and beta stay frozen);
  every other weight is frozen.

`merge_lora` folds `A @ B` into plain layers (the backbone's cost);
`extract_lora_task_state` stores the factors, BN statistics and classifier.
"""

import math

import keras
import numpy as np

from swr_keras.model_walk import batch_norm_layers, iter_layers, weighted_leaf_layers
from swr_keras.reparametrize import REPARAM_TWINS
from swr_keras.task_state import TaskState
from swr_keras.validation import check_built, check_target_cost

# Exact classes, as in `reparametrize`: a subclass may compute something else.
LORA_CLASSES = (keras.layers.Conv2D, keras.layers.Dense)


def _graph_layers(model):
    """Layers of `model`'s graph and of its nested models, in graph order.

    Not those inside custom layers: a clone cannot swap them, so neither SWR
    nor LoRA adapts them (they stay frozen).
    """
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _graph_layers(layer)


def _kernel_layers(model):
    return [layer for layer in _graph_layers(model) if type(layer) in REPARAM_TWINS]


def _feature_extractor_kernels(model):
    """Conv2D/DepthwiseConv2D/Dense of `model` without the classifier (the last one)."""
    return _kernel_layers(model)[:-1]


def _targets(model):
    return [layer for layer in _feature_extractor_kernels(model) if type(layer) in LORA_CLASSES]


def full_rank(layer):
    """The largest useful LoRA rank of a Conv2D/Dense: `min(fan_in, out)`."""
    shape = tuple(layer.kernel.shape)
    return min(math.prod(shape[:-1]), shape[-1])


def lora_parameters(layer, rank):
    """Parameters LoRA of `rank` adds to a Conv2D/Dense: `r * (fan_in + out)`."""
    shape = tuple(layer.kernel.shape)
    return int(rank) * (math.prod(shape[:-1]) + shape[-1])


def budget(model, target_cost):
    """SWR's parameter budget `c * sum_l N(w_l)` over the feature extractor's kernels."""
    target_cost = check_target_cost(target_cost)
    total = sum(math.prod(layer.kernel.shape) for layer in _feature_extractor_kernels(model))
    return target_cost * total


def added_parameters(model, rank):
    """Parameters LoRA of `rank` (capped per layer at full rank) adds to `model`."""
    return sum(lora_parameters(layer, min(rank, full_rank(layer))) for layer in _targets(model))


def rank_for_budget(model, target_cost):
    """The largest rank whose LoRA adds at most `budget(model, target_cost)` parameters.

    Args:
        model: the plain pre-trained task model.
        target_cost: SWR's target cost `c` in [0, 1].

    Returns:
        An int >= 1; ranks beyond every layer's full rank add nothing, so the
        result is at most the largest full rank.
    """
    check_built(model)
    targets = _targets(model)
    if not targets:
        raise ValueError(
            f"Model '{model.name}' has no Conv2D or Dense layer before its classifier to "
            "put LoRA on. Pass a task model built by swr_keras.models."
        )
    limit = budget(model, target_cost)
    if added_parameters(model, 1) > limit:
        raise ValueError(
            f"LoRA of rank 1 adds {added_parameters(model, 1):,} parameters, more than the "
            f"budget of target_cost={target_cost} ({limit:,.0f}). Use a larger target_cost."
        )
    rank = 1
    highest = max(full_rank(layer) for layer in targets)
    while rank < highest and added_parameters(model, rank + 1) <= limit:
        rank += 1
    return rank


def enable_lora(model, rank):
    """Returns a copy of `model` with Keras LoRA of `rank` on its feature extractor.

    `model` is untouched. See the module docstring for what trains.

    Args:
        model: the plain pre-trained task model (new classifier included).
        rank: the LoRA rank, e.g. `rank_for_budget(model, 0.1)`; each layer
            gets `min(rank, full_rank(layer))`.

    Returns:
        A new model that computes exactly what `model` computes.
    """
    check_built(model)
    if isinstance(rank, bool) or int(rank) != rank or rank < 1:
        raise ValueError(f"rank must be a positive integer. Received: rank={rank!r}")
    copy = keras.models.clone_model(model, recursive=True)
    copy.set_weights(model.get_weights())
    targets = _targets(copy)
    for layer in targets:
        layer.enable_lora(min(int(rank), full_rank(layer)))
    trained = [v for layer in targets for v in (layer.lora_kernel_a, layer.lora_kernel_b)]
    trained += _kernel_layers(copy)[-1].weights  # the new classifier
    trained = {id(v) for v in trained}
    # Variables, not layers, are frozen: a BN layer must stay trainable for
    # Keras to update its moving statistics in `fit`.
    for variable in copy.weights:
        variable.trainable = id(variable) in trained
    return copy


def lora_layers(model):
    """The LoRA-enabled layers of `model`, in graph order."""
    return [layer for layer in iter_layers(model) if getattr(layer, "lora_enabled", False)]


def merge_lora(model):
    """Returns a plain model whose kernels are `kernel + (alpha / r) * A @ B`.

    Every LoRA layer becomes the same layer without LoRA, holding its
    effective kernel and its bias; every other layer keeps its weights. The
    result costs what the backbone costs.
    """
    check_built(model)
    pairs = []

    def clone_layer(layer):
        config = layer.get_config()
        if getattr(layer, "lora_enabled", False):
            config.pop("lora_rank", None)
            config.pop("lora_alpha", None)
        clone = layer.__class__.from_config(config)
        pairs.append((layer, clone))
        return clone

    plain = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for source, clone in pairs:
        if not source.weights:
            continue
        if getattr(source, "lora_enabled", False):
            weights = [keras.ops.convert_to_numpy(source.kernel)]
            weights += [keras.ops.convert_to_numpy(source.bias)] if source.use_bias else []
            clone.set_weights(weights)
        else:
            clone.set_weights(source.get_weights())
    return plain


def extract_lora_task_state(model):
    """What one LoRA task stores: the factors, BN statistics and the classifier.

    Each layer's factors are stored as `[A, (alpha / r) * B]`, so the delta is
    their product, reshaped to the kernel.

    Returns:
        A `TaskState` with `low_rank` filled; `apply_task_state` builds the
        merged model from it and the plain backbone.
    """
    check_built(model)
    leaves = weighted_leaf_layers(model)
    state = TaskState(gates=np.zeros((0,), "float32"), num_weighted_layers=len(leaves))
    statistics = {id(layer) for layer in batch_norm_layers(model)}
    classifier = _kernel_layers(model)[-1]
    for position, layer in enumerate(leaves):
        if getattr(layer, "lora_enabled", False):
            scale = layer.lora_alpha / layer.lora_rank
            state.low_rank[position] = [
                keras.ops.convert_to_numpy(layer.lora_kernel_a),
                scale * keras.ops.convert_to_numpy(layer.lora_kernel_b),
            ]
        elif id(layer) in statistics:
            state.batch_norm[position] = [
                keras.ops.convert_to_numpy(v) for v in (layer.moving_mean, layer.moving_variance)
            ]
        elif layer is classifier:
            state.head[position] = layer.get_weights()
    return state
