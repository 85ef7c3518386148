"""The reproduction harness: its grid, a killed grid resumed, finished cells skipped, the tables."""

import csv
import dataclasses
import datetime
import hashlib
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from swr_keras import methods
from swr_keras.kws import backbones, reproduce, tables, tasks
from swr_keras.kws import job as job_lib

from .conftest import TINY_TAU, identified
from .test_job import record_trained_epochs

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

SETTINGS = job_lib.Settings(
    supernet_epochs=1, policy_epochs=1, reparam_epochs=1, batch_size=24, learning_rate=3e-3
)
AXES = dict(
    tables=("1",),
    figures=("2",),
    rows=["swr", "finetune_classifier"],
    tasks=("gsc2",),
    seeds=(0,),
    costs=(0.3, 0.5),
)
BACKBONE = "bc_resnet1"


class Killed(Exception):
    """Stands in for the process being killed right after a cell was written."""


def make_runner(data_dir, pretrained_path, tmp_path, pretrained=None, settings=SETTINGS):
    if pretrained is None:
        pretrained = backbones.load_pretrained(pretrained_path, "bc_resnet", 22, tau=TINY_TAU)
    if pretrained_path is None:  # a stand-in job loads nothing; the file's bytes are hashed
        pretrained_path = tmp_path / "stand_in.keras"
        if not pretrained_path.exists():
            pretrained_path.write_bytes(b"a pre-trained model")
    return reproduce.Reproduction(
        str(tmp_path / "results"),
        str(tmp_path / "work"),
        settings,
        {},
        pretrained,
        str(pretrained_path),
        "bc_resnet",
        TINY_TAU,
        tasks.resolve_data_dir(data_dir),
        command="test",
        verbose=0,
    )


def killing_writer(after):
    """A `write_cell` that raises `Killed` right after writing its `after`-th cell."""
    write = reproduce.write_cell
    written = []

    def write_then_die(path, record):
        write(path, record)
        written.append(os.path.basename(path))
        if len(written) == after:
            raise Killed()

    return write_then_die


def test_the_grid_has_every_row_cost_and_seed_once():
    cells = reproduce.grid(BACKBONE, tables=("1", "2"), figures=("2",), seeds=(0, 1, 2))
    names = [cell.file_name() for cell in cells]
    assert len(names) == len(set(names))
    table1 = {row.name for row in reproduce.table1_rows()}
    assert {"multilingual", "finetune_all", "finetune_classifier", "lora", "swr"} <= table1
    assert "not_staged" not in table1  # a row of Table 2
    per_seed_and_task = len([c for c in cells if c.seed == 0 and c.task == "mc_kws"])
    one_cost = sum(not row.takes_costs() for row in reproduce.table1_rows())
    with_costs = len(reproduce.table1_rows()) - one_cost
    # Table 2's rows all take costs; its SWR row is Table 1's (one set of cells).
    assert per_seed_and_task == one_cost + 3 * (with_costs + len(reproduce.TABLE2_ROWS) - 1)
    policies = [c for c in cells if c.kind == reproduce.POLICY]
    assert {(c.task, c.row) for c in policies} == {("gsc2", r) for r in reproduce.FIGURE2_ROWS}
    assert len(policies) == 9
    with pytest.raises(ValueError, match=r"--methods=not_staged is not a row of the selected"):
        reproduce.grid(BACKBONE, tables=("1",), rows=["not_staged"])


class FakeJob:
    """Stands in for `kws.job.Job`: records what the harness asks it to train."""

    log = []
    identities = []

    def __init__(self, corpus, pretrained, settings, work_dir, identity, verbose, validation_curve):
        FakeJob.identities.append(tuple(identity))
        self.settings = settings
        self.method = methods.get(settings.method)
        self.options = self.method.options(settings.options)
        FakeJob.log.append(("job", settings.method, settings.seed, settings.options))

    def check_resumable(self, costs):
        pass

    def train_shared(self):
        FakeJob.log.append(("shared", self.settings.method, self.settings.seed))

    def train_variant(self, variant):
        FakeJob.log.append(("variant", self.settings.method, self.settings.seed, variant))
        accuracy = 0.5 + 0.1 * self.settings.seed + (variant or 0)
        return {"test_accuracy": accuracy, "param_ratio_two_tasks": 1.5, "mult_ratio": 1.0}, None

    def settings_dict(self):
        return dataclasses.asdict(self.settings)


def test_killed_grid_resumes_and_skips_finished_cells(kws_data_dir, tmp_path, monkeypatch):
    # Two methods (SWR, and LoRA whose budget is the target cost), two seeds, two costs.
    cells = reproduce.grid(BACKBONE, **dict(AXES, rows=["swr", "lora"], seeds=(0, 1), figures=()))
    assert len(cells) == 8
    monkeypatch.setattr(job_lib, "Job", FakeJob)
    runner = make_runner(kws_data_dir, None, tmp_path, pretrained=object())
    FakeJob.log = []
    with monkeypatch.context() as patch:
        patch.setattr(reproduce, "write_cell", killing_writer(after=3))
        with pytest.raises(Killed):  # after seed 0's SWR cells and LoRA at c = 0.3
            runner.run(cells)
    # One job per row and seed (SWR's target costs share it), one per LoRA budget.
    assert FakeJob.log == [
        ("job", "swr", 0, {}),
        ("shared", "swr", 0),
        ("variant", "swr", 0, 0.3),
        ("variant", "swr", 0, 0.5),
        ("job", "lora", 0, {"lora_budget": 0.3}),
        ("shared", "lora", 0),
        ("variant", "lora", 0, None),
    ]
    FakeJob.log = []
    assert runner.run(cells) == 5
    assert [entry for entry in FakeJob.log if entry[0] != "shared"] == [
        ("job", "lora", 0, {"lora_budget": 0.5}),
        ("variant", "lora", 0, None),
        ("job", "swr", 1, {}),
        ("variant", "swr", 1, 0.3),
        ("variant", "swr", 1, 0.5),
        ("job", "lora", 1, {"lora_budget": 0.3}),
        ("variant", "lora", 1, None),
        ("job", "lora", 1, {"lora_budget": 0.5}),
        ("variant", "lora", 1, None),
    ]
    FakeJob.log = []
    assert runner.run(cells) == 0 and FakeJob.log == []
    records = reproduce.read_cells(runner.cells_dir)
    assert sorted(records) == sorted(c.file_name() for c in cells)
    record = records["bc_resnet1-gsc2-lora-c050-s1.json"]
    assert record["settings"]["options"] == {"lora_budget": 0.5}
    assert record["result"]["test_accuracy"] == pytest.approx(0.6)
    assert record["cell"] == dataclasses.asdict(reproduce.Cell(BACKBONE, "gsc2", "lora", 0.5, 1))


@pytest.mark.slow  # trains SWR (two target costs) and the classifier on BC-ResNet-1
def test_a_real_grid_killed_between_cells_resumes_and_draws_its_tables(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch
):
    cells = reproduce.grid(BACKBONE, **AXES)
    assert [c.file_name() for c in cells] == [
        "bc_resnet1-gsc2-swr-policy-s0.json",
        "bc_resnet1-gsc2-swr-c030-s0.json",
        "bc_resnet1-gsc2-swr-c050-s0.json",
        "bc_resnet1-gsc2-finetune_classifier-s0.json",
    ]
    with monkeypatch.context() as patch:
        patch.setattr(reproduce, "write_cell", killing_writer(after=2))
        with pytest.raises(Killed):  # between the two target costs
            make_runner(kws_data_dir, tiny_pretrained, tmp_path).run(cells)
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        runner = make_runner(kws_data_dir, tiny_pretrained, tmp_path)
        assert runner.run(cells) == 2
    # Stage 1 is loaded, not trained again: only what the killed run left undone.
    assert trained == [("stage2_reparam_c0.50_e1", 0), ("finetune_classifier_e1", 0)]

    records = reproduce.read_cells(runner.cells_dir)
    record = records["bc_resnet1-gsc2-swr-c030-s0.json"]
    assert record["settings"]["seed"] == 0 and record["result"]["target_cost"] == 0.3
    assert record["seconds"] > 0
    assert {k: record["versions"][k] for k in ("tensorflow", "keras", "numpy")} == {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    # The job's stage 1 is counted once, with its first cell (the policy).
    policy = records["bc_resnet1-gsc2-swr-policy-s0.json"]
    assert policy["shared_seconds"] > 0 and record["shared_seconds"] == 0
    assert len(policy["result"]["layers"]) == len(policy["result"]["kinds"]) == 43
    costs = [p["target_cost"] for p in policy["result"]["controllability"]]
    assert costs == list(job_lib.CONTROLLABILITY_COSTS)

    written = tables.write_all(
        str(tmp_path / "results"), BACKBONE, ("1",), ("2",), (0,), (0.3, 0.5), "cmd"
    )
    # Named for the backbone: only BC-ResNet-8's (the paper's) go without a suffix.
    assert {os.path.basename(path) for path in written} == {
        "table1_bc_resnet1.md",
        "table1_bc_resnet1.csv",
        "claims_bc_resnet1.md",
        "figure2_bc_resnet1.md",
        "controllability_bc_resnet1.png",
        "policy_map_bc_resnet1.png",
    }
    lines = (tmp_path / "results" / "table1_bc_resnet1.md").read_text().splitlines()
    body = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines if " | " in line}
    # One seed: the mean, with no interval.
    assert body["SWR, c=0.3"][2] == f"{100 * record['result']['test_accuracy']:.1f}"


def write_records(directory, values):
    """Cell records of SWR at c = 0.1: `values[seed]` on GSC2, 0.9 x it on MC-KWS (not seed 2)."""
    for seed, accuracy in values.items():
        for task, scale in (("gsc2", 1.0), ("mc_kws", 0.9)):
            if task == "mc_kws" and seed == 2:
                continue
            cell = reproduce.Cell(BACKBONE, task, "swr", 0.1, seed)
            reproduce.write_cell(
                str(directory / "cells" / cell.file_name()),
                identified(
                    {
                        "cell": dataclasses.asdict(cell),
                        "result": {
                            "test_accuracy": scale * accuracy,
                            "validation_accuracy": accuracy,
                            "param_ratio_two_tasks": 1.2 + seed / 10,
                            "mult_ratio": 1.0,
                        },
                        "seconds": 10.0 * (seed + 1),
                        "shared_seconds": 0.0,
                        "versions": {"keras": "3"},
                        "command": "run",
                    }
                ),
            )


def test_table_cells_are_the_mean_and_students_t_interval(tmp_path):
    values = {0: 0.80, 1: 0.86, 2: 0.83}
    write_records(tmp_path, values)
    tables.write_all(str(tmp_path), BACKBONE, ("1", "2"), (), (0, 1, 2), (0.1,), "cmd")
    lines = (tmp_path / "table1_bc_resnet1.md").read_text().splitlines()
    body = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines if " | " in line}
    gsc2 = 100 * np.array(list(values.values()))
    half = stats.t.ppf(0.975, df=2) * np.std(gsc2, ddof=1) / np.sqrt(3)
    mc_kws = 90 * np.array([values[0], values[1]])
    mc_half = stats.t.ppf(0.975, df=1) * np.std(mc_kws, ddof=1) / np.sqrt(2)
    assert body["SWR, c=0.1"] == [
        "| SWR, c=0.1",
        "BC-ResNet-1",
        f"{gsc2.mean():.1f} ({half:.1f})",
        f"{mc_kws.mean():.1f} ({mc_half:.1f}; n=2)",  # a seed short: says so
        f"{np.mean([1.2, 1.3, 1.4, 1.2, 1.3]):.2f}x",
        "1.00x",
        f"{np.mean([10, 20, 30, 10, 20]):.0f} |",
    ]
    assert body["TAPS"] == ["| TAPS", "BC-ResNet-1", "-", "-", "-", "-", "- |"]
    # One seed has no interval; a half-width of 0 would claim certainty.
    assert tables.accuracy_cell([0.5], 3) == "50.0 (n=1)"
    assert tables.accuracy_cell([0.5], 1) == "50.0"
    assert lines[0] == "# Table 1: KWS transfer, BC-ResNet-1"
    assert "Versions: keras 3" in lines and "Cells computed by: `run`" in lines
    header = lines.index("| Method | Backbone | GSC2 | MC-KWS | #Param. | #Mult. | time/cell (s) |")
    assert lines[header + 1] == "|---|---|---|---|---|---|---|"
    table2 = (tmp_path / "table2_bc_resnet1.md").read_text()
    assert "| Method | c=0.1 GSC2 | c=0.1 MC-KWS | time/cell (s) |\n|---|---|---|---|\n" in table2
    assert f"| SWR (two-stage) | {gsc2.mean():.1f} ({half:.1f}) |" in table2
    # The grid's compute: every cell's own seconds (10, 20, 30 on GSC2; 10, 20 on MC-KWS).
    for text in (table2, "\n".join(lines)):
        assert "The whole grid so far: 5 finished cells of BC-ResNet-1" in text
        assert "90 s (0.0 h) of compute in all" in text
    with open(tmp_path / "table1_bc_resnet1.csv") as file:
        rows = {(r["row"], r["target_cost"], r["task"]): r for r in csv.DictReader(file)}
    assert float(rows[("swr", "0.1", "gsc2")]["accuracy_ci95"]) == pytest.approx(half, abs=1e-3)
    assert rows[("swr", "0.1", "mc_kws")]["seeds"] == "0 1"
    assert rows[("taps", "", "gsc2")]["accuracy_mean"] == ""


def test_the_grid_time_counts_each_shared_stage_once(tmp_path):
    write_records(tmp_path, {0: 0.8})  # 10 s on each task
    policy = reproduce.Cell(BACKBONE, "gsc2", "swr", None, 0, reproduce.POLICY)
    reproduce.write_cell(
        str(tmp_path / "cells" / policy.file_name()),
        identified(
            {"cell": dataclasses.asdict(policy), "result": {}, "seconds": 1.0}
            | {"shared_seconds": 100.0, "versions": {}, "command": "run"}
        ),
    )
    tables.write_all(str(tmp_path), BACKBONE, ("1",), (), (0,), (0.1,), "cmd")
    text = (tmp_path / "table1_bc_resnet1.md").read_text()
    assert "3 finished cells of BC-ResNet-1 (both tables and Fig. 2), 121 s (0.0 h)" in text


def test_the_grid_wall_time_is_the_union_of_the_cells_running_intervals(tmp_path):
    # Two processes side by side (900-1000 s and 950-1050 s), a later run (4970-5000 s,
    # 20 s of it a shared stage) and a record that says nothing of when it finished.
    runs = {
        ("gsc2", 0): (1000, 100.0, 0.0),
        ("mc_kws", 0): (1050, 100.0, 0.0),
        ("gsc2", 1): (5000, 10.0, 20.0),
        ("mc_kws", 1): (None, 7.0, 0.0),
    }
    for (task, seed), (end, seconds, shared) in runs.items():
        cell = reproduce.Cell(BACKBONE, task, "swr", 0.1, seed)
        result = {"test_accuracy": 0.9, "validation_accuracy": 0.9}
        result |= {"param_ratio_two_tasks": 1.2, "mult_ratio": 1.0}
        record = {"cell": dataclasses.asdict(cell), "result": result}
        record |= {"seconds": seconds, "shared_seconds": shared, "versions": {}, "command": "run"}
        if end is not None:
            stamp = datetime.datetime.fromtimestamp(end, datetime.UTC)
            record["finished"] = stamp.strftime("%Y-%m-%dT%H:%M:%S%z")
        reproduce.write_cell(str(tmp_path / "cells" / cell.file_name()), identified(record))
    tables.write_all(str(tmp_path), BACKBONE, ("1",), (), (0, 1), (0.1,), "cmd")
    text = (tmp_path / "table1_bc_resnet1.md").read_text()
    assert "4 finished cells of BC-ResNet-1 (both tables and Fig. 2), 237 s (0.1 h)" in text
    assert "Wall time 180 s (0.1 h): the union of the cells' running intervals" in text
    # Without any finish time there is no wall time to tell.
    for record in (tmp_path / "cells").iterdir():
        record.unlink()
    write_records(tmp_path, {0: 0.8})
    tables.write_all(str(tmp_path), BACKBONE, ("1",), (), (0,), (0.1,), "cmd")
    assert "Wall time" not in (tmp_path / "table1_bc_resnet1.md").read_text()


def test_a_damaged_cell_record_is_named_with_its_fix(tmp_path):
    write_records(tmp_path, {0: 0.8})
    damaged = tmp_path / "cells" / "bc_resnet1-gsc2-swr-c010-s9.json"
    damaged.write_text('{"cell": {"seed"')  # a copy cut short
    with pytest.raises(ValueError, match=f"^{damaged} is not a cell record .*; delete it, and"):
        reproduce.read_cells(str(tmp_path / "cells"))
    assert damaged.read_text() == '{"cell": {"seed"'  # left for the user to look at


def test_the_multilingual_row_answers_with_the_task_classes_only(kws_data_dir, tiny_pretrained):
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    corpus = tasks.list_task("gsc2", tasks.resolve_data_dir(kws_data_dir), seed=0)
    names = list(tasks.multilingual_class_names())

    def by_hand(names):  # the 22 outputs restricted to the 12 task classes
        columns = [names.index(name) for name in corpus.class_names]
        hits = [
            np.argmax(np.asarray(pretrained(x, training=False))[:, columns], axis=-1) == y.numpy()
            for x, y in tasks.evaluation_dataset(corpus, "test")
        ]
        return np.mean(np.concatenate(hits))

    found = reproduce.multilingual_accuracies(pretrained, corpus)
    assert found["test_accuracy"] == pytest.approx(by_hand(names))
    # GSC2's classes are the first 12 of the 22; the columns follow the names, in task order.
    swapped = names[12:] + names[:12]
    np.testing.assert_array_equal(
        reproduce.task_columns(["yes", "_silence_"], swapped), [swapped.index("yes"), 10]
    )
    with pytest.raises(ValueError, match=r"does not know the task's classes \['_silence_'\]"):
        reproduce.multilingual_accuracies(pretrained, corpus, class_names=names[1:])


def test_a_cell_record_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    reproduce.write_cell(str(path), {"cell": 1})

    def killed(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(Killed):
        reproduce.write_cell(str(path), {"cell": 2})
    # The complete earlier record, and no half-written file beside it.
    assert json.loads(path.read_text()) == {"cell": 1}
    assert os.listdir(tmp_path) == ["a.json"]


def stale_cells_grid():
    """SWR at c = 0.3 and the classifier on GSC2, seed 0: two cells, two jobs."""
    return reproduce.grid(
        BACKBONE,
        tables=("1",),
        rows=["swr", "finetune_classifier"],
        tasks=("gsc2",),
        seeds=(0,),
        costs=(0.3,),
    )


def run_stand_in(data_dir, tmp_path, settings=SETTINGS):
    """Runs `stale_cells_grid` with `FakeJob`; returns the runner and the variants trained."""
    FakeJob.log = []
    runner = make_runner(data_dir, None, tmp_path, pretrained=object(), settings=settings)
    runner.run(stale_cells_grid())
    return runner, [entry[1] for entry in FakeJob.log if entry[0] == "variant"]


def test_a_changed_setting_or_input_file_retrains_the_cell(
    kws_data_dir, tmp_path, monkeypatch, capsys
):
    data_dir = tmp_path / "data"
    shutil.copytree(kws_data_dir, data_dir)  # one clip of it is rewritten below
    monkeypatch.setattr(job_lib, "Job", FakeJob)
    runner, trained = run_stand_in(str(data_dir), tmp_path)
    assert trained == ["swr", "finetune_classifier"]
    assert run_stand_in(str(data_dir), tmp_path)[1] == []  # nothing changed: nothing trains
    swr = "bc_resnet1-gsc2-swr-c030-s0.json"
    before = reproduce.read_cells(runner.cells_dir)[swr]
    assert before["identity"]["material"]["settings"]["reparam_epochs"] == 1
    capsys.readouterr()

    # A setting: every cell's job trains again, each named once with the setting.
    longer = dataclasses.replace(SETTINGS, reparam_epochs=2)
    assert run_stand_in(str(data_dir), tmp_path, longer)[1] == ["swr", "finetune_classifier"]
    out = capsys.readouterr().out
    assert (
        f"   stale cell {swr}: computed with other settings.reparam_epochs 1 -> 2; "
        "training it again\n"
    ) in out
    assert out.count("stale cell") == 2
    record = reproduce.read_cells(runner.cells_dir)[swr]
    assert record["identity"]["material"]["settings"]["reparam_epochs"] == 2
    assert record["settings"]["reparam_epochs"] == 2  # the job trained with it
    assert run_stand_in(str(data_dir), tmp_path, longer)[1] == []

    # A clip of the corpus rewritten with another length: its listing's digest changes.
    corpus = tasks.list_task("gsc2", tasks.resolve_data_dir(str(data_dir)), seed=0)
    clip = corpus.splits["test"][0].paths[0]
    with open(clip, "ab") as file:
        file.write(bytes(320))
    runner, trained = run_stand_in(str(data_dir), tmp_path, longer)
    assert trained == ["swr", "finetune_classifier"]
    assert "computed with other inputs.corpus" in capsys.readouterr().out
    assert run_stand_in(str(data_dir), tmp_path, longer)[1] == []

    # The pre-trained file's bytes, under the same path.
    (tmp_path / "stand_in.keras").write_bytes(b"another pre-trained model")
    runner, trained = run_stand_in(str(data_dir), tmp_path, longer)
    assert trained == ["swr", "finetune_classifier"]
    assert "computed with other inputs.pretrained" in capsys.readouterr().out
    # The report takes exactly the records the run left, none stale.
    cells = tables.read_fresh_cells(
        str(tmp_path / "results"), runner.identity, runner.corpus_digests
    )
    assert cells.stale == [] and len(cells.records) == 2

    # Code that changes what a cell measures (CELL_VERSION): retrained, from new checkpoints.
    monkeypatch.setattr(reproduce, "CELL_VERSION", reproduce.CELL_VERSION + 1)
    FakeJob.identities = []
    assert run_stand_in(str(data_dir), tmp_path, longer)[1] == ["swr", "finetune_classifier"]
    assert "computed by cell version" in capsys.readouterr().out
    assert all(f"cell_version={reproduce.CELL_VERSION}" in i for i in FakeJob.identities)


def test_a_stale_record_is_replaced_only_by_a_complete_one(kws_data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(job_lib, "Job", FakeJob)
    runner, _ = run_stand_in(kws_data_dir, tmp_path)
    path = os.path.join(runner.cells_dir, "bc_resnet1-gsc2-swr-c030-s0.json")
    with open(path) as file:
        before = file.read()

    def killed(self, variant):
        raise Killed()

    monkeypatch.setattr(FakeJob, "train_variant", killed)
    with pytest.raises(Killed):  # retraining under another setting, killed mid-cell
        run_stand_in(kws_data_dir, tmp_path, dataclasses.replace(SETTINGS, reparam_epochs=2))
    with open(path) as file:
        assert file.read() == before  # the old record, whole; still stale for that command


def test_a_record_without_a_valid_hash_is_never_reported(tmp_path, capsys):
    write_records(tmp_path, {0: 0.80, 1: 0.86})
    # Seed 2 as the harness wrote records before they carried an identity hash.
    cell = reproduce.Cell(BACKBONE, "gsc2", "swr", 0.1, 2)
    raw = {"cell": dataclasses.asdict(cell), "result": {"test_accuracy": 0.5}, "seconds": 1.0}
    raw |= {"shared_seconds": 0.0, "versions": {}, "command": "old"}
    reproduce.write_cell(str(tmp_path / "cells" / cell.file_name()), raw)
    # Seed 1 on MC-KWS: its material edited after the hash was taken.
    edited = tmp_path / "cells" / "bc_resnet1-mc_kws-swr-c010-s1.json"
    record = json.loads(edited.read_text())
    record["identity"]["material"]["inputs"]["corpus"] = "another corpus"
    edited.write_text(json.dumps(record))
    tables.write_all(str(tmp_path), BACKBONE, ("1",), (), (0, 1, 2), (0.1,), "cmd", list_stale=True)
    out = capsys.readouterr().out
    assert "== report: 2 stale cell records ignored" in out
    assert f"stale cell {cell.file_name()}: no identity hash" in out
    assert "stale cell bc_resnet1-mc_kws-swr-c010-s1.json: its identity hash does not match" in out
    text = (tmp_path / "table1_bc_resnet1.md").read_text()
    body = {line.split(" | ")[0][2:]: line.split(" | ") for line in text.splitlines()}
    gsc2 = 100 * np.array([0.80, 0.86])  # not seed 2's 50 %
    half = stats.t.ppf(0.975, df=1) * np.std(gsc2, ddof=1) / np.sqrt(2)
    assert body["SWR, c=0.1"][2:4] == [f"{gsc2.mean():.1f} ({half:.1f}; n=2)", "72.0 (n=1)"]
    assert "Stale cell records ignored: 2 of `cells/`" in text
    assert "Cells computed by: `old`" not in text


def test_the_report_expects_the_commands_settings_and_one_input_per_task(tmp_path):
    identity = reproduce.CellIdentity(SETTINGS, {}, "bc_resnet", TINY_TAU, {}, "sha")
    records = {}
    for seed, corpus, finished in ((0, "old", "2026-01-01"), (0, "new", "2026-02-01")):
        for row, cost in (("swr", 0.3), ("finetune_classifier", None)):
            cell = reproduce.Cell(BACKBONE, "gsc2", row, cost, seed)
            material = identity.material(cell, corpus)
            name = f"{corpus}-{cell.file_name()}"
            records[name] = {"cell": dataclasses.asdict(cell), "finished": finished}
            records[name]["identity"] = {
                "hash": reproduce.identity_hash(material),
                "material": material,
            }
    fresh, stale, notes = reproduce.fresh_records(records, identity)
    # Two corpus listings for one task and seed: the newest record's is reported, said once.
    assert sorted(fresh) == [
        "new-bc_resnet1-gsc2-finetune_classifier-s0.json",
        "new-bc_resnet1-gsc2-swr-c030-s0.json",
    ]
    assert [name for name, _ in stale] == [
        "old-bc_resnet1-gsc2-finetune_classifier-s0.json",
        "old-bc_resnet1-gsc2-swr-c030-s0.json",
    ]
    assert all(why == 'computed with other inputs.corpus "old" -> "new"' for _, why in stale)
    assert notes == [
        "bc_resnet1 gsc2 seed 0: the cell records were computed on 2 different inputs (corpus "
        "new, pre-trained sha; corpus old, pre-trained sha); reported: those of the newest "
        "record (corpus new, pre-trained sha)."
    ]
    # A command with another setting or another pre-trained file reports none of them.
    for other in (
        reproduce.CellIdentity(
            dataclasses.replace(SETTINGS, learning_rate=1e-2), {}, "bc_resnet", TINY_TAU, {}, "sha"
        ),
        reproduce.CellIdentity(SETTINGS, {}, "bc_resnet", TINY_TAU, {}, "another sha"),
    ):
        fresh, stale, _ = reproduce.fresh_records(records, other)
        assert fresh == {} and len(stale) == 4
    # A listing the caller made wins over the records' own, whatever their age.
    fresh, _, notes = reproduce.fresh_records(records, identity, {("gsc2", 0): "old"})
    assert {name.split("-")[0] for name in fresh} == {"old"} and notes == []


class StageCountingJob(job_lib.Job):
    """The real job, its training replaced by a log of the checkpoint each stage would use."""

    used = []

    def train_shared(self):
        for stage in self.method.shared_stages(self.settings, self.options):
            StageCountingJob.used.append((stage.name, self._directory(stage.name)))

    def train_variant(self, variant=None):
        for stage in self.method.variant_stages(self.settings, self.options, variant):
            StageCountingJob.used.append((stage.name, self._directory(stage.name)))
        return {"test_accuracy": 0.5, "param_ratio_two_tasks": 1.1, "mult_ratio": 1.0}, None


def test_no_stage_is_trained_twice_across_the_rows(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch
):
    # Each stage trains once per checkpoint directory: a second job that asks for the
    # same directory loads the finished stage (the slow test above shows the loading).
    monkeypatch.setattr(job_lib, "Job", StageCountingJob)
    StageCountingJob.used = []
    names = ["swr", "supernet_weight", "equal_rl"]
    cells = reproduce.grid(
        BACKBONE, tables=("2",), rows=names, tasks=("gsc2",), seeds=(0,), costs=(0.3,)
    )
    make_runner(kws_data_dir, tiny_pretrained, tmp_path).run(cells)
    used = StageCountingJob.used
    directories = {name: {d for n, d in used if n == name} for name, _ in used}
    # The super-net: SWR's serves + super-net weight (a stage 2 change) and equal r_l (a
    # policy change). The policy: SWR's serves + super-net weight; equal r_l has its own.
    assert [n for n, _ in used].count("stage1a_supernet") == 3
    assert len(directories["stage1a_supernet"]) == 1
    assert [n for n, _ in used].count("stage1b_policy") == 3
    assert len(directories["stage1b_policy"]) == 2
    # Stage 2: one per row, none shared.
    second = [d for n, d in used if n.startswith("stage2")]
    assert len(second) == len(set(second)) == 3


def test_jobs_are_identified_by_contents_not_paths(kws_data_dir, tiny_pretrained, tmp_path):
    source = tasks.resolve_data_dir(kws_data_dir)
    identity = job_lib.job_identity("gsc2", "bc_resnet", TINY_TAU, tiny_pretrained, source)
    with open(tiny_pretrained, "rb") as file:
        digest = hashlib.sha256(file.read()).hexdigest()
    assert f"pretrained_sha256={digest}" in identity
    copy = tmp_path / "elsewhere.keras"
    shutil.copy(tiny_pretrained, copy)
    assert job_lib.job_identity("gsc2", "bc_resnet", TINY_TAU, str(copy), source) == identity
    copy.write_bytes(copy.read_bytes() + b"\0")  # the same path, other bytes
    assert job_lib.job_identity("gsc2", "bc_resnet", TINY_TAU, str(copy), source) != identity

    # The corpus listing: a moved copy keeps its digest, a clip of another size does not.
    moved = tmp_path / "moved"
    shutil.copytree(kws_data_dir, moved)
    corpus = tasks.list_task("gsc2", source, seed=0)
    moved_corpus = tasks.list_task("gsc2", tasks.resolve_data_dir(str(moved)), seed=0)
    assert job_lib.corpus_digest(moved_corpus) == job_lib.corpus_digest(corpus)
    clip = moved_corpus.splits["train"][0].paths[0]
    with open(clip, "ab") as file:
        file.write(bytes(2))
    changed = tasks.list_task("gsc2", tasks.resolve_data_dir(str(moved)), seed=0)
    assert job_lib.corpus_digest(changed) != job_lib.corpus_digest(corpus)
    # A job's checkpoints carry it: a changed corpus never resumes another's.
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    keys = [
        job_lib.Job(c, pretrained, SETTINGS, str(tmp_path / "work"), identity, verbose=0).key
        for c in (corpus, changed)
    ]
    assert keys[0] != keys[1]


def test_each_table_names_the_commits_that_computed_its_cells(tmp_path):
    for row, cost, commit in (
        ("swr", 0.1, "aaaaaaa"),  # a row of both tables
        ("finetune_all", None, "bbbbbbb-dirty"),  # Table 1 only
        ("equal_rl", 0.1, "ccccccc"),  # Table 2 only
    ):
        cell = reproduce.Cell(BACKBONE, "gsc2", row, cost, 0)
        result = {"test_accuracy": 0.9, "validation_accuracy": 0.9}
        result |= {"param_ratio_two_tasks": 1.1, "mult_ratio": 1.0}
        record = {"cell": dataclasses.asdict(cell), "result": result, "seconds": 1.0}
        record |= {"shared_seconds": 0.0, "command": "run"}
        record["versions"] = {"keras": "3", "swr_keras_commit": commit}
        reproduce.write_cell(str(tmp_path / "cells" / cell.file_name()), identified(record))
    tables.write_all(str(tmp_path), BACKBONE, ("1", "2"), (), (0,), (0.1,), "cmd")
    one = (tmp_path / "table1_bc_resnet1.md").read_text().splitlines()
    two = (tmp_path / "table2_bc_resnet1.md").read_text().splitlines()
    assert "Commits that computed its cells: aaaaaaa, bbbbbbb-dirty" in one
    assert "Commits that computed its cells: aaaaaaa, ccccccc" in two
    assert "Versions: keras 3" in one and not any("swr_keras_commit" in line for line in one)


def test_a_longer_policy_search_leaves_the_baselines_cells_alone():
    """The policy search's settings identify the cells of the methods that
    search a policy only: a baseline that never reads them is not retrained."""
    longer = dataclasses.replace(SETTINGS, policy_epochs=SETTINGS.policy_epochs + 1)
    before, after = (
        reproduce.CellIdentity(s, {}, "bc_resnet", TINY_TAU, {}, "sha") for s in (SETTINGS, longer)
    )
    for row, cost, changes in (
        ("finetune_all", None, False),
        ("taps", None, False),
        ("smallest_first", 0.3, False),
        ("swr", 0.3, True),
        ("not_staged", 0.3, True),
    ):
        cell = reproduce.Cell(BACKBONE, "gsc2", row, cost, 0)
        hashes = [reproduce.identity_hash(i.material(cell, "corpus")) for i in (before, after)]
        assert (hashes[0] != hashes[1]) == changes, row
