"""Atomic per-epoch checkpoints that let an interrupted `fit` resume exactly.

A checkpoint is every variable of the model -- weights, BN statistics,
random-seed states of dropout and Gumbel sampling -- plus the optimizer's and
the progress (epochs done), saved after each epoch into one `.npz` file
written under a temporary name and renamed into place. A killed run
therefore leaves the previous epoch's checkpoint intact, and state and
progress can never disagree.

A file can still be damaged afterwards (a full disk, a partial copy). The
SHA-256 of every checkpoint is recorded in `progress.json` before the file is
written, and the previous epoch's checkpoint is kept (`previous.npz`) until
the next one is complete; a checkpoint whose bytes do not match its record is
skipped for the previous one, and if none is good, resuming is refused with
one line naming the file and the fix.

Resuming needs the same model built the same way (same variable order),
the same optimizer, and a data stream that starts at the resumed epoch (see
`swr_keras.kws.tasks.epoch_datasets`); then the run continues as if it had
never stopped.
"""

import glob
import hashlib
import io
import json
import logging
import os
import zipfile

import keras
import numpy as np

from swr_keras import atomic_io

STATE_FILE = "state.npz"
PREVIOUS_FILE = "previous.npz"
RECORD_FILE = "progress.json"
# Checksums kept in the record: the files on disk plus the one being written.
_KEPT_CHECKSUMS = 3


def _write_atomically(path, write):
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _read_record(directory):
    """The recorded checkpoints, `[{"epochs_done": k, "sha256": hex}, ...]`, oldest first.

    `None` if there is no record (checkpoints written before checksums were).
    """
    path = os.path.join(directory, RECORD_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            return [dict(entry) for entry in json.load(file)["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a damaged record vouches for no checkpoint


def _recorded(record, path):
    return atomic_io.file_sha256(path) in {entry.get("sha256") for entry in record}


def _embedded_progress(path):
    """The progress stored in a checkpoint file; raises ValueError if it cannot be read."""
    try:
        with np.load(path) as saved:
            return json.loads(str(saved["progress"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} cannot be read ({type(error).__name__})") from None


def _good_checkpoint(directory):
    """`(path, progress)` of the latest undamaged checkpoint, or `(None, None)` if none.

    Raises:
        ValueError: checkpoint files exist but none is intact.
    """
    candidates = [
        os.path.join(directory, name)
        for name in (STATE_FILE, PREVIOUS_FILE)
        if os.path.exists(os.path.join(directory, name))
    ]
    if not candidates:
        return None, None
    record = _read_record(directory)
    good, damaged = [], []
    for path in candidates:
        if record is not None and not _recorded(record, path):
            damaged.append(path)
            continue
        try:
            good.append((path, _embedded_progress(path)))
        except ValueError:  # a checkpoint written before checksums were recorded
            damaged.append(path)
    if not good:
        raise ValueError(
            f"The checkpoint {damaged[0]} is damaged (its bytes do not match "
            f"{os.path.join(directory, RECORD_FILE)}) and no earlier good epoch is kept. "
            f"Delete {directory} to train this stage again from its start."
        )
    path, progress = max(good, key=lambda item: item[1]["epochs_done"])
    if damaged:
        logging.warning(
            "Checkpoint %s is damaged; resuming from %s (after epoch %d) instead.",
            damaged[0],
            path,
            progress["epochs_done"],
        )
    return path, progress


def read_progress(directory):
    """`{"epochs_done": int, "complete": bool, ...}` of a checkpoint directory.

    Raises:
        ValueError: the directory's checkpoints are all damaged.
    """
    _, progress = _good_checkpoint(directory)
    return progress if progress is not None else {"epochs_done": 0, "complete": False}


def check_resumable(directory, run):
    """Raises ValueError if `directory` holds a checkpoint of a run other than `run`.

    `run` is a JSON-compatible dict of what determines the training (epochs,
    schedule, seed, ...), recorded by `EpochCheckpoint(..., run=run)`.
    Resuming under other settings would splice two schedules into one model
    without a word, so it is refused. A checkpoint that recorded no run
    (written before runs were recorded) is compared on its epochs only.
    """
    progress = read_progress(directory)
    if not progress["epochs_done"]:
        return
    run = json.loads(json.dumps(run))
    saved = progress.get("run")
    if saved is None:
        saved = {"epochs": progress.get("epochs")} if "epochs" in run else {}
        run = {key: run[key] for key in saved}
    differing = sorted(key for key in set(saved) | set(run) if saved.get(key) != run.get(key))
    if differing:
        changes = ", ".join(f"{key} {saved.get(key)!r} -> {run.get(key)!r}" for key in differing)
        raise ValueError(
            f"{directory} holds the checkpoint of another run ({changes}). Use another "
            "output or work directory, or delete that checkpoint to start over."
        )


def _model_and_optimizer_variables(model):
    variables = list(model.variables)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables += list(optimizer.variables)
    return variables


def save_state(model, directory, include_optimizer=True, write=True, **progress):
    """Writes every variable of `model` (and of its optimizer) and `progress` atomically.

    The checksum goes into the record first, the last checkpoint becomes
    `previous.npz`, then the new one is renamed into place: a kill at any
    point leaves at least one checkpoint that matches the record.

    With `write=False` (a non-chief worker of a multi-worker run) the
    variables are read but nothing is written: reading a variable that is
    aggregated over the workers is a collective every worker must join.
    """
    variables = (
        _model_and_optimizer_variables(model) if include_optimizer else list(model.variables)
    )
    arrays = {f"v{index:05d}": np.asarray(v.numpy()) for index, v in enumerate(variables)}
    if not write:
        return
    os.makedirs(directory, exist_ok=True)
    arrays["names"] = np.array([v.path for v in variables])
    arrays["progress"] = np.array(json.dumps(progress))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()

    state = os.path.join(directory, STATE_FILE)
    record = _read_record(directory) or []
    if os.path.exists(state):
        # Kept until the new checkpoint is complete -- if it is intact.
        if _recorded(record, state):
            os.replace(state, os.path.join(directory, PREVIOUS_FILE))
    record = record[-(_KEPT_CHECKSUMS - 1) :] + [
        {"epochs_done": progress.get("epochs_done"), "sha256": hashlib.sha256(data).hexdigest()}
    ]
    _write_json_atomically(os.path.join(directory, RECORD_FILE), {"checkpoints": record})

    def write(temp):
        with open(temp, "wb") as file:
            file.write(data)

    _write_atomically(state, write)
    # Temporary files of killed writers are garbage now that a checkpoint is complete.
    for stale in glob.glob(os.path.join(glob.escape(directory), "*.tmp-*")):
        os.remove(stale)


def _write_json_atomically(path, data):
    def write(temp):
        with open(temp, "w") as file:
            json.dump(data, file, indent=1)

    _write_atomically(path, write)


def load_state(model, directory, include_optimizer=True):
    """Assigns the variables saved by `save_state` to `model` (and its optimizer).

    Reads the latest undamaged checkpoint (see the module docstring).

    Raises:
        ValueError: the checkpoint was written by a different model, or every
            checkpoint of `directory` is damaged.
    """
    variables = (
        _model_and_optimizer_variables(model) if include_optimizer else list(model.variables)
    )
    path, _ = _good_checkpoint(directory)
    if path is None:
        raise ValueError(f"{directory} holds no checkpoint to load.")
    with np.load(path) as saved:
        # Model variables come first, so a model-only load reads a prefix of
        # a checkpoint written with its optimizer.
        saved_shapes = [saved[f"v{i:05d}"].shape for i in range(len(saved["names"]))]
        if saved_shapes[: len(variables)] != [tuple(v.shape) for v in variables] or (
            include_optimizer and len(saved_shapes) != len(variables)
        ):
            raise ValueError(
                f"The checkpoint {path} was written by a different model or optimizer "
                f"({len(saved_shapes)} variables, this run has {len(variables)}). Use "
                "another --output_dir or delete that checkpoint."
            )
        for index, variable in enumerate(variables):
            variable.assign(saved[f"v{index:05d}"])


class EpochCheckpoint(keras.callbacks.Callback):
    """Restores at the start of `fit` and checkpoints after every epoch.

    Args:
        directory: where `state.npz` goes.
        epochs: the epochs of the whole `fit`, recorded with the progress.
        run: optional JSON-compatible dict of the settings this training
            depends on, recorded with the progress; `check_resumable`
            compares a later run's settings with it.
        write: False on the non-chief workers of a multi-worker run: they
            restore from the chief's checkpoints but write none.

    Pass `initial_epoch=read_progress(directory)["epochs_done"]` to `fit`
    and a data stream that starts there.
    """

    def __init__(self, directory, epochs, run=None, write=True):
        super().__init__()
        self.directory = directory
        self.epochs = int(epochs)
        self.run = run
        self.write = bool(write)

    def on_train_begin(self, logs=None):
        if read_progress(self.directory)["epochs_done"] > 0:
            load_state(self.model, self.directory)

    def on_epoch_end(self, epoch, logs=None):
        save_state(
            self.model,
            self.directory,
            write=self.write,
            epochs_done=epoch + 1,
            epochs=self.epochs,
            complete=epoch + 1 >= self.epochs,
            run=self.run,
            logs={key: float(value) for key, value in (logs or {}).items()},
        )
