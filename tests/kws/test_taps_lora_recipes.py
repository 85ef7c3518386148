"""`kws.py --method=taps|lora` end to end on the tiny corpus: the table row and what it stores."""

import json
import os

import numpy as np
import pytest

from .test_recipes import EAGER_TINY_RUN, run_recipe


def run_method(kws_data_dir, tiny_pretrained, out, *flags):
    result = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        *EAGER_TINY_RUN,
        *flags,
        f"--output_dir={out}",
        "--noexport",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = json.loads((out / "metrics.json").read_text())["results"]
    with np.load(row["task_state"]) as stored:
        learnable = sum(stored[key].size for key in stored.files if key.startswith("learnable|"))
    assert row["task_parameters"] == learnable
    assert row["mult_ratio"] == 1.0 and row["deployed_max_abs_diff"] < 1e-4
    assert row["task_bytes"] == os.path.getsize(row["task_state"])
    return result.stdout, row


@pytest.mark.slow  # a full kws.py run in a subprocess (TensorFlow import, data, 2 epochs)
def test_kws_taps_run_prints_its_row(kws_data_dir, tiny_pretrained, tmp_path):
    stdout, row = run_method(
        kws_data_dir,
        tiny_pretrained,
        tmp_path / "run",
        "--method=taps",
        "--reparam_epochs=2",
        "--taps_warmup_fraction=0.5",
        "--taps_lambda=3",
    )
    assert "== taps_e2: 2 epochs" in stdout
    table_row = [line for line in stdout.splitlines() if line.startswith("TAPS")]
    assert len(table_row) == 1 and "1.00x" in table_row[0]
    assert row["num_layers"] == 43 and len(row["scores"]) == 43
    assert row["reparametrised_layers"] == sum(s >= 0.1 for s in row["scores"])
    assert 0.0 <= row["added_ratio"] <= 1.0


@pytest.mark.slow  # a full kws.py run in a subprocess
@pytest.mark.parametrize("budget", [0.3])
def test_kws_lora_run_prints_its_row(kws_data_dir, tiny_pretrained, tmp_path, budget):
    stdout, row = run_method(
        kws_data_dir, tiny_pretrained, tmp_path / "run", "--method=lora", f"--lora_budget={budget}"
    )
    assert f"== lora_c{budget:.2f}_e1: 1 epochs" in stdout
    table_row = [line for line in stdout.splitlines() if line.startswith("Keras LoRA")]
    assert len(table_row) == 1 and f"c={budget:.2f}" in table_row[0] and "1.00x" in table_row[0]
    assert row["target_cost"] == budget and 0 < row["added_ratio"] <= budget
    assert (
        row["task_parameters"] == row["lora_parameters"] + 32 * 12 + 12
    )  # + the classifier of BC-ResNet-1
