"""The KWS job: a resumed run equals the uninterrupted one; baselines train what they claim."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from swr_keras import checkpointing, methods
from swr_keras.kws import backbones, tasks
from swr_keras.kws import job as job_lib
from swr_keras.model_walk import reparam_layers
from swr_keras.models import task_model

from .conftest import TINY_TAU

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

SETTINGS = job_lib.Settings(
    supernet_epochs=1, policy_epochs=2, reparam_epochs=2, batch_size=24, learning_rate=3e-3, seed=3
)


class Killed(Exception):
    """Stands in for the process being killed right after a checkpoint."""


def make_job(kws_data_dir, tiny_pretrained, work_dir, settings=SETTINGS):
    corpus = tasks.list_task("gsc2", tasks.resolve_data_dir(kws_data_dir), seed=0)
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    return job_lib.Job(corpus, pretrained, settings, str(work_dir), identity=("test",), verbose=0)


def run_swr(job):
    row, merged = job.train_variant(0.5)
    deltas = [layer.kernel_delta.numpy() for layer in reparam_layers(job.model.model)]
    return row, deltas


@pytest.fixture(scope="module")
def uninterrupted_job(kws_data_dir, tiny_pretrained, tmp_path_factory):
    job = make_job(kws_data_dir, tiny_pretrained, tmp_path_factory.mktemp("full"))
    return job, *run_swr(job)


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_job):
    _, row, deltas = uninterrupted_job
    return row, deltas


def record_trained_epochs(patch):
    """Records `(stage directory name, epoch)` for every epoch `fit` actually trains.

    Counted by a callback added to every `fit`, independently of the
    checkpoints: a resume that redoes work shows it here even when the
    result is the same (every stage is seeded, so a rerun from scratch
    gives the uninterrupted result too).
    """
    trained = []
    fit = keras.Model.fit

    class Count(keras.callbacks.Callback):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def on_epoch_end(self, epoch, logs=None):
            trained.append((self.name, epoch))

    def counting_fit(self, *args, callbacks=(), **kwargs):
        names = [
            os.path.basename(c.directory)
            for c in callbacks
            if isinstance(c, checkpointing.EpochCheckpoint)
        ]
        name = names[0] if names else "?"
        return fit(self, *args, callbacks=[Count(name), *callbacks], **kwargs)

    patch.setattr(keras.Model, "fit", counting_fit)
    return trained


def test_killed_job_resumes_to_the_uninterrupted_result(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch, uninterrupted
):
    # Killed after the first epoch of stage 1b, then after the first epoch of
    # stage 2 (whose restart must rebuild the super-net state from stage 1's
    # checkpoint), then run to the end. Each run trains only what the one
    # before it left undone.
    save = checkpointing.EpochCheckpoint.on_epoch_end
    expected_epochs = {
        "stage1b_policy": [("stage1a_supernet", 0), ("stage1b_policy", 0)],
        "stage2_reparam_c0.50_e2": [("stage1b_policy", 1), ("stage2_reparam_c0.50_e2", 0)],
    }
    for kill_in, expected in expected_epochs.items():

        def save_then_die(self, epoch, logs=None, kill_in=kill_in):
            save(self, epoch, logs)
            if os.path.basename(self.directory) == kill_in and epoch == 0:
                raise Killed()

        with monkeypatch.context() as patch:
            trained = record_trained_epochs(patch)
            patch.setattr(checkpointing.EpochCheckpoint, "on_epoch_end", save_then_die)
            with pytest.raises(Killed):
                run_swr(make_job(kws_data_dir, tiny_pretrained, tmp_path))
        assert trained == expected
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        row, deltas = run_swr(make_job(kws_data_dir, tiny_pretrained, tmp_path))
    assert trained == [("stage2_reparam_c0.50_e2", 1)]
    expected_row, expected_deltas = uninterrupted
    assert row["gates"] == expected_row["gates"]
    assert row["test_accuracy"] == pytest.approx(expected_row["test_accuracy"], abs=1e-6)
    for got, want in zip(deltas, expected_deltas):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_a_damaged_checkpoint_resumes_from_the_previous_epoch(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch, uninterrupted_job
):
    # A stage-1b checkpoint cut to half its size (a full disk, a partial
    # copy): the rerun falls back to the epoch before and trains only the
    # last epoch again, to the same result.
    job, expected_row, _ = uninterrupted_job
    shutil.copytree(job.work_dir, tmp_path, dirs_exist_ok=True)
    rerun = make_job(kws_data_dir, tiny_pretrained, tmp_path)
    state = os.path.join(rerun._directory("stage1b_policy"), checkpointing.STATE_FILE)
    with open(state, "r+b") as file:
        file.truncate(os.path.getsize(state) // 2)
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        row, _ = run_swr(rerun)
    assert trained == [("stage1b_policy", 1)]
    assert row["gates"] == expected_row["gates"]
    assert row["test_accuracy"] == expected_row["test_accuracy"]

    # With the epoch before damaged too, nothing is trained: one line names the file.
    previous = os.path.join(rerun._directory("stage1b_policy"), checkpointing.PREVIOUS_FILE)
    for path in (state, previous):
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match=rf"^The checkpoint {state} is damaged .* Delete "):
        make_job(kws_data_dir, tiny_pretrained, tmp_path).check_resumable([0.5])


def test_a_new_target_cost_reuses_stage_one(kws_data_dir, tiny_pretrained, uninterrupted_job):
    job, _, _ = uninterrupted_job
    stage1 = os.path.join(job._directory("stage1b_policy"), checkpointing.STATE_FILE)
    written = os.stat(stage1).st_mtime_ns
    again = make_job(kws_data_dir, tiny_pretrained, job.work_dir)
    row, _ = again.train_variant(0.2)
    assert os.stat(stage1).st_mtime_ns == written
    assert row["target_cost"] == 0.2
    assert os.path.isdir(again._directory("stage2_reparam_c0.20_e2"))
    np.testing.assert_array_equal(
        again.model.policy_network.binary_policy(0.7),
        job.model.policy_network.binary_policy(0.7),
    )


def test_swr_row_reports_a_merged_model_equal_to_the_reparametrised_one(uninterrupted):
    row, deltas = uninterrupted
    assert row["deployed_max_abs_diff"] < 1e-4
    assert row["mult_ratio"] == 1.0
    assert row["num_layers"] == 43
    # Counted here from the trained deltas, independently of the job's bookkeeping:
    # the gated layers are exactly those whose delta trained away from zero.
    gates = [int(np.any(delta)) for delta in deltas]
    assert row["gates"] == gates and row["reparametrised_layers"] == sum(gates)
    sizes = np.array([delta.size for delta in deltas])
    assert row["added_ratio"] == pytest.approx(float(np.sum(sizes * gates) / np.sum(sizes)))
    assert_accounting(row)


def assert_accounting(row):
    """The row's #Param. is the stored task file's learnable tensors; bytes its size."""
    stored = methods.StoredTask.load(row["task_state"])
    assert row["task_parameters"] == sum(np.size(a) for a in stored.learnable.values())
    assert row["task_statistics"] == sum(np.size(a) for a in stored.statistics.values())
    assert row["task_bytes"] == os.path.getsize(row["task_state"])
    assert row["parameters_backbone_plus_task"] == (
        row["backbone_parameters"] + row["task_parameters"]
    )


def test_controllability_covers_the_plot_costs(uninterrupted_job):
    job, _, _ = uninterrupted_job
    decided = job.controllability()
    assert sorted(decided) == list(job_lib.CONTROLLABILITY_COSTS)
    sizes = np.array(
        [np.prod(layer.kernel_delta.shape) for layer in reparam_layers(job.model.model)]
    )
    for gates, ratio in decided.values():
        assert len(gates) == 43
        # Counted here from the kernels, independently of swr_keras.cost.
        assert ratio == pytest.approx(float(np.sum(gates * sizes) / np.sum(sizes)))


def test_finetune_classifier_changes_only_the_classifier(kws_data_dir, tiny_pretrained, tmp_path):
    settings = job_lib.Settings(method="finetune_classifier", reparam_epochs=1, batch_size=24)
    job = make_job(kws_data_dir, tiny_pretrained, tmp_path, settings)
    before = [w.numpy() for w in task_model.feature_extractor(job.base_model).weights]
    head_before = [w.numpy() for w in task_model.classifier(job.base_model).weights]
    row, model = job.train_variant()
    after = [w.numpy() for w in task_model.feature_extractor(model).weights]
    for got, want in zip(after, before):  # BN statistics included
        np.testing.assert_array_equal(got, want)
    assert any(
        not np.array_equal(a.numpy(), b)
        for a, b in zip(task_model.classifier(model).weights, head_before)
    )
    kernel = task_model.classifier(model).kernel
    assert row["task_parameters"] == kernel.shape[0] * kernel.shape[1] + kernel.shape[1]
    assert row["task_statistics"] == 0 and row["mult_ratio"] == 1.0
    assert_accounting(row)


def test_finetune_all_changes_weights_and_statistics(kws_data_dir, tiny_pretrained, tmp_path):
    settings = job_lib.Settings(method="finetune_all", reparam_epochs=1, batch_size=24)
    job = make_job(kws_data_dir, tiny_pretrained, tmp_path, settings)
    before = [w.numpy() for w in task_model.feature_extractor(job.base_model).weights]
    row, model = job.train_variant()
    after = [w.numpy() for w in task_model.feature_extractor(model).weights]
    changed = sum(not np.array_equal(a, b) for a, b in zip(after, before))
    assert changed > 0.9 * len(before)
    assert row["param_ratio_two_tasks"] == pytest.approx(3.0, abs=0.01)
    assert row["task_parameters"] == row["backbone_parameters"]  # a full copy...
    statistics = [v for v in model.weights if "moving_" in v.path]
    assert row["task_statistics"] == sum(np.size(v) for v in statistics) > 0  # ...plus BN's
    assert_accounting(row)


def test_a_checkpoint_of_other_settings_is_not_resumed(uninterrupted_job, monkeypatch):
    job, _, _ = uninterrupted_job
    job.check_resumable([0.5])  # its own checkpoints
    recorded = job._run

    def other_run(name, epochs):
        return {**recorded(name, epochs), "learning_rate": 1.0}

    monkeypatch.setattr(job, "_run", other_run)
    with pytest.raises(ValueError, match=r"learning_rate 0\.003 -> 1\.0.*delete that checkpoint"):
        job.check_resumable([0.5])

    def next_version(name, epochs):  # e.g. a later trainer with other variables
        return {**recorded(name, epochs), "checkpoint_version": job_lib.CHECKPOINT_VERSION + 1}

    monkeypatch.setattr(job, "_run", next_version)
    version = job_lib.CHECKPOINT_VERSION
    with pytest.raises(ValueError, match=rf"checkpoint_version {version} -> {version + 1}"):
        job.check_resumable([0.5])


def test_not_staged_swr_on_mandarin_clips(union_data_dir, tiny_pretrained, tmp_path):
    corpus = tasks.list_task("mc_kws", tasks.resolve_data_dir(union_data_dir), seed=0)
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    settings = job_lib.Settings(
        method="not_staged",
        supernet_epochs=1,
        policy_epochs=1,
        reparam_epochs=1,
        batch_size=24,
        seed=1,
    )
    job = job_lib.Job(corpus, pretrained, settings, str(tmp_path), identity=("test",), verbose=0)
    assert job.input_shape == (40, 225, 1)  # 2.24 s clips
    row, merged = job.train_variant(0.5)
    # The ablation trains policy and deltas together in one stage of 1a + 1b + 2 epochs.
    assert checkpointing.read_progress(job._directory("joint_not_staged_e3"))["epochs"] == 3
    assert not os.path.exists(job._directory("stage1a_supernet"))
    assert merged.output_shape == (None, 12)
    assert row["method"] == "not_staged" and row["num_layers"] == 43
    assert row["deployed_max_abs_diff"] < 1e-4
    # The reported accuracy is the merged model's on the test split.
    hits = [np.argmax(merged(x, training=False), axis=-1) == y.numpy() for x, y in job.test]
    assert row["test_accuracy"] == pytest.approx(float(np.mean(np.concatenate(hits))), abs=1e-6)


def test_the_validation_curve_reaches_each_stages_tensorboard(
    kws_data_dir, tiny_pretrained, tmp_path
):
    corpus = tasks.list_task("gsc2", tasks.resolve_data_dir(kws_data_dir), seed=0)
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    settings = job_lib.Settings(method="finetune_classifier", reparam_epochs=2, batch_size=24)
    job = job_lib.Job(corpus, pretrained, settings, str(tmp_path), verbose=0, validation_curve=True)
    row, _ = job.train_variant(None)
    (stage,) = os.listdir(tmp_path / "logs")
    events = tf.compat.v1.train.summary_iterator(
        str(next((tmp_path / "logs" / stage / "validation").glob("events.*")))
    )
    curve = [
        float(tf.make_ndarray(value.tensor))
        for event in events
        for value in event.summary.value
        if value.tag == "epoch_accuracy"
    ]
    # One point per epoch; the last is the trained model's validation accuracy.
    assert len(curve) == 2
    assert curve[-1] == pytest.approx(row["validation_accuracy"], abs=1e-6)
