"""What one task stores on top of the shared backbone, for any method.

The honest accounting of every method rests on this split: `learnable` holds
the tensors trained by gradient that the task stores (its #Param.), and
`statistics` the stored tensors that are not parameters (BN running mean and
variance), `other` anything else the task needs (e.g. SWR's 0/1 gates). The
stored size in bytes (`save`, then the file's size) counts all three.
"""

import dataclasses
import os

import numpy as np

from swr_keras.atomic_io import save_npz_atomically
from swr_keras.task_state import TaskState

_GROUPS = ("learnable", "statistics", "other")


@dataclasses.dataclass
class StoredTask:
    """Named arrays of one task, in three groups.

    Attributes:
        learnable: name -> array of learnable parameters (counted in #Param.).
        statistics: name -> array of non-learnable stored values (BN moving
            mean/variance): stored, not counted as parameters.
        other: name -> array of anything else the task needs (gates, ...):
            stored, not counted.

    Names must not contain `"|"` (the file's group separator).
    """

    learnable: dict = dataclasses.field(default_factory=dict)
    statistics: dict = dataclasses.field(default_factory=dict)
    other: dict = dataclasses.field(default_factory=dict)

    @property
    def num_parameters(self):
        """Learnable parameters the task stores (#Param. of the task)."""
        return int(sum(np.size(a) for a in self.learnable.values()))

    @property
    def num_statistics(self):
        """Stored values that are not parameters (BN statistics)."""
        return int(sum(np.size(a) for a in self.statistics.values()))

    def save(self, path):
        """Writes an uncompressed `.npz` at `path` atomically; returns its size in bytes."""
        arrays = {}
        for group in _GROUPS:
            for name, value in getattr(self, group).items():
                if "|" in name:
                    raise ValueError(f"Stored tensor names cannot contain '|'. Received: {name!r}")
                arrays[f"{group}|{name}"] = np.asarray(value)
        save_npz_atomically(path, arrays)
        return os.path.getsize(path)

    @classmethod
    def load(cls, path):
        """Reads a file written by `save`."""
        stored = cls()
        with np.load(path) as data:
            for key in data.files:
                group, _, name = key.partition("|")
                if group not in _GROUPS:
                    raise ValueError(
                        f"{path} is not a stored task (entry {key!r}). Pass a file written "
                        "by StoredTask.save."
                    )
                getattr(stored, group)[name] = data[key]
        return stored


def from_task_state(state):
    """`swr_keras.TaskState` -> `StoredTask`: deltas, classifier and BN gamma/beta are learnable;
    BN moving mean/variance are statistics; the gates and the layer count are other."""
    stored = StoredTask(
        other={
            "gates": np.asarray(state.gates, "uint8"),
            "num_weighted_layers": np.asarray(state.num_weighted_layers, "int64"),
        }
    )
    for position, delta in state.deltas.items():
        stored.learnable[f"delta/{position}"] = delta
    for kind in ("head", "low_rank"):  # the classifier; factored deltas (LoRA)
        for position, weights in getattr(state, kind).items():
            for j, value in enumerate(weights):
                stored.learnable[f"{kind}/{position}/{j}"] = value
    for position, values in state.batch_norm.items():
        # [mean, var] or [gamma, beta, mean, var]: the last two are statistics.
        for j, value in enumerate(values):
            group = stored.statistics if j >= len(values) - 2 else stored.learnable
            group[f"batch_norm/{position}/{j}"] = value
    return stored


def to_task_state(stored):
    """`StoredTask` -> `TaskState`; the inverse of `from_task_state`."""
    state = TaskState(
        gates=np.asarray(stored.other["gates"], "float32"),
        num_weighted_layers=int(stored.other["num_weighted_layers"]),
    )
    groups = {}
    for name, value in {**stored.learnable, **stored.statistics}.items():
        kind, position, *index = name.split("/")
        if kind == "delta":
            state.deltas[int(position)] = value
        else:
            groups.setdefault((kind, int(position)), {})[int(index[0])] = value
    for (kind, position), members in groups.items():
        getattr(state, kind)[position] = [members[j] for j in sorted(members)]
    return state
