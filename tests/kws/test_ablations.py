"""Table 2 and Fig. 2a ablations as job settings: each changes what it must, shares the rest."""

import keras
import numpy as np
import pytest

from swr_keras import checkpointing
from swr_keras.kws import job as job_lib
from swr_keras.methods import not_staged
from swr_keras.model_walk import reparam_layers

from .test_job import make_job, record_trained_epochs

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

TINY = dict(supernet_epochs=1, policy_epochs=1, reparam_epochs=1, batch_size=24, seed=2)


def job_with(data_dir, pretrained, work_dir, **changes):
    return make_job(data_dir, pretrained, work_dir, job_lib.Settings(**{**TINY, **changes}))


def deltas(job):
    return [layer.kernel_delta.numpy() for layer in reparam_layers(job.model.model)]


class StageTwoStarted(Exception):
    """Stops a job where stage 2's `fit` begins, before any step."""


def deltas_at_stage_two(job, patch, cost=0.5):
    """The deltas as stage 2's `fit` starts for `cost` (nothing of it is trained)."""
    started = []

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            started.append(deltas(job))
            raise StageTwoStarted()

    fit = keras.Model.fit

    def capturing_fit(self, *args, callbacks=(), **kwargs):
        return fit(self, *args, callbacks=[*callbacks, Capture()], **kwargs)

    patch.setattr(keras.Model, "fit", capturing_fit)
    with pytest.raises(StageTwoStarted):
        job.train_variant(cost)
    return started[0]


@pytest.fixture(scope="module")
def swr_stage_one(kws_data_dir, tiny_pretrained, tmp_path_factory):
    """Plain SWR's stage 1 in a work directory the ablations then share."""
    work_dir = tmp_path_factory.mktemp("ablations")
    job = job_with(kws_data_dir, tiny_pretrained, work_dir)
    job.train_shared()
    return work_dir, job, deltas(job)


@pytest.mark.slow  # stage 1 of SWR and a policy stage of BC-ResNet-1: about 20 s CPU
def test_equal_cost_weights_share_the_supernet_and_train_their_own_policy(
    kws_data_dir, tiny_pretrained, swr_stage_one, monkeypatch
):
    work_dir, swr, _ = swr_stage_one
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        job = job_with(kws_data_dir, tiny_pretrained, work_dir, cost_weighting="equal")
        job.train_shared()
    weights = job.model.cost_weights
    np.testing.assert_allclose(weights, np.full(43, 1 / 43), rtol=1e-6)
    assert not np.allclose(swr.model.cost_weights, weights)  # SWR's r_l: parameter shares
    # Stage 1a is SWR's (same checkpoint, nothing trained); 1b is its own.
    assert job._directory("stage1a_supernet") == swr._directory("stage1a_supernet")
    assert job._directory("stage1b_policy") != swr._directory("stage1b_policy")
    assert trained == [("stage1b_policy", 0)]


@pytest.mark.slow  # loads stage 1 and starts stage 2 twice: about 10 s CPU
def test_supernet_weight_starts_stage_two_from_the_supernet_deltas(
    kws_data_dir, tiny_pretrained, swr_stage_one, monkeypatch
):
    work_dir, swr, supernet = swr_stage_one
    job = job_with(kws_data_dir, tiny_pretrained, work_dir, supernet_weight=True)
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        job.train_shared()
        start = deltas_at_stage_two(job, patch)
    # Stage 1 (1a and 1b) is SWR's, reused; stage 2 has its own checkpoint.
    assert trained == []
    assert job._directory("stage1b_policy") == swr._directory("stage1b_policy")
    assert job._directory("stage2_reparam_c0.50_e1") != swr._directory("stage2_reparam_c0.50_e1")
    for got, want in zip(start, supernet):  # every delta, gated or not, from the super-net
        np.testing.assert_array_equal(got, want)
    assert sum(np.any(delta) for delta in start) == 43
    # Plain SWR's stage 2 starts from zero deltas.
    with monkeypatch.context() as patch:
        assert not any(np.any(delta) for delta in deltas_at_stage_two(swr, patch))


@pytest.mark.slow  # a policy stage of BC-ResNet-1: about 10 s CPU
def test_without_supernet_the_policy_learns_on_the_pretrained_model(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch
):
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        job = job_with(kws_data_dir, tiny_pretrained, tmp_path, supernet=False)
        job.train_shared()
    assert trained == [("stage1b_policy", 0)]
    assert not list((tmp_path / "checkpoints").glob("*/stage1a_supernet"))
    assert not any(np.any(delta) for delta in deltas(job))
    assert job.controllability([0.5])[0.5][1] > 0  # a policy all the same


@pytest.mark.slow  # three joint epochs of BC-ResNet-1 and an evaluation: about 20 s CPU
def test_not_staged_is_one_joint_stage_evaluated_at_the_binarised_policy(
    kws_data_dir, tiny_pretrained, tmp_path, monkeypatch
):
    with monkeypatch.context() as patch:
        trained = record_trained_epochs(patch)
        job = job_with(kws_data_dir, tiny_pretrained, tmp_path, method="not_staged")
        job.train_shared()
        joint = deltas(job)
        row, merged = job.train_variant(0.5)
    # One stage of 1a + 1b + 2 epochs, nothing after it.
    name = "joint_not_staged_e3"
    assert trained == [(name, 0), (name, 1), (name, 2)]
    assert checkpointing.read_progress(job._directory(name))["complete"]
    # The task is the co-optimised deltas of the layers the policy picks.
    assert 0 < row["reparametrised_layers"] < 43
    for got, want in zip(deltas(job), joint):
        np.testing.assert_array_equal(got, want)
    hits = [np.argmax(merged(x, training=False), axis=-1) == y.numpy() for x, y in job.test]
    assert row["test_accuracy"] == pytest.approx(float(np.mean(np.concatenate(hits))), abs=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_not_staged_policy_learns_at_the_policy_learning_rate(optimizer):
    policy = keras.Variable(np.zeros(3, "float32"))
    other = keras.Variable(np.zeros(3, "float32"))
    settings = job_lib.Settings(optimizer=optimizer, momentum=0.0)
    optimizer = not_staged.with_policy_rate(
        settings.make_optimizer(1e-3, total_steps=1000), [policy], policy_rate_scale=10.0
    )
    gradient = np.ones(3, "float32")
    optimizer.apply_gradients([(gradient, policy), (gradient, other)])
    # A first step of Adam (or plain SGD, gradient 1) moves every weight by its learning rate.
    np.testing.assert_allclose(other.numpy(), -1e-3, rtol=1e-3)
    np.testing.assert_allclose(policy.numpy(), -1e-2, rtol=1e-3)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cost_weighting": "flat"}, "--cost_weighting must be one of parameters, equal"),
        ({"supernet": False, "supernet_weight": True}, "drop one of the two flags"),
    ],
)
def test_bad_ablation_values_are_one_line_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        job_lib.Settings(**changes)


def test_an_ablation_the_method_does_not_take_is_refused():
    with pytest.raises(ValueError, match=r"^--supernet is an ablation of swr, not of --method=not"):
        job_lib.check_ablations(job_lib.Settings(method="not_staged", supernet=False))
    with pytest.raises(ValueError, match="not of --method=finetune_all"):
        job_lib.check_ablations(job_lib.Settings(method="finetune_all", cost_weighting="equal"))
    job_lib.check_ablations(job_lib.Settings(method="not_staged", cost_weighting="equal"))


def test_default_ablations_leave_the_recorded_settings_and_keys_alone():
    default = job_lib.Settings()
    assert set(job_lib.ABLATIONS).isdisjoint(default.recorded())
    assert job_lib.Settings(supernet_weight=True).key() != default.key()
    # The super-net ignores the policy's and stage 2's settings.
    ignored = ("cost_weighting", "supernet_weight", "policy_learning_rate")
    assert job_lib.Settings(cost_weighting="equal", supernet_weight=True).key(
        ignore=ignored
    ) == default.key(ignore=ignored)


def test_the_policy_search_settings_key_the_checkpoints_of_the_methods_that_read_them(
    kws_data_dir, tiny_pretrained, tmp_path
):
    """A longer policy stage gives SWR new checkpoints, and a baseline the ones it had."""
    for method, stage, moves in (
        ("finetune_all", "finetune_all_e1", False),
        ("swr", "stage1b_policy", True),
    ):
        directories = [
            job_with(
                kws_data_dir, tiny_pretrained, tmp_path, method=method, policy_epochs=epochs
            )._directory(stage)
            for epochs in (1, 2)
        ]
        assert (directories[0] != directories[1]) == moves, method
