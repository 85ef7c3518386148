"""`recipes/bank.py` end to end, and adding a `kws.py` run's results (`add_run`)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from swr_keras import bank as bank_lib
from tests.bank.conftest import CLIP_SAMPLES
from tests.kws.conftest import recipe_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bank_py(*args):
    return subprocess.run(
        [sys.executable, recipe_path("bank.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


@pytest.mark.slow  # two recipe runs importing TensorFlow, three SavedModels: about 30 s on 2 cores
def test_export_writes_multitask_task_models_and_models_config(bank_template, tmp_path):
    out = tmp_path / "serving"
    process = bank_py("export", f"--bank={bank_template.root}", f"--export_dir={out}",
                      "--notflite", "--label=canary")  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    assert "signatures: english, english_log_mel, mandarin, mandarin_log_mel, mixed" in (
        process.stdout
    )
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((out / "models.config").read_text(), config)
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["english", "mandarin", "multitask"]
    for model in models.values():
        assert dict(model.version_labels) == {"canary": 1}
        assert os.path.isdir(os.path.join(model.base_path, "1", "variables"))

    relabel = bank_py("export", f"--bank={bank_template.root}", f"--export_dir={out}",
                      "--set_label=multitask:stable=1")  # fmt: skip
    assert relabel.returncode == 0, relabel.stderr[-3000:]
    served = {m.name: m.labels for m in bank_lib.read_models_config(str(out / "models.config"))}
    assert served["multitask"] == {"canary": 1, "stable": 1}
    assert served["english"] == {"canary": 1}


def test_verify_exits_2_naming_a_truncated_file(bank_template, tmp_path):
    shutil.copytree(bank_template.root, tmp_path / "bank")
    task_file = tmp_path / "bank" / "tasks" / "english" / "task.npz"
    task_file.write_bytes(task_file.read_bytes()[:100])
    process = bank_py("verify", f"--bank={tmp_path / 'bank'}")
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and str(task_file) in lines[0] and "truncated" in lines[0], lines


def write_run(run_dir, swr_tasks, name, seed=0):
    """What kws.py leaves in --output_dir for one SWR result: metrics.json and the task file."""
    classes, stored, _ = swr_tasks[name]
    os.makedirs(run_dir / "task_states")
    stored.save(str(run_dir / "task_states" / "swr_c050.npz"))
    metrics = {
        "task": "gsc2",
        "class_names": classes,
        "clip_samples": CLIP_SAMPLES,
        "sample_rate": 16000,
        "data": {"task": "gsc2", "data_dir": "", "task_options": {}},
        "settings": {"seed": seed, "batch_size": 50, "method": "swr"},
        "results": [
            {
                "method": "swr",
                "target_cost": 0.5,
                "test_accuracy": 0.75,
                "task_parameters": stored.num_parameters,
                "task_state": str(run_dir / "task_states" / "swr_c050.npz"),
            }
        ],
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def test_add_run_names_and_records_the_result(tmp_path, swr_tasks, backbone_path, backbone):
    write_run(tmp_path / "run", swr_tasks, "english")
    bank_dir = str(tmp_path / "bank")
    (entry,) = bank_lib.add_run(bank_dir, str(tmp_path / "run"), backbone_path,
                                backbone_model=backbone)  # fmt: skip
    assert entry.name == "gsc2_swr_c050"
    assert entry.metrics == {"test_accuracy": 0.75,
                             "task_parameters": swr_tasks["english"][1].num_parameters}  # fmt: skip
    assert entry.data["seed"] == 0 and entry.class_names == swr_tasks["english"][0]
    with pytest.raises(bank_lib.BankError, match="already has task"):
        bank_lib.add_run(bank_dir, str(tmp_path / "run"), backbone_path, backbone_model=backbone)
    (renamed,) = bank_lib.add_run(bank_dir, str(tmp_path / "run"), backbone_path,
                                  name="english", backbone_model=backbone)  # fmt: skip
    assert renamed.name == "english" and renamed.metrics == entry.metrics
    assert bank_lib.TaskBank(bank_dir).names() == ["english", "gsc2_swr_c050"]
    with pytest.raises(bank_lib.BankError, match="does not exist"):
        bank_lib.add_run(bank_dir, str(tmp_path / "nothing"), backbone_path)
