"""What one task adds to the shared backbone: extract it, store it, apply it.

Under SWR a task stores only: the deltas of the layers its policy
reparametrised, the BN running statistics (plus gamma/beta with
`bn_affine`), and its classifier. `TaskState` holds exactly that, can be
saved as a small `.npz` file, and can be applied to a fresh copy of the
pre-trained backbone to obtain the task's deployable plain model.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from swr_keras.atomic_io import save_npz_atomically
from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import reparam_layers, weighted_leaf_layers
from swr_keras.validation import check_built, resolve_gates

_FORMAT_VERSION = 1


@dataclasses.dataclass
class TaskState:
    """The task-specific part of a reparametrised model.

    Layer positions index `weighted_leaf_layers(model)`, which lines up the
    reparametrised model with the plain backbone it came from.

    Attributes:
        gates: `[L]` 0/1 policy over `reparam_layers(model)`.
        num_weighted_layers: length of `weighted_leaf_layers` of the model.
        deltas: position -> kernel delta, for the layers with gate 1.
        batch_norm: position -> list of arrays: `[moving_mean,
            moving_variance]`, or `[gamma, beta, moving_mean,
            moving_variance]` when BN affine parameters are task-specific.
        head: position -> full weights of the task's own layers (classifier).
        low_rank: position -> `[a, b]`, a kernel delta stored as two factors
            (LoRA): `delta = reshape(a @ b, kernel.shape)`, `a` of shape
            `kernel.shape[:-1] + (r,)` and `b` of shape `(r, out)`.
    """

    gates: np.ndarray
    num_weighted_layers: int
    deltas: dict = dataclasses.field(default_factory=dict)
    batch_norm: dict = dataclasses.field(default_factory=dict)
    head: dict = dataclasses.field(default_factory=dict)
    low_rank: dict = dataclasses.field(default_factory=dict)

    @property
    def num_parameters(self):
        """Number of stored values (the gates, one bit each, are not counted)."""
        arrays = list(self.deltas.values())
        arrays += [a for group in self.batch_norm.values() for a in group]
        arrays += [a for group in self.head.values() for a in group]
        arrays += [a for group in self.low_rank.values() for a in group]
        return int(sum(np.size(a) for a in arrays))

    def save(self, path):
        """Writes the state to `path` (`.npz`) atomically: all or nothing."""
        arrays = {"gates": self.gates}
        arrays.update({f"delta/{i}": a for i, a in self.deltas.items()})
        for kind, groups in (
            ("batch_norm", self.batch_norm),
            ("head", self.head),
            ("low_rank", self.low_rank),
        ):
            for position, group in groups.items():
                arrays.update({f"{kind}/{position}/{j}": a for j, a in enumerate(group)})
        meta = {"format_version": _FORMAT_VERSION, "num_weighted_layers": self.num_weighted_layers}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype="uint8")
        save_npz_atomically(path, arrays)

    @classmethod
    def load(cls, path):
        """Reads a state written by `save`."""
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format_version") != _FORMAT_VERSION:
                raise ValueError(
                    f"{path} has task-state format {meta.get('format_version')}, this "
                    f"version reads {_FORMAT_VERSION}. Re-export it with this version."
                )
            state = cls(gates=data["gates"], num_weighted_layers=meta["num_weighted_layers"])
            groups = {"batch_norm": {}, "head": {}, "low_rank": {}}
            for key in data.files:
                parts = key.split("/")
                if parts[0] == "delta":
                    state.deltas[int(parts[1])] = data[key]
                elif parts[0] in groups:
                    groups[parts[0]].setdefault(int(parts[1]), {})[int(parts[2])] = data[key]
            for kind, by_position in groups.items():
                target = getattr(state, kind)
                for position, members in by_position.items():
                    target[position] = [members[j] for j in sorted(members)]
        return state


def extract_task_state(model, gates=None, include_bn_affine=None):
    """Collects what `model` stores for its task on top of the backbone.

    Args:
        model: a reparametrised model after training.
        gates: binary policy over `reparam_layers(model)`; defaults to the
            layers' stored gates.
        include_bn_affine: store BN gamma/beta too; by default only when they
            are trainable in `model` (`bn_affine=True`).

    Returns:
        A `TaskState`.
    """
    check_built(model)
    layers = reparam_layers(model)
    gates = resolve_gates(layers, gates)
    gate_of = {id(layer): gate for layer, gate in zip(layers, gates)}
    leaves = weighted_leaf_layers(model)
    state = TaskState(gates=gates, num_weighted_layers=len(leaves))
    for position, layer in enumerate(leaves):
        if isinstance(layer, ReparamLayer):
            if gate_of[id(layer)] == 1.0:
                state.deltas[position] = keras.ops.convert_to_numpy(layer.kernel_delta)
        elif isinstance(layer, keras.layers.BatchNormalization):
            affine = include_bn_affine
            if affine is None:
                affine = layer.gamma is not None and layer.gamma.trainable
            statistics = [layer.moving_mean, layer.moving_variance]
            if affine:
                statistics = [v for v in (layer.gamma, layer.beta) if v is not None] + statistics
            state.batch_norm[position] = [keras.ops.convert_to_numpy(v) for v in statistics]
        elif layer.trainable:
            state.head[position] = layer.get_weights()
    return state


def apply_task_state(backbone, state):
    """Builds the task's plain model from a pre-trained backbone and a `TaskState`.

    Args:
        backbone: the plain pre-trained model the task was reparametrised
            from, with the task's classifier architecture (new head shape).
            It is not modified.
        state: a `TaskState` (or a path written by `TaskState.save`).

    Returns:
        A new plain Keras model; it equals `merge(model)` of the trained
        reparametrised model.
    """
    check_built(backbone)
    if isinstance(state, (str, os.PathLike)):
        state = TaskState.load(state)
    if any(isinstance(layer, ReparamLayer) for layer in weighted_leaf_layers(backbone)):
        raise ValueError(
            f"apply_task_state needs the plain pre-trained backbone; model "
            f"'{backbone.name}' is reparametrised. Pass the model given to "
            "swr_keras.reparametrize, or use swr_keras.merge instead."
        )
    task_model = keras.models.clone_model(backbone, recursive=True)
    task_model.set_weights(backbone.get_weights())
    leaves = weighted_leaf_layers(task_model)
    if len(leaves) != state.num_weighted_layers:
        raise ValueError(
            f"The task state was extracted from a model with {state.num_weighted_layers} "
            f"layers with weights; backbone '{backbone.name}' has {len(leaves)}. Use the "
            "backbone architecture (and classifier) the task was trained with."
        )
    for position, delta in state.deltas.items():
        layer = leaves[position]
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        _check_shape(layer, "kernel", kernel.shape, delta.shape)
        layer.kernel.assign(kernel + delta)
    for position, (a, b) in state.low_rank.items():
        layer = leaves[position]
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        _check_shape(layer, "kernel factor", kernel.shape[:-1] + (a.shape[-1],), a.shape)
        layer.kernel.assign(kernel + np.matmul(a, b))
    for position, statistics in state.batch_norm.items():
        layer = leaves[position]
        targets = [layer.moving_mean, layer.moving_variance]
        if len(statistics) > 2:
            targets = [v for v in (layer.gamma, layer.beta) if v is not None] + targets
        for variable, value in zip(targets, statistics):
            _check_shape(layer, variable.name, tuple(variable.shape), value.shape)
            variable.assign(value)
    for position, weights in state.head.items():
        layer = leaves[position]
        for variable, value in zip(layer.weights, weights):
            _check_shape(layer, variable.name, tuple(variable.shape), value.shape)
        layer.set_weights(weights)
    return task_model


def _check_shape(layer, what, expected, received):
    if tuple(expected) != tuple(received):
        raise ValueError(
            f"Layer '{layer.name}' {what} has shape {tuple(expected)} but the task "
            f"state holds {tuple(received)}. Build the backbone with the task's "
            "architecture (e.g. its number of classes)."
        )
