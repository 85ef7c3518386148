"""A task trained from another backbone, with every checksum valid, is named and refused."""

import shutil

import keras
import pytest

from swr_keras import bank as bank_lib
from swr_keras.bank import from_run
from tests.bank.conftest import add_tasks, build_backbone, make_swr_task


@pytest.fixture(scope="module")
def other_bank(tmp_path_factory):
    """A bank of another backbone (other weights, same architecture) with one valid task."""
    path = str(tmp_path_factory.mktemp("other_backbone") / "model.keras")
    other = build_backbone(4)
    other.save(path)
    classes = ["_silence_", "_unknown_", "yes", "no"]
    stored, _ = make_swr_task(other, classes, seed=5)
    bank = bank_lib.TaskBank(tmp_path_factory.mktemp("other_bank") / "bank")
    add_tasks(bank, path, other, {"stranger": (classes, stored, None)})
    return bank, other


def test_a_task_of_another_backbone_fails_verify_with_valid_checksums(
    tmp_path, bank_template, other_bank
):
    bank_dir = tmp_path / "bank"
    shutil.copytree(bank_template.root, bank_dir)
    bank = bank_lib.TaskBank(bank_dir)
    # Copied whole from the other bank: its task.json and task.npz are intact.
    shutil.copytree(other_bank[0].entry("stranger").path, bank_dir / "tasks" / "stranger")
    bank.stored_task("stranger")  # every file matches its recorded size and sha256
    with pytest.raises(bank_lib.BankError, match="'stranger' .* trained from another backbone"):
        bank.verify()


def test_a_run_is_refused_before_training_by_a_bank_of_another_backbone(
    tmp_path, bank_template, backbone_path, other_bank
):
    with pytest.raises(bank_lib.BankError, match="holds another backbone than --pretrained"):
        from_run.check_can_add(bank_template.root, ["new_task"], other_bank[1])
    # The bank's own backbone, saved again and loaded, is the same backbone.
    resaved = str(tmp_path / "resaved.keras")
    shutil.copyfile(backbone_path, resaved)
    from_run.check_can_add(
        bank_template.root, ["new_task"], keras.saving.load_model(resaved, compile=False)
    )
