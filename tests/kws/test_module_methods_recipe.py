"""`kws.py --method=adapter|spottune|repnet` end to end; the exports hold the modules."""

import json
import os

import numpy as np
import pytest

from swr_keras import methods

from .test_recipes import EAGER_TINY_RUN, run_recipe

# Small modules keep each run to about a minute on 2 cores.
METHOD_FLAGS = {
    "adapter": [],
    "spottune": ["--spottune_agent_width=2"],
    "repnet": ["--repnet_kernel_size=3"],
}


@pytest.mark.slow  # one kws.py run per method: training, SavedModel and two TFLite conversions
@pytest.mark.parametrize("method", sorted(METHOD_FLAGS))
def test_kws_runs_the_method_and_exports_its_modules(
    method, kws_data_dir, tiny_pretrained, tmp_path
):
    out, exports = tmp_path / "run", tmp_path / "exports"
    result = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        f"--method={method}",
        *EAGER_TINY_RUN,
        *METHOD_FLAGS[method],
        f"--output_dir={out}",
        f"--export_dir={exports}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    label = methods.get(method).label
    assert f"== {method}_e1: 1 epochs" in result.stdout
    assert any(line.startswith(label) for line in result.stdout.splitlines())
    (row,) = json.loads((out / "metrics.json").read_text())["results"]
    assert row["mult_ratio"] > 1.0  # the deployed model keeps its modules
    assert row["deployed_max_abs_diff"] == 0.0
    with np.load(row["task_state"]) as stored:
        learnable = sum(stored[k].size for k in stored.files if k.startswith("learnable|"))
    assert row["task_parameters"] == learnable > 0
    assert row["task_bytes"] == os.path.getsize(row["task_state"])
    assert os.path.isdir(os.path.join(row["exports"]["saved_model"], "variables"))
    tflite = row["exports"]["tflite"]
    # The float TFLite file computes what the Keras model computes.
    assert tflite["float"]["test_accuracy"] == pytest.approx(row["test_accuracy"], abs=1e-6)
    assert os.path.getsize(tflite["int8"]["path"]) > 0
