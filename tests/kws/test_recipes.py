"""The KWS recipes from the command line: bad flags fail fast, a tiny run leaves every output."""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

from swr_keras import checkpointing, models

from .conftest import TINY_TAU, recipe_path

TINY_RUN = [
    "--tau=1",
    "--supernet_epochs=1",
    "--policy_epochs=1",
    "--reparam_epochs=1",
    "--batch_size=8",
]
# For tests of what a run writes, resumes or prints: steps run eagerly, three
# per epoch on the 72 training clips of `kws_data_dir` (tracing a stage's
# graph costs about 5 s here, an eager step about 0.5 s). The job's traced
# stages are tested in-process (tests/kws/test_job.py, test_ablations.py).
EAGER_TINY_RUN = [*TINY_RUN[:-1], "--batch_size=24", "--run_eagerly"]


def run_recipe(name, *args, timeout=900):
    return subprocess.run(
        [sys.executable, recipe_path(name), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def twelve_class_pretrained(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("twelve") / "model.keras")
    models.BCResNet(tau=TINY_TAU, num_classes=12).save(path)
    return path


# The command line's exit-2 path: a value check and a flag absl cannot parse.
# Every other bad flag runs in-process (tests/kws/test_flag_checks.py).
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--target_cost=1.5"], "--target_cost must be in [0, 1]. Received: 1.5"),
        (["--seed=x"], "--seed"),
    ],
)
def test_kws_bad_flags_exit_2_with_one_line_before_training(
    flags, message, kws_data_dir, tiny_pretrained, tmp_path
):
    defaults = {
        "--data_dir": kws_data_dir,
        "--pretrained": tiny_pretrained,
        "--tau": "1",
        "--output_dir": str(tmp_path / "out"),
        "--export_dir": str(tmp_path / "exports"),
    }
    for flag in flags:
        defaults.pop(flag.split("=")[0], None)
    args = [f"{key}={value}" for key, value in defaults.items()] + flags
    result = run_recipe("kws.py", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kws.py: error: ") and message in lines[0]
    assert "== stage" not in result.stdout
    assert not os.path.exists(tmp_path / "out" / "checkpoints")


def test_kws_rejects_a_pretrained_model_with_another_class_count(
    kws_data_dir, twelve_class_pretrained, tmp_path
):
    result = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={twelve_class_pretrained}",
        "--tau=1",
        f"--output_dir={tmp_path}",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"kws.py: error: --pretrained={twelve_class_pretrained} has 12 classes; BC-ResNet-1 "
        "pre-trained on 22 classes was expected (the multi-lingual union)."
    )


def test_kws_rejects_an_unwritable_output_dir(kws_data_dir, tiny_pretrained, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        "--tau=1",
        f"--output_dir={blocker}/run",
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"kws.py: error: --output_dir={blocker}/run cannot be created"
    )


def test_kws_tiny_run_writes_every_output(kws_data_dir, tiny_pretrained, tmp_path):
    out, exports = tmp_path / "run", tmp_path / "exports"
    result = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        *EAGER_TINY_RUN,
        "--target_cost=0.5",
        f"--output_dir={out}",
        f"--export_dir={exports}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # One target cost: several costs in one run are tested in test_kill_and_rerun.py.
    for stage in ("stage1a_supernet", "stage1b_policy", "stage2_reparam_c0.50_e1"):
        assert f"== {stage}: 1 epochs" in result.stdout
    assert "SWR c=0.50" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["target_cost"] for row in metrics["results"]] == [0.5]
    for row in metrics["results"]:
        assert row["mult_ratio"] == 1.0 and row["num_layers"] == 43
        assert row["deployed_max_abs_diff"] < 1e-4
        assert os.path.isdir(os.path.join(row["exports"]["saved_model"], "variables"))
        assert os.path.basename(row["exports"]["saved_model"]) == "1"
        for kind in ("float", "int8"):
            assert os.path.getsize(row["exports"]["tflite"][kind]["path"]) > 0
    assert sorted(os.listdir(exports)) == ["kws_gsc2_swr_c050"]
    control = metrics["policy"]["controllability"]
    assert [point["target_cost"] for point in control] == [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
    ]
    for name in ("policy_map.png", "controllability.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    logs = [os.path.join(d, f) for d, _, files in os.walk(out / "logs") for f in files]
    assert any("tfevents" in path for path in logs)

    # The same command again: nothing is trained, the results are the same, and
    # each model is exported again as the next version (what TF Serving serves
    # by default); the first version stays as it was.
    first = {row["label"]: row for row in metrics["results"]}
    saved_model = os.path.join(first["SWR c=0.50"]["exports"]["saved_model"], "saved_model.pb")
    written = os.stat(saved_model).st_mtime_ns
    again = run_recipe(
        "kws.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        *EAGER_TINY_RUN,
        "--target_cost=0.5",
        f"--output_dir={out}",
        f"--export_dir={exports}",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert not re.search(r"^\d+/\d+ - \d", again.stdout, flags=re.MULTILINE)  # no epoch trained
    assert again.stdout.count("finished earlier") == 3
    rerun = json.loads((out / "metrics.json").read_text())["results"]
    for row in rerun:
        assert row["test_accuracy"] == first[row["label"]]["test_accuracy"]
        assert row["gates"] == first[row["label"]]["gates"]
        assert os.path.basename(row["exports"]["saved_model"]) == "2"
    assert sorted(os.listdir(exports / "kws_gsc2_swr_c050")) == ["1", "2"]
    assert os.stat(saved_model).st_mtime_ns == written


def test_pretrain_bad_flags_exit_2_with_one_line(tmp_path):
    result = run_recipe(
        "pretrain_kws.py",
        "--epochs=2",
        "--warmup_epochs=2",
        f"--output_dir={tmp_path}/m",
        f"--work_dir={tmp_path}/w",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pretrain_kws.py: error: --warmup_epochs must be in [0, --epochs). Received: 2"
    )


def test_pretrain_refuses_to_resume_a_checkpoint_of_other_flags(tmp_path):
    # A checkpoint left by `pretrain_kws.py --epochs=8` with every other flag at its default.
    defaults = {
        "backbone": "bc_resnet",
        "tau": 8.0,
        "data_dir": "",
        "epochs": 8,
        "warmup_epochs": 1,
        "batch_size": 100,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "weight_decay": 1e-3,
        "augment": True,
        "seed": 0,
    }
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpointing.save_state(
        model,
        str(tmp_path / "w" / "checkpoint"),
        include_optimizer=False,
        epochs_done=1,
        epochs=8,
        complete=False,
        run=defaults,
    )
    result = run_recipe(
        "pretrain_kws.py", "--epochs=20", f"--output_dir={tmp_path}/m", f"--work_dir={tmp_path}/w"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"pretrain_kws.py: error: {tmp_path}/w/checkpoint holds the checkpoint of another run "
        "(epochs 8 -> 20). Use another output or work directory, or delete that checkpoint to "
        "start over."
    )


def test_tune_lambda_bad_flags_exit_2_with_one_line(tmp_path):
    result = run_recipe("tune_lambda.py", "--target_cost=2", f"--directory={tmp_path}")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "tune_lambda.py: error: --target_cost must be in [0, 1]. Received: 2"
    )


def test_tune_lambda_tiny_search_prints_the_trials_and_the_best_lambda(
    kws_data_dir, tiny_pretrained, tmp_path
):
    result = run_recipe(
        "tune_lambda.py",
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        *EAGER_TINY_RUN,
        "--max_trials=1",
        "--target_cost=0.5",
        f"--directory={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best lambda" in result.stdout
    trials = [
        name for name in os.listdir(tmp_path / "target_cost_0.5") if name.startswith("trial_")
    ]
    assert len(trials) == 1
