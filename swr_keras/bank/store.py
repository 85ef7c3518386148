"""The task bank on disk: one backbone, many tasks, every file hashed.

```
<bank>/
  backbone/model.keras      the pre-trained task model every task was trained from
  backbone/backbone.json    its weights' sha256 (the backbone's identity), file sha256 and size
  tasks/<name>/task.npz     what the task's method stores (`swr_keras.methods.StoredTask`)
  tasks/<name>/task.json    method, target cost, classes, settings, metrics, the
                            backbone's identity, sha256 and size of task.npz, and a
                            checksum of task.json itself
```

Writes are atomic: a new entry (or the backbone) is written completely into a
hidden sibling directory (`.tmp-*`), then renamed into place; `remove` renames
the entry to a hidden name before deleting it. A process killed at any point
leaves every visible entry complete; hidden leftovers are ignored (and named
by `verify`). The backbone's identity is a hash of its weights, not of the
`.keras` file (a zip with a save date), so a task trained from a re-saved copy
of the same backbone is accepted and one trained from another is refused.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import uuid

import numpy as np

from swr_keras import atomic_io
from swr_keras.atomic_io import file_sha256

BACKBONE_DIR = "backbone"
BACKBONE_FILE = "model.keras"
BACKBONE_INFO = "backbone.json"
TASKS_DIR = "tasks"
TASK_FILE = "task.npz"
TASK_INFO = "task.json"
FORMAT_VERSION = 1
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class BankError(ValueError):
    """A bank or an entry that cannot be used as asked; the message is one line."""


def weights_sha256(model):
    """Hex sha256 of a model's weights (dtype, shape and bytes, in `model.weights` order)."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(np.asarray(variable))
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def check_task_name(name):
    """Task names are signature keys and directory names: lower_snake_case, <= 64 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BankError(
            "A task name must be lower_snake_case (a-z, 0-9, _; starting with a letter; at "
            f"most 64 characters). Received: name={name!r}"
        )
    return name


@dataclasses.dataclass
class TaskEntry:
    """One task of the bank, as `task.json` describes it.

    Attributes:
        name: the task's name (its directory, signature and model name).
        method: the registered method that trained it (`swr_keras.methods`).
        class_names: the classes, in the order of the classifier's outputs.
        target_cost: SWR's c, or `None` for a method without one.
        clip_samples, sample_rate: what the task's serving front end takes.
        settings: the training settings (`Settings.recorded()` of the job).
        metrics: accuracies and accounting (test/validation accuracy,
            task_parameters, task_statistics, ...).
        data: how the task's data was found (task, data_dir, options), for
            the int8 calibration of a TFLite export.
        backbone_sha256: `weights_sha256` of the backbone it was trained from.
        files: file name -> `{"sha256", "bytes"}`.
        path: the entry's directory (not stored).
    """

    name: str
    method: str
    class_names: list
    target_cost: object = None
    clip_samples: int = 16000
    sample_rate: int = 16000
    settings: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    data: dict = dataclasses.field(default_factory=dict)
    backbone_sha256: str = ""
    files: dict = dataclasses.field(default_factory=dict)
    path: str = ""

    @property
    def task_file(self):
        return os.path.join(self.path, TASK_FILE)

    @property
    def stored_bytes(self):
        """Bytes on disk of the entry's files (task.json included)."""
        return sum(info["bytes"] for info in self.files.values()) + os.path.getsize(
            os.path.join(self.path, TASK_INFO)
        )

    def record(self):
        fields = dataclasses.asdict(self)
        fields.pop("path")
        return {"format_version": FORMAT_VERSION, **fields}


def _checksum(record):
    text = json.dumps({k: v for k, v in record.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _write_json(path, record):
    record = dict(record, checksum=_checksum(record))
    with open(path, "w", encoding="utf-8") as file:
        json.dump(record, file, indent=2, sort_keys=True, default=atomic_io.json_default)
        file.flush()
        os.fsync(file.fileno())


def _read_json(path):
    """A record written by `_write_json`; BankError naming the file if it is missing or damaged."""
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except FileNotFoundError:
        raise BankError(f"{path} is missing. Remove the entry and add it again.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BankError(
            f"{path} is corrupt or truncated ({error}). Remove the entry and add it again."
        ) from None
    if not isinstance(record, dict) or record.get("checksum") != _checksum(record):
        raise BankError(
            f"{path} fails its checksum (edited or damaged). Remove the entry and add it again."
        )
    if record.get("format_version") != FORMAT_VERSION:
        raise BankError(
            f"{path} has bank format {record.get('format_version')}; this version reads "
            f"{FORMAT_VERSION}. Rebuild the bank with this version."
        )
    return record


def _fsync_directory(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class TaskBank:
    """A bank directory (see the module docstring); created on the first `add`.

    Args:
        root: the bank's directory.
    """

    def __init__(self, root):
        self.root = os.fspath(root)

    # -- the backbone -------------------------------------------------------------
    @property
    def backbone_dir(self):
        return os.path.join(self.root, BACKBONE_DIR)

    @property
    def backbone_path(self):
        return os.path.join(self.backbone_dir, BACKBONE_FILE)

    def exists(self):
        return os.path.isdir(self.backbone_dir)

    def backbone_info(self):
        """`backbone.json`: `weights_sha256`, `files`, `parameters`; BankError if absent."""
        if not self.exists():
            raise BankError(
                f"{self.root} is not a task bank (no {BACKBONE_DIR}/). Add a task to create "
                "it, or pass the right --bank."
            )
        return _read_json(os.path.join(self.backbone_dir, BACKBONE_INFO))

    def load_backbone(self):
        """The backbone's Keras model (the pre-trained task model)."""
        import keras

        self.backbone_info()
        return keras.saving.load_model(self.backbone_path, compile=False)

    def _create(self, backbone_path, backbone_model):
        """Stores the backbone: copied into a hidden directory, then renamed into place."""
        from swr_keras import cost

        os.makedirs(self.root, exist_ok=True)
        temporary = os.path.join(self.root, f".tmp-backbone-{uuid.uuid4().hex}")
        os.mkdir(temporary)
        try:
            target = os.path.join(temporary, BACKBONE_FILE)
            shutil.copyfile(backbone_path, target)
            with open(target, "rb+") as file:
                os.fsync(file.fileno())
            record = {
                "format_version": FORMAT_VERSION,
                "weights_sha256": weights_sha256(backbone_model),
                # The paper's #Param. (BN statistics are not parameters).
                "parameters": cost.count_parameters(backbone_model),
                "files": {
                    BACKBONE_FILE: {
                        "sha256": file_sha256(target),
                        "bytes": os.path.getsize(target),
                    }
                },
            }
            _write_json(os.path.join(temporary, BACKBONE_INFO), record)
            _fsync_directory(temporary)
            os.rename(temporary, self.backbone_dir)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        _fsync_directory(self.root)

    # -- tasks --------------------------------------------------------------------
    @property
    def tasks_dir(self):
        return os.path.join(self.root, TASKS_DIR)

    def names(self):
        """Names of the bank's tasks (hidden leftovers of killed writes excluded), sorted."""
        if not os.path.isdir(self.tasks_dir):
            return []
        return sorted(n for n in os.listdir(self.tasks_dir) if not n.startswith("."))

    def entry(self, name):
        """The `TaskEntry` of `name` (task.json read and checked, files not hashed)."""
        path = os.path.join(self.tasks_dir, check_task_name(name))
        if not os.path.isdir(path):
            raise BankError(
                f"The bank {self.root} has no task {name!r}. Its tasks: "
                f"{', '.join(self.names()) or 'none'}."
            )
        record = _read_json(os.path.join(path, TASK_INFO))
        fields = {f.name for f in dataclasses.fields(TaskEntry)} - {"path"}
        return TaskEntry(**{k: v for k, v in record.items() if k in fields}, path=path)

    def entries(self):
        return [self.entry(name) for name in self.names()]

    def stored_task(self, name):
        """The task's `StoredTask`, after checking its file's size and sha256."""
        from swr_keras.methods import StoredTask

        entry = self.entry(name)
        self._check_files(entry.path, entry.files)
        return StoredTask.load(entry.task_file)

    def add(
        self,
        name,
        stored,
        *,
        method,
        class_names,
        backbone_path,
        backbone_model=None,
        target_cost=None,
        clip_samples=16000,
        sample_rate=16000,
        settings=None,
        metrics=None,
        data=None,
    ):
        """Adds a task atomically; creates the bank with `backbone_path` if it has none.

        Args:
            name: the task's name (`check_task_name`); must be new.
            stored: the task's `StoredTask` (what `method.task_state` returned).
            method: the registered method's name.
            class_names: the task's classes, in output order.
            backbone_path: the `.keras` file of the pre-trained model the task
                was trained from.
            backbone_model: that model, loaded (to skip loading it again).
            target_cost, clip_samples, sample_rate, settings, metrics, data:
                recorded in task.json (see `TaskEntry`).

        Returns:
            The new `TaskEntry`.

        Raises:
            BankError: a duplicate name, a backbone other than the bank's
                (its weights differ), or a task whose stored tensors do not fit
                the backbone. The bank is unchanged.
        """
        import keras

        from swr_keras import methods as methods_lib

        check_task_name(name)
        method_object = methods_lib.get(method)
        if os.path.lexists(os.path.join(self.tasks_dir, name)):
            raise BankError(
                f"The bank {self.root} already has a task {name!r}. Choose another name, or "
                "remove the old task first."
            )
        if backbone_model is None:
            backbone_model = keras.saving.load_model(backbone_path, compile=False)
        identity = weights_sha256(backbone_model)
        if self.exists():
            bank_identity = self.backbone_info()["weights_sha256"]
            if identity != bank_identity:
                raise BankError(
                    f"Task {name!r} was trained from backbone {backbone_path} (weights sha256 "
                    f"{identity[:12]}), not from the bank's backbone ({bank_identity[:12]}). "
                    "Add it to a bank of its own backbone."
                )
        _check_restores(method_object, backbone_model, stored, class_names, name)
        if not self.exists():
            self._create(backbone_path, backbone_model)
        os.makedirs(self.tasks_dir, exist_ok=True)
        temporary = os.path.join(self.tasks_dir, f".tmp-{name}-{uuid.uuid4().hex}")
        os.mkdir(temporary)
        try:
            task_bytes = stored.save(os.path.join(temporary, TASK_FILE))
            entry = TaskEntry(
                name=name,
                method=method,
                class_names=[str(c) for c in class_names],
                target_cost=None if target_cost is None else float(target_cost),
                clip_samples=int(clip_samples),
                sample_rate=int(sample_rate),
                settings=dict(settings or {}),
                metrics=dict(metrics or {}),
                data=dict(data or {}),
                backbone_sha256=identity,
                files={
                    TASK_FILE: {
                        "sha256": file_sha256(os.path.join(temporary, TASK_FILE)),
                        "bytes": int(task_bytes),
                    }
                },
            )
            _write_json(os.path.join(temporary, TASK_INFO), entry.record())
            _fsync_directory(temporary)
            final = os.path.join(self.tasks_dir, name)
            if os.path.lexists(final):  # added meanwhile by another process
                raise BankError(f"The bank {self.root} already has a task {name!r}.")
            os.rename(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        _fsync_directory(self.tasks_dir)
        return self.entry(name)

    def remove(self, name):
        """Removes a task: renamed to a hidden name (atomic), then deleted."""
        self.entry(name)
        hidden = os.path.join(self.tasks_dir, f".removed-{name}-{uuid.uuid4().hex}")
        os.rename(os.path.join(self.tasks_dir, name), hidden)
        _fsync_directory(self.tasks_dir)
        shutil.rmtree(hidden, ignore_errors=True)

    # -- checks -------------------------------------------------------------------
    def verify(self):
        """Checks every file's size and sha256 and every task's backbone.

        Returns:
            The hidden leftovers of killed writes (paths), which are not part
            of the bank and may be deleted.

        Raises:
            BankError: the first problem, naming the file.
        """
        info = self.backbone_info()
        self._check_files(self.backbone_dir, info["files"])
        for name in self.names():
            entry = self.entry(name)
            self._check_files(entry.path, entry.files)
            if entry.backbone_sha256 != info["weights_sha256"]:
                raise BankError(
                    f"Task {name!r} ({entry.path}) was trained from another backbone than the "
                    "bank's. Remove it."
                )
        leftovers = []
        for directory in (self.root, self.tasks_dir):
            if os.path.isdir(directory):
                leftovers += [
                    os.path.join(directory, n)
                    for n in sorted(os.listdir(directory))
                    if n.startswith((".tmp-", ".removed-"))
                ]
        return leftovers

    @staticmethod
    def _check_files(directory, files):
        for file_name, expected in files.items():
            path = os.path.join(directory, file_name)
            if not os.path.isfile(path):
                raise BankError(f"{path} is missing. Remove the entry and add it again.")
            size = os.path.getsize(path)
            if size != expected["bytes"]:
                raise BankError(
                    f"{path} has {size} bytes, {expected['bytes']} were stored (truncated or "
                    "replaced). Remove the entry and add it again."
                )
            if file_sha256(path) != expected["sha256"]:
                raise BankError(
                    f"{path} fails its sha256 check (damaged or replaced). Remove the entry and "
                    "add it again."
                )

    def total_bytes(self):
        """Bytes on disk of the backbone's and every task's files."""
        info = self.backbone_info()
        total = sum(f["bytes"] for f in info["files"].values())
        total += os.path.getsize(os.path.join(self.backbone_dir, BACKBONE_INFO))
        return total + sum(entry.stored_bytes for entry in self.entries())


def _check_restores(method, backbone_model, stored, class_names, name):
    """Refuses a task whose stored tensors do not fit the backbone (another architecture)."""
    from swr_keras.models import task_model as task_model_lib

    try:
        base = task_model_lib.with_new_classifier(backbone_model, len(class_names))
        method.restore(base, stored)
    except (ValueError, KeyError, IndexError) as error:
        raise BankError(
            f"Task {name!r} does not fit the backbone ({' '.join(str(error).split())}). Add it "
            "to a bank of the backbone it was trained from."
        ) from None
