"""Atomic per-epoch checkpoints that let an interrupted `fit` resume exactly.

A checkpoint is every variable of the model -- weights, BN statistics,
random-seed states of dropout and Gumbel sampling -- plus the optimizer's and
the progress (epochs done), saved after each epoch into one `.npz` file
written under a temporary name and renamed into place. A killed run
therefore leaves the previous epoch's checkpoint intact, and state and
progress can never disagree.

Resuming needs the same model built the same way (same variable order),
the same optimizer, and a data stream that starts at the resumed epoch (see
`swr_keras.kws.tasks.epoch_datasets`); then the run continues as if it had
never stopped.
"""

import json
import os

import keras
import numpy as np

STATE_FILE = "state.npz"


def _write_atomically(path, write):
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def read_progress(directory):
    """`{"epochs_done": int, "complete": bool, ...}` of a checkpoint directory."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return {"epochs_done": 0, "complete": False}
    with np.load(path) as saved:
        return json.loads(str(saved["progress"]))


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


def save_state(model, directory, include_optimizer=True, **progress):
    """Writes every variable of `model` (and of its optimizer) and `progress` atomically."""
    os.makedirs(directory, exist_ok=True)
    variables = (
        _model_and_optimizer_variables(model) if include_optimizer else list(model.variables)
    )
    arrays = {f"v{index:05d}": np.asarray(v.numpy()) for index, v in enumerate(variables)}
    arrays["names"] = np.array([v.path for v in variables])
    arrays["progress"] = np.array(json.dumps(progress))

    def write(temp):
        with open(temp, "wb") as file:
            np.savez(file, **arrays)

    _write_atomically(os.path.join(directory, STATE_FILE), write)


def load_state(model, directory, include_optimizer=True):
    """Assigns the variables saved by `save_state` to `model` (and its optimizer).

    Raises:
        ValueError: the checkpoint was written by a different model.
    """
    variables = (
        _model_and_optimizer_variables(model) if include_optimizer else list(model.variables)
    )
    path = os.path.join(directory, STATE_FILE)
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

    Pass `initial_epoch=read_progress(directory)["epochs_done"]` to `fit`
    and a data stream that starts there.
    """

    def __init__(self, directory, epochs, run=None):
        super().__init__()
        self.directory = directory
        self.epochs = int(epochs)
        self.run = run

    def on_train_begin(self, logs=None):
        if read_progress(self.directory)["epochs_done"] > 0:
            load_state(self.model, self.directory)

    def on_epoch_end(self, epoch, logs=None):
        save_state(
            self.model,
            self.directory,
            epochs_done=epoch + 1,
            epochs=self.epochs,
            complete=epoch + 1 >= self.epochs,
            run=self.run,
            logs={key: float(value) for key, value in (logs or {}).items()},
        )
