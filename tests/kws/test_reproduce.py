"""The reproduction harness: its grid, a killed grid resumed, finished cells skipped, the tables."""

import csv
import dataclasses
import datetime
import json
import os

import numpy as np
import pytest
from scipy import stats

from swr_keras import methods
from swr_keras.kws import backbones, reproduce, tables, tasks
from swr_keras.kws import job as job_lib

from .conftest import TINY_TAU
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


def make_runner(data_dir, pretrained_path, tmp_path, pretrained=None):
    if pretrained is None:
        pretrained = backbones.load_pretrained(pretrained_path, "bc_resnet", 22, tau=TINY_TAU)
    return reproduce.Reproduction(
        str(tmp_path / "results"),
        str(tmp_path / "work"),
        SETTINGS,
        {},
        pretrained,
        pretrained_path or "none.keras",
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

    def __init__(self, corpus, pretrained, settings, work_dir, identity, verbose):
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
    assert record["seconds"] > 0 and record["versions"]["tensorflow"]
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
                },
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
        {"cell": dataclasses.asdict(policy), "result": {}, "seconds": 1.0, "shared_seconds": 100.0}
        | {"versions": {}, "command": "run"},
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
        reproduce.write_cell(str(tmp_path / "cells" / cell.file_name()), record)
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
