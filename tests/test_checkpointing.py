"""Epoch checkpoints: atomic state, exact restore, and no resuming under other settings."""

import os

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
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        checkpointing.RECORD_FILE,
        checkpointing.STATE_FILE,
    ]


def test_the_same_run_may_resume(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    checkpointing.check_resumable(tmp_path, dict(RUN))  # the tuple was stored as a list


def test_another_run_is_refused_with_what_differs(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    with pytest.raises(ValueError, match=r"epochs 3 -> 8, seed 0 -> 1\)\. Use another output"):
        checkpointing.check_resumable(tmp_path, {**RUN, "epochs": 8, "seed": 1})


def test_fit_with_the_callback_starts_from_the_saved_epoch(tmp_path):
    saved = small_model(seed=1)
    save_epoch(saved, tmp_path, epoch=0)
    resumed = small_model(seed=2)
    # One epoch done of one: `fit` trains nothing, and still starts from the checkpoint.
    callback = checkpointing.EpochCheckpoint(tmp_path, 1, run=RUN)
    resumed.fit(np.ones((8, 4)), np.zeros((8, 3)), epochs=1, initial_epoch=1, callbacks=[callback])
    for got, want in zip(resumed.variables, saved.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


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


def weights_of(model):
    return [v.numpy().copy() for v in model.variables + model.optimizer.variables]


def two_epochs(directory):
    """Checkpoints after epochs 1 and 2 of two different models; returns their variables."""
    first, second = small_model(seed=1), small_model(seed=2)
    save_epoch(first, directory, epoch=0)
    save_epoch(second, directory, epoch=1)
    return weights_of(first), weights_of(second)


def truncate_to_half(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        file.truncate(size // 2)


def test_the_previous_epoch_is_kept_until_the_next_is_complete(tmp_path):
    first, second = two_epochs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        checkpointing.PREVIOUS_FILE,
        checkpointing.RECORD_FILE,
        checkpointing.STATE_FILE,
    ]
    restored = small_model(seed=3)
    checkpointing.load_state(restored, tmp_path)
    for got, want in zip(weights_of(restored), second):
        np.testing.assert_array_equal(got, want)
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 2


def test_a_damaged_checkpoint_falls_back_to_the_previous_epoch(tmp_path):
    first, _ = two_epochs(tmp_path)
    truncate_to_half(tmp_path / checkpointing.STATE_FILE)
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 1
    restored = small_model(seed=3)
    checkpointing.load_state(restored, tmp_path)
    for got, want in zip(weights_of(restored), first):
        np.testing.assert_array_equal(got, want)
    # The damaged file is not kept as "previous" when the next epoch is written.
    save_epoch(restored, tmp_path, epoch=1)
    truncate_to_half(tmp_path / checkpointing.STATE_FILE)
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 1


def test_a_changed_byte_is_damage_too(tmp_path):
    two_epochs(tmp_path)
    path = tmp_path / checkpointing.STATE_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 1


def test_no_good_checkpoint_is_refused_with_the_file_and_the_fix(tmp_path):
    save_epoch(small_model(seed=1), tmp_path, epoch=0)
    state = tmp_path / checkpointing.STATE_FILE
    truncate_to_half(state)
    message = rf"^The checkpoint {state} is damaged .* Delete {tmp_path} to train this stage"
    with pytest.raises(ValueError, match=message):
        checkpointing.read_progress(tmp_path)
    with pytest.raises(ValueError, match=message):
        checkpointing.check_resumable(tmp_path, RUN)
    with pytest.raises(ValueError, match=message):
        checkpointing.load_state(small_model(seed=1), tmp_path)


def test_a_write_that_fails_leaves_the_last_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    first, _ = two_epochs(tmp_path)

    def full_disk(temp):
        with open(temp, "wb") as file:
            file.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(
        checkpointing,
        "_write_atomically",
        lambda path, write, real=checkpointing._write_atomically: real(
            path, full_disk if path.endswith(checkpointing.STATE_FILE) else write
        ),
    )
    with pytest.raises(OSError, match="No space left"):
        save_epoch(small_model(seed=4), tmp_path, epoch=2)
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    # The last complete epoch is still there, as "previous", and it is what resumes.
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 2
    restored = small_model(seed=3)
    checkpointing.load_state(restored, tmp_path)
    for got, want in zip(weights_of(restored), weights_of(small_model(seed=2))):
        np.testing.assert_array_equal(got, want)


def test_a_killed_writer_leaves_a_temporary_file_the_next_write_removes(tmp_path):
    two_epochs(tmp_path)
    stale = tmp_path / f"{checkpointing.STATE_FILE}.tmp-99999"
    stale.write_bytes(b"half a checkpoint")
    assert checkpointing.read_progress(tmp_path)["epochs_done"] == 2
    save_epoch(small_model(seed=1), tmp_path, epoch=2)
    assert not stale.exists()
