"""What a task of a module method (Adapter, SpotTune, Rep-Net) stores, and restoring it.

These methods deploy the model with its extra modules, so a task is not a
delta on the backbone's kernels but a set of whole tensors of the method's
model: every trainable variable (the learnable parameters: modules, tuned
copies, BN affine parameters, classifier) plus the moving statistics of the
BN layers that update in training (stored, but not parameters). Everything
else is the frozen pre-trained backbone, shared by all tasks. A fresh
method model built from the same backbone, with these tensors assigned,
computes what the trained model computes.

Tensors are named `<position>:<path>`, the position in the model's
de-duplicated `weights`, which is the same for every model a method builds
from the same backbone architecture and options.
"""

import math

import keras

from swr_keras.model_walk import batch_norm_layers
from swr_keras.validation import check_built


def task_variables(model):
    """`(learnable, statistics)`: the variables one task of `model` stores.

    `learnable` are the trainable variables; `statistics` the moving mean
    and variance of every BN layer that updates them in training (a
    trainable layer). Both lists are in `model.weights` order.
    """
    check_built(model)
    trainable = {id(v) for v in model.trainable_variables}
    updating = set()
    for layer in batch_norm_layers(model):
        if layer.trainable:
            updating.update((id(layer.moving_mean), id(layer.moving_variance)))
    weights = distinct_weights(model)
    return (
        [v for v in weights if id(v) in trainable],
        [v for v in weights if id(v) in updating and id(v) not in trainable],
    )


def count_task_parameters(model):
    """Learnable parameters one task of `model` stores (its trainable variables)."""
    learnable, _ = task_variables(model)
    return int(sum(math.prod(v.shape) for v in learnable))


def stored_tensors(model):
    """`(learnable, statistics)`: name -> array of what one task of `model` stores."""
    learnable, statistics = task_variables(model)
    position = {id(v): i for i, v in enumerate(distinct_weights(model))}
    return tuple(
        {f"{position[id(v)]}:{v.path}": keras.ops.convert_to_numpy(v) for v in variables}
        for variables in (learnable, statistics)
    )


def assign_stored_tensors(model, *groups):
    """Assigns `name -> array` dicts of `stored_tensors` into a fresh model of the method.

    Args:
        model: the method's model built from the shared pre-trained backbone,
            with the task's classifier shape; it is modified.
        *groups: dicts written by `stored_tensors`.

    Returns:
        `model`.
    """
    weights = distinct_weights(model)
    for group in groups:
        for name, value in group.items():
            position, _, path = name.partition(":")
            variable = weights[int(position)] if int(position) < len(weights) else None
            if variable is None or tuple(variable.shape) != tuple(value.shape):
                found = "nothing" if variable is None else f"shape {tuple(variable.shape)}"
                raise ValueError(
                    f"The task stores {path} with shape {tuple(value.shape)} at position "
                    f"{position}, where model '{model.name}' has {found}. Build the model "
                    "with the method, options, backbone and classes the task was trained with."
                )
            variable.assign(value)
    return model


def distinct_weights(model):
    """`model.weights` without repeats, in order."""
    seen = set()
    distinct = []
    for variable in model.weights:
        if id(variable) not in seen:
            seen.add(id(variable))
            distinct.append(variable)
    return distinct
