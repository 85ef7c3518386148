"""The image recipe end to end on a tiny corpus, its one-line errors, and its serving signature."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.image import data as data_lib
from swr_keras.image import datasets, serving_export
from swr_keras.models import with_new_classifier
from tests.models.backbone_checks import randomize_task

from .conftest import TINY_IMAGE_SIZE, tiny_small_resnet

RECIPE = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "sketch.py")


def run_recipe(*args, cache=None, timeout=900):
    env = dict(os.environ)
    if cache:
        env["SWR_KERAS_CACHE"] = cache
    return subprocess.run(
        [sys.executable, RECIPE, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_the_serving_signature_on_encoded_images_equals_the_merged_model(image_cache, tmp_path):
    swr_model = swr_keras.reparametrize(with_new_classifier(tiny_small_resnet(), 10))
    randomize_task(swr_model, np.random.default_rng(1))
    merged = swr_keras.merge(swr_model)
    task = datasets.load_task("synthetic_painting", cache_dir=image_cache)
    data = data_lib.ImageData(task, TINY_IMAGE_SIZE)
    version = serving_export.export_serving(
        merged, task.class_names, str(tmp_path / "painting"), image_size=TINY_IMAGE_SIZE
    )
    assert os.path.basename(version) == "1"
    encoded, labels = data.encoded_examples("test", 6)
    served = tf.saved_model.load(version).signatures["serving_default"](
        image_bytes=tf.constant(encoded)
    )
    images, expected_labels = next(iter(data.evaluation_batches("test", batch_size=6)))
    np.testing.assert_array_equal(labels, expected_labels)
    expected = tf.nn.softmax(merged(images, training=False)).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(expected, tf.nn.softmax(swr_model(images)).numpy(), atol=1e-4)
    names = [name.decode() for name in served["label"].numpy()]
    assert names == [task.class_names[i] for i in served["class_id"].numpy()]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method=swr,nope"], "--method=nope is unknown. Choose from: swr, not_staged"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, message, tmp_path):
    result = run_recipe(*args, f"--output_dir={tmp_path}", timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("sketch.py: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_data_dir_without_the_files_exits_2_naming_the_missing_one(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    result = run_recipe(
        "--dataset=flowers",
        f"--data_dir={data_dir}",
        "--backbone=resnet50",
        "--pretrained=weights.h5",
        f"--output_dir={tmp_path / 'out'}",
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "flowers/102flowers.tgz is missing. Place 102flowers.tgz from https://www.robots" in (
        result.stderr
    )


@pytest.mark.slow  # trains, exports and converts two models in a recipe run: 40-70 s on 2 cores
def test_two_methods_end_to_end_leave_every_output(image_cache, tiny_backbone_path, tmp_path):
    out, exports = tmp_path / "run", tmp_path / "exports"
    result = run_recipe(
        "--method=swr,finetune_classifier",
        "--target_cost=0.3",
        "--backbone=task_model",
        f"--pretrained={tiny_backbone_path}",
        "--supernet_epochs=1",
        "--policy_epochs=1",
        "--reparam_epochs=1",
        "--batch_size=8",
        "--run_eagerly",
        f"--output_dir={out}",
        f"--export_dir={exports}",
        cache=image_cache,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SWR c=0.30" in result.stdout and "fine-tune classifier" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"].startswith(
        "python recipes/sketch.py --method=swr,finetune_classifier"
    )
    rows = {row["method"]: row for row in metrics["results"]}
    assert set(rows) == {"swr", "finetune_classifier"}
    swr = rows["swr"]
    assert swr["settings"]["optimizer"] == "sgd" and swr["settings"]["label_smoothing"] == 0.3
    assert swr["settings"]["policy_loss_weight"] == 3.0
    assert swr["mult_ratio"] == 1.0 and swr["deployed_max_abs_diff"] < 1e-4
    assert rows["finetune_classifier"]["task_parameters"] == 8 * 10 + 10
    for row in rows.values():
        saved_model = row["exports"]["saved_model"]
        assert os.path.isfile(os.path.join(saved_model, "saved_model.pb"))
        assert (
            abs(row["exports"]["tflite"]["float"]["test_accuracy"] - row["test_accuracy"]) < 0.051
        )  # float rounding may flip one of the 20 test images
        assert os.path.isfile(row["task_state"])
    for name in ("policy_map.png", "controllability.png"):
        assert (out / name).is_file()
    assert metrics["policy"]["controllability"][0]["target_cost"] == pytest.approx(0.1)
    assert any(name.startswith("stage1a") for name in os.listdir(out / "logs"))
