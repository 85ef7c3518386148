"""The reproduction harness's plumbing, on answers known by hand: each Table 2 row reaches
its job with its own settings, two backbones' cells in one folder stay apart, a nested
running interval adds no wall time, the multi-lingual row's validation figure is the
validation split's, and the cost claim's "% per task" is half the two tasks' extra."""

import dataclasses
import datetime

import keras
import numpy as np
import pytest

from swr_keras.kws import claims, reproduce, tables, tasks
from swr_keras.kws import job as job_lib

from .conftest import write_result_record
from .test_reproduce import SETTINGS, make_runner

# The ablation each of the paper's Table 2 rows makes, read off the paper (Section 4.3);
# the fields of `kws.job.Settings` it sets, every other ablation field at the base's.
PAPER_TABLE2 = {
    "not_staged": {"method": "not_staged"},
    "swr": {"method": "swr"},
    "bn_affine": {"method": "swr", "bn_affine": True},
    "supernet_weight": {"method": "swr", "supernet_weight": True},
    "wo_supernet": {"method": "swr", "supernet": False},
    "equal_rl": {"method": "swr", "cost_weighting": "equal"},
}
ABLATION_FIELDS = ("method", "bn_affine", "supernet_weight", "supernet", "cost_weighting")


class Reached(Exception):
    """Raised in place of building the job: carries the settings the job was given."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings


def test_every_table2_row_reaches_its_job_with_its_own_settings(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch
):
    def reached(self, *args, **kwargs):
        (settings,) = [a for a in (*args, *kwargs.values()) if isinstance(a, job_lib.Settings)]
        raise Reached(settings)

    monkeypatch.setattr(job_lib.Job, "__init__", reached)
    runner = make_runner(kws_data_dir, tiny_pretrained, tmp_path, pretrained=keras.Sequential())
    cells = reproduce.grid("bc_resnet1", tables=("2",), tasks=("gsc2",), costs=(0.5,))
    given = {}
    for cell in cells:
        with pytest.raises(Reached) as reached_job:
            runner.run([cell])
        given[cell.row] = reached_job.value.settings
    assert set(PAPER_TABLE2) <= set(given)
    for name, changes in PAPER_TABLE2.items():
        expected = {field: getattr(SETTINGS, field) for field in ABLATION_FIELDS} | changes
        assert {f: getattr(given[name], f) for f in ABLATION_FIELDS} == expected, name
    # Rows beyond the paper's: each with what it names.
    for row in reproduce.rows_of("2"):
        assert given[row.name].method == row.method
        for field, value in row.changes:
            assert getattr(given[row.name], field) == value, row.name


def _record(backbone, accuracy, seconds=10.0, shared=0.0, finished=None):
    cell = reproduce.Cell(backbone, "gsc2", "swr", 0.1, 0)
    record = {
        "cell": dataclasses.asdict(cell),
        "result": {"test_accuracy": accuracy},
        "seconds": seconds,
        "shared_seconds": shared,
    }
    if finished is not None:
        stamp = datetime.datetime.fromtimestamp(finished, datetime.UTC)
        record["finished"] = stamp.strftime("%Y-%m-%dT%H:%M:%S%z")
    return record


def test_two_backbones_cells_in_one_folder_stay_apart():
    cells = tables.Cells({"a.json": _record("bc_resnet8", 0.91), "b.json": _record("res15", 0.52)})
    for backbone, accuracy in (("bc_resnet8", 0.91), ("res15", 0.52)):
        (found,) = cells.results(backbone, "gsc2", "swr", 0.1, (0,))
        assert found["result"]["test_accuracy"] == accuracy


def test_a_nested_running_interval_adds_no_wall_time():
    # 1000-1100 s, 1020-1050 s inside it, and 1090-1200 s overlapping its end: 200 s.
    # The order of the records must not matter.
    records = [
        _record("bc_resnet8", 0.9, seconds=100.0, finished=1100),
        _record("bc_resnet8", 0.9, seconds=20.0, shared=10.0, finished=1050),
        _record("bc_resnet8", 0.9, seconds=110.0, finished=1200),
        _record("res15", 0.9, seconds=5000.0, finished=1200),  # another backbone's
    ]
    for order in (records, records[::-1], records[1:] + records[:1]):
        cells = tables.Cells({f"{i}.json": r for i, r in enumerate(order)})
        assert tables.grid_wall_seconds(cells, "bc_resnet8") == pytest.approx(200.0)
    # Only the nested one and the one inside which it runs: the outer one's 100 s.
    cells = tables.Cells({"a.json": records[0], "b.json": records[1]})
    assert tables.grid_wall_seconds(cells, "bc_resnet8") == pytest.approx(100.0)


def test_the_multilingual_rows_validation_figure_is_the_validation_splits(monkeypatch):
    # Scores are the inputs: 4 test clips all answered right, 4 validation clips one right.
    names = ["_silence_", "yes", "no"]
    eye = np.eye(3, dtype="float32")
    splits = {
        "test": [(eye[[0, 1, 2, 1]], np.array([0, 1, 2, 1]))],
        "valid": [(eye[[0, 0, 0, 0]], np.array([0, 1, 2, 1]))],
    }
    monkeypatch.setattr(tasks, "evaluation_dataset", lambda corpus, split, **_: splits[split])
    inputs = keras.Input((3,))
    identity = keras.Model(inputs, keras.layers.Identity()(inputs))
    corpus = type("Corpus", (), {"class_names": names})()
    found = reproduce.multilingual_accuracies(identity, corpus, class_names=names)
    assert found["test_accuracy"] == pytest.approx(1.0)
    assert found["validation_accuracy"] == pytest.approx(0.25)


def test_the_extra_parameters_per_task_are_half_the_two_tasks(tmp_path):
    # #Param. 1.08x for the backbone and two tasks: 8.0 % for the two, 4.0 % each.
    for task in ("gsc2", "mc_kws"):
        write_result_record(str(tmp_path), task, "swr", claims.HEADLINE_COST, 0, 0.9, 1.08)
    cells = tables.Cells(reproduce.read_cells(str(tmp_path / "cells")))
    text = "\n".join(claims.cost_lines(cells, "bc_resnet8", (0,)))
    assert "8.0 % extra for the two tasks (4.0 % per task)" in text
