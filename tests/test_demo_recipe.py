"""The README's main command (`recipes/demo.py`) runs end to end and fails cleanly."""

import json
import pathlib
import subprocess
import sys

DEMO = pathlib.Path(__file__).resolve().parents[1] / "recipes" / "demo.py"


def run_demo(*flags):
    return subprocess.run(
        [sys.executable, str(DEMO), *flags], capture_output=True, text=True, timeout=600
    )


def test_demo_runs_every_stage_and_merges_exactly(tmp_path):
    result = run_demo("--epochs=1", "--target_cost=0.3", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    (row,) = metrics["results"]
    assert row["target_cost"] == 0.3
    assert row["merged_max_abs_diff"] <= 1e-5
    assert row["mult_ratio"] == 1.0
    assert "stage 2: reparametrisation for c=0.3" in result.stdout


def test_bad_target_cost_exits_2_with_one_line(tmp_path):
    result = run_demo("--target_cost=1.5", f"--output_dir={tmp_path}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "target_cost=1.5" in lines[0], result.stderr
    assert not (tmp_path / "metrics.json").exists()
