"""The lambda search: its objective, keras-tuner bookkeeping, and one real SWR trial."""

import math

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.kws import tuning
from swr_keras.kws.tuning import LambdaTuner

TARGET_COST = 0.5


def in_budget_above_one(policy_loss_weight, learning_rate, trial_dir):
    """Hits the budget only for lambda >= 1; a smaller lambda buys raw accuracy."""
    return {
        "val_accuracy": 0.9 - 0.05 * math.log10(policy_loss_weight),
        "added_ratio": TARGET_COST if policy_loss_weight >= 1.0 else 0.9,
        "val_loss": 0.1,
        "note": "not a number: dropped",
    }


class Recorder:
    """A fake trial_fn that remembers what it was asked."""

    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, policy_loss_weight, learning_rate, trial_dir):
        self.calls.append((policy_loss_weight, learning_rate))
        if len(self.calls) in self.fail_on:
            raise RuntimeError(f"boom in call {len(self.calls)}")
        return {"val_accuracy": 0.8, "added_ratio": TARGET_COST}


def make_tuner(trial_fn, directory, **kwargs):
    kwargs.setdefault("max_trials", 3)
    kwargs.setdefault("seed", 1)
    return LambdaTuner(trial_fn, target_cost=TARGET_COST, directory=str(directory), **kwargs)


def test_penalised_objective():
    assert tuning.penalised_objective(0.9, 0.5, 0.5) == 0.9
    assert tuning.penalised_objective(0.9, 0.55, 0.5, 0.05) == 0.9  # edge counts as in
    assert tuning.penalised_objective(0.9, 0.45, 0.5, 0.05) == 0.9
    assert tuning.penalised_objective(0.9, 0.7, 0.5, 0.05) == pytest.approx(0.9 - 1.2)
    assert tuning.penalised_objective(1.0, 0.0, 0.5, 0.0) == pytest.approx(-0.5)
    # The worst in-budget trial beats the best out-of-budget one.
    assert tuning.penalised_objective(0.0, 0.5, 0.5) > tuning.penalised_objective(1.0, 0.56, 0.5)
    with pytest.raises(ValueError, match="val_accuracy must be a number in"):
        tuning.penalised_objective(93.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="tolerance"):
        tuning.penalised_objective(0.9, 0.5, 0.5, -0.1)
    with pytest.raises(ValueError, match="target_cost"):
        tuning.penalised_objective(0.9, 0.5, 1.5)


def test_best_trial_is_the_most_accurate_in_budget(tmp_path):
    tuner = make_tuner(in_budget_above_one, tmp_path, max_trials=8)
    tuner.search(verbose=0)
    rows = tuning.summarize(tuner)
    assert len(rows) == 8 and all(row["status"] == "COMPLETED" for row in rows)
    inside = [row for row in rows if row["in_budget"]]
    outside = [row for row in rows if not row["in_budget"]]
    assert inside and outside, "the seed must sample lambdas on both sides of 1"
    assert max(r["val_accuracy"] for r in outside) > max(r["val_accuracy"] for r in inside)

    assert rows[: len(inside)] == sorted(inside, key=lambda r: -r["penalised_accuracy"])
    best_lambda = min(r["policy_loss_weight"] for r in inside)
    assert rows[0]["policy_loss_weight"] == best_lambda
    best = tuning.best_hyperparameters(tuner)
    assert best == {
        "policy_loss_weight": best_lambda,
        "learning_rate": rows[0]["learning_rate"],
    }
    trial = tuner.oracle.trials[rows[0]["trial_id"]]
    assert trial.metrics.get_last_value("val_loss") == pytest.approx(0.1)
    assert trial.metrics.get_last_value("target_miss") == 0.0
    assert not trial.metrics.exists("note")

    table = tuning.format_trials(rows).splitlines()
    assert len(table) == 2 + 8 and "lambda" in table[0] and "penalised" in table[0]
    assert len({len(line) for line in table}) == 1  # fixed width


def test_hyperparameters_stay_in_their_ranges(tmp_path):
    recorder = Recorder()
    make_tuner(recorder, tmp_path / "default", max_trials=10).search(verbose=0)
    lambdas, rates = np.array(recorder.calls).T
    assert np.all((0.1 <= lambdas) & (lambdas <= 10.0))
    assert np.all((1e-4 <= rates) & (rates <= 3e-3))
    assert lambdas.min() < 1.0 < lambdas.max()  # log sampling reaches both decades

    recorder = Recorder()
    make_tuner(
        recorder,
        tmp_path / "custom",
        max_trials=6,
        lambda_range=(0.5, 2.0),
        learning_rate_choices=[1e-3, 5e-4],
    ).search(verbose=0)
    lambdas, rates = np.array(recorder.calls).T
    assert np.all((0.5 <= lambdas) & (lambdas <= 2.0))
    assert set(rates) <= {1e-3, 5e-4}


def test_same_seed_proposes_the_same_sequence(tmp_path):
    sequences = []
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        recorder = Recorder()
        make_tuner(recorder, tmp_path / name, max_trials=4, seed=seed).search(verbose=0)
        sequences.append(recorder.calls)
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


def test_search_resumes_where_it_stopped(tmp_path):
    first = Recorder()
    make_tuner(first, tmp_path, max_trials=2).search(verbose=0)
    assert len(first.calls) == 2

    second = Recorder()
    tuner = make_tuner(second, tmp_path, max_trials=3)
    tuner.search(verbose=0)
    assert len(second.calls) == 1
    assert len(tuning.summarize(tuner)) == 3
    assert second.calls[0] not in first.calls

    with pytest.raises(ValueError, match="target_cost: saved 0.5, now 0.3"):
        LambdaTuner(
            Recorder(), target_cost=0.3, directory=str(tmp_path), project_name="target_cost_0.5"
        )


def test_interrupted_trial_runs_again_with_the_same_values(tmp_path):
    calls = []

    def interrupted(policy_loss_weight, learning_rate, trial_dir):
        calls.append((policy_loss_weight, learning_rate, trial_dir))
        if len(calls) == 2:
            raise KeyboardInterrupt  # not an Exception: keras-tuner does not catch it
        return {"val_accuracy": 0.8, "added_ratio": TARGET_COST}

    with pytest.raises(KeyboardInterrupt):
        make_tuner(interrupted, tmp_path).search(verbose=0)
    make_tuner(interrupted, tmp_path).search(verbose=0)
    assert len(calls) == 4
    assert calls[2] == calls[1]  # same lambda, learning rate and trial_dir
    statuses = [row["status"] for row in tuning.summarize(make_tuner(interrupted, tmp_path))]
    assert statuses == ["COMPLETED"] * 3


def test_failing_trials(tmp_path):
    # keras-tuner catches the exception, marks the trial FAILED and goes on.
    recorder = Recorder(fail_on=(1,))
    tuner = make_tuner(recorder, tmp_path / "once")
    tuner.search(verbose=0)
    rows = tuning.summarize(tuner)
    assert [row["status"] for row in rows] == ["COMPLETED", "COMPLETED", "FAILED"]
    assert rows[-1]["val_accuracy"] is None
    assert "boom in call 1" in tuner.oracle.trials[rows[-1]["trial_id"]].message
    assert "-" in tuning.format_trials(rows).splitlines()[-1]

    # ... until max_consecutive_failed_trials failures in a row stop the search.
    tuner = make_tuner(
        Recorder(fail_on=(1, 2)), tmp_path / "always", max_consecutive_failed_trials=2
    )
    with pytest.raises(RuntimeError, match="(?s)consecutive failures.*boom in call 2"):
        tuner.search(verbose=0)
    with pytest.raises(ValueError, match="No trial .* has completed"):
        tuning.best_hyperparameters(tuner)


def test_bad_results_stop_the_search(tmp_path):
    def percent(policy_loss_weight, learning_rate, trial_dir):
        return {"val_accuracy": 93.0, "added_ratio": 0.5}

    def missing(policy_loss_weight, learning_rate, trial_dir):
        return {"accuracy": 0.9}

    with pytest.raises(keras_tuner.errors.FatalValueError, match=r"in \[0, 1\]"):
        make_tuner(percent, tmp_path / "percent").search(verbose=0)
    with pytest.raises(keras_tuner.errors.FatalValueError, match="added_ratio"):
        make_tuner(missing, tmp_path / "missing").search(verbose=0)


def test_bad_arguments(tmp_path):
    fake = Recorder()
    with pytest.raises(ValueError, match="lambda_range must satisfy 0 < min < max"):
        make_tuner(fake, tmp_path, lambda_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="learning_rate_choices"):
        make_tuner(fake, tmp_path, learning_rate_choices=[])
    with pytest.raises(ValueError, match="oracle must be one of"):
        make_tuner(fake, tmp_path, oracle="grid")
    with pytest.raises(ValueError, match="trial_fn must be a callable"):
        make_tuner(None, tmp_path)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install scikit-learn"):
            make_tuner(fake, tmp_path, oracle="bayesian")
    else:
        assert isinstance(make_tuner(fake, tmp_path, oracle="bayesian"), LambdaTuner)


def swr_trial(data, validation, returned=None):
    """A real trial_fn: the three SWR stages of a tiny pre-trained conv net.

    Appends what each trial returns to `returned`.
    """

    def trial_fn(policy_loss_weight, learning_rate, trial_dir):
        keras.utils.set_random_seed(0)
        pretrained = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.Conv2D(4, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(2, activation="softmax", name="classifier"),
            ]
        )
        trainer = swr_keras.SWRTrainer(
            swr_keras.reparametrize(pretrained), policy_loss_weight=policy_loss_weight, seed=0
        )
        swr_keras.fit_stage(
            trainer, "supernet", data, epochs=1, learning_rate=learning_rate, verbose=0
        )
        swr_keras.fit_stage(
            trainer, "policy", data, epochs=1, learning_rate=learning_rate, verbose=0
        )
        history = swr_keras.fit_stage(
            trainer,
            "reparam",
            data,
            epochs=1,
            learning_rate=learning_rate,
            target_cost=TARGET_COST,
            validation_data=validation,
            verbose=0,
        )
        result = {
            "val_accuracy": history.history["val_accuracy"][-1],
            "added_ratio": swr_keras.cost.added_parameter_ratio(trainer.model),
        }
        if returned is not None:
            returned.append({**result, "policy_loss_weight": policy_loss_weight})
        return result

    return trial_fn


def test_real_swr_trials(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 2, 32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    returned = []
    tuner = make_tuner(swr_trial(data, data, returned), tmp_path, max_trials=2)
    tuner.search(verbose=0)
    rows = tuning.summarize(tuner)
    assert [row["status"] for row in rows] == ["COMPLETED"] * 2
    # Each trial's row carries what that trial measured, not another's.
    by_lambda = {round(r["policy_loss_weight"], 9): r["added_ratio"] for r in returned}
    for row in rows:
        assert row["added_ratio"] == pytest.approx(by_lambda[round(row["policy_loss_weight"], 9)])
    assert len(tuning.format_trials(rows).splitlines()) == 2 + 2
