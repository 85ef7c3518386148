"""Epoch checkpoints: atomic state, exact restore, and no resuming under other settings."""

import keras
import numpy as np
import pytest

from swr_keras import checkpointing

RUN = {"epochs": 3, "learning_rate": 0.001, "seed": 0, "temperature": (2.0, 0.5)}


def small_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 4)), np.zeros((8, 3)), epochs=1, verbose=0)  # builds Adam's slots
    return model


def save_epoch(model, directory, epoch, run=RUN):
    callback = checkpointing.EpochCheckpoint(directory, RUN["epochs"], run=run)
    callback.set_model(model)
    callback.on_epoch_end(epoch, {"loss": 0.5})


def test_state_and_progress_restore_exactly(tmp_path):
    saved = small_model(seed=1)
    save_epoch(saved, tmp_path, epoch=0)
    restored = small_model(seed=2)
    checkpointing.load_state(restored, tmp_path)
    for got, want in zip(
        restored.variables + restored.optimizer.variables,
        saved.variables + saved.optimizer.variables,
    ):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    progress = checkpointing.read_progress(tmp_path)
    assert (progress["epochs_done"], progress["epochs"], progress["complete"]) == (1, 3, False)
    assert [p.name for p in tmp_path.iterdir()] == [checkpointing.STATE_FILE]


def test_the_same_run_may_resume(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    checkpointing.check_resumable(tmp_path, dict(RUN))  # the tuple was stored as a list


def test_another_run_is_refused_with_what_differs(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    with pytest.raises(ValueError, match=r"epochs 3 -> 8, seed 0 -> 1\)\. Use another output"):
        checkpointing.check_resumable(tmp_path, {**RUN, "epochs": 8, "seed": 1})


def test_an_empty_directory_resumes(tmp_path):
    checkpointing.check_resumable(tmp_path / "none", RUN)


def test_a_checkpoint_without_a_run_is_compared_on_its_epochs(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0, run=None)
    checkpointing.check_resumable(tmp_path, {**RUN, "seed": 5})  # only epochs were recorded
    with pytest.raises(ValueError, match=r"\(epochs 3 -> 8\)"):
        checkpointing.check_resumable(tmp_path, {**RUN, "epochs": 8})


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="written by a different model"):
        checkpointing.load_state(other, tmp_path, include_optimizer=False)
