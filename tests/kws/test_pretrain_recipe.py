"""`recipes/pretrain_kws.py` end to end: a tiny pre-training, its manifest, a rerun."""

import hashlib
import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from swr_keras.kws import backbones, tasks

from .conftest import recipe_path


def pretrain(data_dir, tmp_path, *extra):
    return subprocess.run(
        [
            sys.executable,
            recipe_path("pretrain_kws.py"),
            f"--data_dir={data_dir}",
            "--tau=1",
            "--epochs=2",
            "--warmup_epochs=1",
            "--batch_size=16",
            "--run_eagerly",
            f"--output_dir={tmp_path}/model",
            f"--work_dir={tmp_path}/work",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_tiny_pretraining_writes_a_loadable_model_and_its_manifest_and_resumes(
    union_data_dir, tmp_path
):
    first = pretrain(union_data_dir, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "== training BC-ResNet-1" in first.stdout and "for 2 epochs" in first.stdout
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    model_file = tmp_path / "model" / "model.keras"
    assert manifest["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    class_names = tasks.multilingual_class_names()
    assert manifest["class_names"] == list(class_names) and manifest["epochs"] == 2
    assert manifest["command"].startswith("python recipes/pretrain_kws.py --data_dir=")
    assert 0.0 <= manifest["test_accuracy"] <= 1.0

    # The shipped model is the trained one: it reproduces the manifest's test accuracy.
    model = keras.saving.load_model(str(model_file))
    assert model.output_shape == (None, len(class_names))
    assert getattr(model, "optimizer", None) is None  # shipped without the optimizer's state
    corpus = tasks.list_task("multilingual", tasks.resolve_data_dir(union_data_dir), seed=0)
    hits = [
        np.argmax(model(x, training=False), axis=-1) == y.numpy()
        for x, y in tasks.evaluation_dataset(corpus, "test")
    ]
    assert float(np.mean(np.concatenate(hits))) == pytest.approx(
        manifest["test_accuracy"], abs=1e-6
    )
    # Pre-training moved every kernel away from the initial weights (same seed, same build).
    keras.utils.set_random_seed(0)
    initial = backbones.build_backbone("bc_resnet", len(class_names), 1.0)
    for before, after in zip(initial.trainable_weights, model.trainable_weights):
        assert not np.array_equal(keras.ops.convert_to_numpy(before), after.numpy()), after.path

    # The same command again resumes from the finished checkpoint: no epoch is trained
    # and the written model has the same weights.
    again = pretrain(union_data_dir, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch 2" in again.stdout
    assert not re.search(r"^Epoch \d+/\d+", again.stdout, flags=re.MULTILINE)
    reloaded = keras.saving.load_model(str(model_file))
    for trained, rewritten in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(trained, rewritten)
    rerun = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert rerun["test_accuracy"] == manifest["test_accuracy"]
