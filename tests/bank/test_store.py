"""The task bank on disk: add/list/remove/verify, refusals that leave it unchanged, atomicity."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from swr_keras import bank as bank_lib
from swr_keras.bank import summary
from tests.bank.conftest import CLIP_SAMPLES, add_tasks, build_backbone


def snapshot(root):
    """Every file under `root` with its bytes: to assert a refused write changed nothing."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, root)] = file.read()
    return files


@pytest.fixture
def bank(tmp_path, bank_template):
    """A fresh copy of the two-task bank (adding costs seconds; copying does not)."""
    shutil.copytree(bank_template.root, tmp_path / "bank")
    return bank_lib.TaskBank(tmp_path / "bank")


def test_add_list_remove_verify(bank, swr_tasks):
    assert bank.names() == ["english", "mandarin"]
    assert bank.verify() == []
    entry = bank.entry("english")
    assert entry.class_names == swr_tasks["english"][0]
    assert entry.clip_samples == CLIP_SAMPLES and entry.target_cost == 0.5
    stored = bank.stored_task("english")
    original = swr_tasks["english"][1]
    assert sorted(stored.learnable) == sorted(original.learnable)
    for name, value in original.learnable.items():
        np.testing.assert_array_equal(stored.learnable[name], value)

    table = summary.summarize(bank)
    parameters = [row.parameters for row in table.rows]
    assert parameters == [swr_tasks[n][1].num_parameters for n in ("english", "mandarin")]
    # The backbone's learnable parameters by hand (tests/bank/conftest.py): kernels 72 + 72 +
    # 128, bias 16, BN gamma and beta 16 + 16 + 32, dense 256 + 16, classifier 96 + 6 = 726;
    # its 64 BN statistics are not parameters (the paper's #Param.).
    assert table.backbone_parameters == 726
    ratio = (726 + sum(parameters)) / 726
    assert table.param_ratio == pytest.approx(ratio)
    assert table.total_bytes == sum(len(v) for v in snapshot(bank.root).values())
    text = summary.format_summary(table)
    assert f"#Param.(2 tasks): bank {ratio:.2f}x, 2 separate models 2.00x" in text.splitlines()
    assert f"backbone: 726 parameters, {table.backbone_bytes:,} bytes" in text.splitlines()

    bank.remove("english")
    assert bank.names() == ["mandarin"]
    assert not any(n.startswith(".") for n in os.listdir(bank.tasks_dir))
    bank.verify()
    with pytest.raises(bank_lib.BankError, match="no task 'english'"):
        bank.remove("english")


def test_materialize_is_bit_identical_to_the_deployed_model(bank, swr_tasks):
    backbone = bank.load_backbone()
    for name, (_, _, deployed) in swr_tasks.items():
        model = bank_lib.materialize(bank, name, backbone)
        assert [w.shape for w in model.weights] == [w.shape for w in deployed.weights]
        for ours, theirs in zip(model.get_weights(), deployed.get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_duplicate_name_is_refused_and_nothing_changes(bank, backbone_path, backbone, swr_tasks):
    before = snapshot(bank.root)
    with pytest.raises(bank_lib.BankError, match="already has a task 'english'"):
        add_tasks(bank, backbone_path, backbone, swr_tasks, names=["english"])
    assert snapshot(bank.root) == before


def test_a_task_of_another_backbone_is_refused(bank, tmp_path, swr_tasks):
    other = build_backbone(11)  # same architecture, other weights
    other_path = str(tmp_path / "other.keras")
    other.save(other_path)
    before = snapshot(bank.root)
    classes, stored, _ = swr_tasks["english"]
    with pytest.raises(bank_lib.BankError, match="not from the bank's backbone"):
        bank.add("english_2", stored, method="swr", class_names=classes, backbone_path=other_path)
    assert snapshot(bank.root) == before


def test_a_resaved_backbone_is_the_same_backbone(bank, tmp_path, backbone, swr_tasks):
    copy_path = str(tmp_path / "copy.keras")
    backbone.save(copy_path)  # other bytes (the zip records a save date), same weights
    classes, stored, _ = swr_tasks["english"]
    bank.add("english_2", stored, method="swr", class_names=classes, backbone_path=copy_path)
    assert "english_2" in bank.names()


def test_a_task_that_does_not_fit_the_backbone_is_refused(bank, backbone_path, swr_tasks):
    classes, stored, _ = swr_tasks["english"]
    before = snapshot(bank.root)
    with pytest.raises(bank_lib.BankError, match="does not fit the backbone"):
        bank.add("wrong_classes", stored, method="swr", class_names=classes[:2],
                 backbone_path=backbone_path)  # fmt: skip
    assert snapshot(bank.root) == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "json"])
def test_verify_names_a_damaged_file(bank, damage):
    entry = bank.entry("mandarin")
    if damage == "json":
        path = os.path.join(entry.path, "task.json")
        record = json.load(open(path))
        record["class_names"] = ["x", "y", "z"]  # valid JSON, edited
        json.dump(record, open(path, "w"))
    else:
        path = entry.task_file
        data = open(path, "rb").read()
        if damage == "truncate":
            data = data[: len(data) // 2]
        else:  # same size, one bit flipped in the middle
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
        open(path, "wb").write(data)
    with pytest.raises(bank_lib.BankError, match=path.replace("\\", "\\\\")):
        bank.verify()
    with pytest.raises(bank_lib.BankError):
        bank.stored_task("mandarin")  # never loaded unchecked
    bank.stored_task("english")  # the other entry is fine


def test_bad_names_are_refused(bank, swr_tasks, backbone_path):
    classes, stored, _ = swr_tasks["english"]
    for name in ("English", "a/b", "", "1st", "x" * 65):
        with pytest.raises(bank_lib.BankError, match="lower_snake_case"):
            bank.add(name, stored, method="swr", class_names=classes, backbone_path=backbone_path)


KILLED_ADD = textwrap.dedent(
    """
    import os, signal, sys
    from swr_keras.bank import store
    from swr_keras.methods import StoredTask

    bank_dir, task_path, backbone_path = sys.argv[1:]
    real_save = StoredTask.save

    def save_half_then_die(self, path):
        real_save(self, path)  # task.npz is complete, task.json not yet written
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    StoredTask.save = save_half_then_die
    stored = StoredTask.load(task_path)
    store.TaskBank(bank_dir).add(
        "killed", stored, method="swr", class_names=["a", "b", "c"], backbone_path=backbone_path
    )
    """
)


def test_a_killed_add_leaves_the_bank_valid(bank, tmp_path, backbone_path, backbone, swr_tasks):
    classes, stored, _ = swr_tasks["mandarin"]
    task_path = str(tmp_path / "task.npz")
    stored.save(task_path)
    before = snapshot(bank.root)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.run(
        [sys.executable, "-c", KILLED_ADD, bank.root, task_path, backbone_path],
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -9, process.stderr[-2000:]
    leftovers = bank.verify()  # every visible entry complete
    assert bank.names() == ["english", "mandarin"]
    assert len(leftovers) == 1 and os.path.basename(leftovers[0]).startswith(".tmp-killed-")
    visible = {k: v for k, v in snapshot(bank.root).items() if "/.tmp-" not in k}
    assert visible == before
    # The name is still free: adding the task again works.
    bank.add("killed", stored, method="swr", class_names=classes, backbone_path=backbone_path,
             backbone_model=backbone)  # fmt: skip
    assert "killed" in bank.names()
    bank.verify()
