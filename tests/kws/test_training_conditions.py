"""The "Training conditions" list under Table 1: optimiser, schedule and deviations per method."""

import dataclasses

from swr_keras import methods
from swr_keras.kws import reproduce, tables
from swr_keras.transfer_job import Settings
from tests.kws.conftest import identified

BACKBONE = "bc_resnet8"


def write_cell(directory, row, settings):
    cell = reproduce.Cell(BACKBONE, "gsc2", row, None, 0)
    result = {"test_accuracy": 0.9, "validation_accuracy": 0.9}
    result |= {"param_ratio_two_tasks": 2.0, "mult_ratio": 1.0}
    record = {"cell": dataclasses.asdict(cell), "result": result, "settings": settings}
    record |= {"seconds": 5.0, "shared_seconds": 0.0, "versions": {}, "command": "run"}
    reproduce.write_cell(str(directory / "cells" / cell.file_name()), identified(record))


def conditions_items(text):
    """`{label: text}` of the list under Table 1's "Training conditions"."""
    start = text.index("Training conditions")
    items = [line for line in text[start:].splitlines() if line.startswith("- **")]
    return {item[4:].split("**:", 1)[0]: item.split("**: ", 1)[1] for item in items}


def test_table1_lists_each_methods_training_conditions_and_deviations(tmp_path):
    taps = Settings(method="taps", reparam_epochs=12, options={"taps_lambda": 3.0}).recorded()
    adapter = Settings(method="adapter", reparam_epochs=12, learning_rate=2e-3).recorded()
    write_cell(tmp_path, "taps", taps)
    write_cell(tmp_path, "adapter", adapter)
    tables.write_all(str(tmp_path), BACKBONE, ("1",), (), (0,), (0.1,), "cmd")
    items = conditions_items((tmp_path / "table1.md").read_text())
    # Every trained row of Table 1 is listed, run or not.
    trained = [row.label for row in reproduce.table1_rows() if row.method is not None]
    assert list(items) == trained
    assert items["TAPS"].startswith(
        "SGD (momentum 0.9), lr 0.005, cosine to 0 per step; sparsity loss (lambda 3) after the "
        "first 9.7% of the steps; 12 epochs on the target task. Source: MattWallingford/TAPS"
    )
    assert "lambda 3, chosen so that #Param. lands near the paper's 2.06x" in items["TAPS"]
    assert items["Residual Adapter"].startswith(
        "Adam, lr 0.002, cosine to 0 over the stage's steps; 12 epochs on the target task. "
        "Source: srebuffi/residual_adapters"
    )
    assert items["Residual Adapter"].endswith(
        f"Deviations: {methods.get('adapter').deviations[0]}."
    )
    # A row without a finished cell names its source and deviations only.
    assert items["Rep-Net"].startswith("not run. Source: ASU-ESIC-FAN-Lab/RepNet")
    assert items["fine-tune all"].endswith("Deviations: none.")


def test_every_method_names_its_source_and_trains_the_jobs_epochs_on_the_target_task():
    for method in methods.methods():
        recorded = Settings(method=method.name, reparam_epochs=7, supernet_epochs=5).recorded()
        conditions = method.training_conditions(recorded)
        assert conditions["epochs"] == 7, method.name
        assert conditions["source"] and isinstance(conditions["deviations"], tuple)
    # SWR's stages 1a and 1b choose the gates; the schedule names them as the search's cost.
    swr = methods.get("swr").training_conditions(Settings(supernet_epochs=5).recorded())
    assert "stages 1a/1b (8 epochs)" in swr["schedule"]
