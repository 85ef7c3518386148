"""Search of the policy-loss weight `lambda` (and the learning rate) with keras-tuner.

`lambda` trades accuracy against hitting the budget: too small and the
policy ignores the target cost, too large and the target loss is drowned.
`LambdaTuner` samples `(lambda, learning_rate)`, hands each pair to a
`trial_fn` that runs the SWR stages, and maximises

    penalised_accuracy = val_accuracy - penalty,

where the penalty is 0 for a trial whose actual added-parameter ratio lies
within `tolerance` of the target cost and `1 + |added_ratio - target_cost|`
otherwise, so that every in-budget trial ranks above every out-of-budget one.

Trial bookkeeping is keras-tuner's own: the project directory is written by
its `Oracle`, an interrupted search resumes with `overwrite=False`, and the
search runs distributed, unchanged, when `KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` are set (see BUILD.md,
"Loss-weight search").
"""

import importlib.util
import math
import numbers

from swr_keras.optional import require
from swr_keras.validation import check_target_cost

keras_tuner = require("keras_tuner", "kws", "The lambda search (swr_keras.kws.tuning)")

POLICY_LOSS_WEIGHT = "policy_loss_weight"
LEARNING_RATE = "learning_rate"
OBJECTIVE = "penalised_accuracy"
ORACLES = ("random", "bayesian")
DEFAULT_TOLERANCE = 0.05
DEFAULT_LAMBDA_RANGE = (0.1, 10.0)
DEFAULT_LEARNING_RATE_RANGE = (1e-4, 3e-3)
REQUIRED_RESULTS = ("val_accuracy", "added_ratio")
_COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED

# `|added_ratio - target_cost|` is computed in floating point: 0.55 - 0.5 is
# 0.05000000000000004, which must still count as within a tolerance of 0.05.
_ROUNDING = 1e-9


def penalised_objective(val_accuracy, added_ratio, target_cost, tolerance=DEFAULT_TOLERANCE):
    """The search objective: accuracy, minus a penalty when the budget is missed.

    `val_accuracy` if `|added_ratio - target_cost| <= tolerance`, else
    `val_accuracy - (1 + |added_ratio - target_cost|)`. As accuracies lie in
    [0, 1], every in-budget trial scores >= 0 and every out-of-budget trial
    < 0; among the latter, the one closer to the budget usually wins.

    Args:
        val_accuracy: validation accuracy in [0, 1].
        added_ratio: the actual added-parameter ratio of the trained policy
            at `target_cost`, in [0, 1].
        target_cost: the target cost `c` in [0, 1].
        tolerance: the accepted `|added_ratio - target_cost|`, >= 0.

    Returns:
        A Python `float`.
    """
    val_accuracy = _check_unit_interval("val_accuracy", val_accuracy)
    added_ratio = _check_unit_interval("added_ratio", added_ratio)
    target_cost = check_target_cost(target_cost)
    tolerance = _check_tolerance(tolerance)
    miss = abs(added_ratio - target_cost)
    if miss <= tolerance + _ROUNDING:
        return val_accuracy
    return val_accuracy - (1.0 + miss)


class LambdaTuner(keras_tuner.Tuner):
    """Searches `lambda` and the learning rate of SWR for one target cost.

    Each trial calls `trial_fn(policy_loss_weight=..., learning_rate=...,
    trial_dir=...)`, which trains (super-net, policy with that `lambda`,
    reparametrisation at `target_cost`) and returns a dict with at least
    `"val_accuracy"` and `"added_ratio"` (the actual added-parameter ratio,
    e.g. `swr_keras.cost.added_parameter_ratio(trainer.model)` after the
    reparam stage); further numeric entries are recorded as metrics too.
    `trial_dir` is the trial's own directory, the same when an interrupted
    trial is run again, so `trial_fn` may keep checkpoints there.

    The objective `"penalised_accuracy"` (maximised) is `penalised_objective`;
    each trial also records `val_accuracy`, `added_ratio` and `target_miss`
    (`|added_ratio - target_cost|`).

    Failures follow keras-tuner: an exception raised by `trial_fn` marks the
    trial failed (retried `max_retries_per_trial` times first; the traceback
    is kept in `trial.message`) and the search goes on, until
    `max_consecutive_failed_trials` failures in a row stop it with a
    `RuntimeError`. A non-finite accuracy or ratio fails the trial the same
    way. A result that breaks the `trial_fn` contract (not a dict, a missing
    key, a value outside [0, 1]) stops the search at once with a
    `keras_tuner.errors.FatalValueError`.

    With `overwrite=False` (the default) a tuner built on an existing
    `directory`/`project_name` reloads it and runs only the remaining trials
    (`max_trials` counts the finished ones); a trial that was running when
    the search was interrupted runs again with the same hyperparameters.
    The saved seed and sampling state continue, whatever `seed` is passed.
    Resuming with another `target_cost`, `tolerance`, search space or oracle
    raises a `ValueError`.

    Args:
        trial_fn: `trial_fn(policy_loss_weight, learning_rate, trial_dir) ->
            dict`, called with keyword arguments.
        target_cost: the target cost `c` in [0, 1] the policy must hit.
        directory: the directory of the search's projects.
        tolerance: accepted `|added_ratio - target_cost|`.
        lambda_range: `(min, max)` of `lambda`, sampled on a log scale.
        learning_rate_range: `(min, max)` of the learning rate, sampled on a
            log scale.
        learning_rate_choices: a list of learning rates to choose from
            instead of `learning_rate_range`, e.g. the paper's `[1e-3, 5e-4]`.
        oracle: `"random"` (`RandomSearchOracle`) or `"bayesian"`
            (`BayesianOptimizationOracle`, needs scikit-learn).
        max_trials: the total number of trials of the search.
        seed: seed of the oracle; the same seed proposes the same
            hyperparameters.
        project_name: the project's sub-directory; defaults to
            `"target_cost_<c>"`, so searches for several costs can share
            `directory`.
        overwrite: delete an existing project instead of resuming it.
        max_retries_per_trial: runs of a crashed trial beyond the first.
        max_consecutive_failed_trials: failed trials in a row that stop the
            search.

    Example:

    ```python
    def trial_fn(policy_loss_weight, learning_rate, trial_dir):
        ...  # train the three stages with these values
        return {"val_accuracy": accuracy, "added_ratio": ratio}

    tuner = LambdaTuner(trial_fn, target_cost=0.5, directory="runs/lambda")
    tuner.search(verbose=0)
    print(format_trials(summarize(tuner)))
    best = best_hyperparameters(tuner)  # {"policy_loss_weight": ..., "learning_rate": ...}
    ```
    """

    def __init__(
        self,
        trial_fn,
        *,
        target_cost,
        directory,
        tolerance=DEFAULT_TOLERANCE,
        lambda_range=DEFAULT_LAMBDA_RANGE,
        learning_rate_range=DEFAULT_LEARNING_RATE_RANGE,
        learning_rate_choices=None,
        oracle="random",
        max_trials=10,
        seed=None,
        project_name=None,
        overwrite=False,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
    ):
        if not callable(trial_fn):
            raise ValueError(
                "trial_fn must be a callable trial_fn(policy_loss_weight, learning_rate, "
                f"trial_dir) -> dict. Received: trial_fn={trial_fn!r}"
            )
        if not (isinstance(max_trials, int) and max_trials > 0):
            raise ValueError(
                f"max_trials must be a positive integer. Received: max_trials={max_trials!r}"
            )
        if seed is not None and not (isinstance(seed, int) and seed >= 0):
            raise ValueError(f"seed must be an integer >= 0 or None. Received: seed={seed!r}")
        self.trial_fn = trial_fn
        self.target_cost = check_target_cost(target_cost)
        self.tolerance = _check_tolerance(tolerance)
        self.lambda_range = _check_log_range("lambda_range", lambda_range)
        if learning_rate_choices is None:
            self.learning_rate_range = _check_log_range("learning_rate_range", learning_rate_range)
            self.learning_rate_choices = None
        else:
            self.learning_rate_range = None
            self.learning_rate_choices = _check_choices(learning_rate_choices)
        # Set before `super().__init__`, which reloads an existing project and
        # calls `set_state` to check it was searched with these settings.
        self._settings = {
            "target_cost": self.target_cost,
            "tolerance": self.tolerance,
            "lambda_range": list(self.lambda_range),
            "learning_rate_range": _maybe_list(self.learning_rate_range),
            "learning_rate_choices": _maybe_list(self.learning_rate_choices),
            "oracle": oracle,
        }
        search_oracle = _make_oracle(
            oracle,
            hyperparameters=self._search_space(),
            max_trials=max_trials,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        super().__init__(
            oracle=search_oracle,
            directory=directory,
            project_name=project_name or f"target_cost_{self.target_cost:g}",
            overwrite=overwrite,
        )

    def _search_space(self):
        space = keras_tuner.HyperParameters()
        low, high = self.lambda_range
        space.Float(POLICY_LOSS_WEIGHT, low, high, sampling="log")
        if self.learning_rate_choices is None:
            low, high = self.learning_rate_range
            space.Float(LEARNING_RATE, low, high, sampling="log")
        else:
            space.Choice(LEARNING_RATE, self.learning_rate_choices)
        return space

    def search(self, verbose=1):
        """Runs the remaining trials; on the chief of a distributed search, serves them.

        Args:
            verbose: 0 silences keras-tuner's per-trial report.
        """
        return super().search(verbose=verbose)

    def run_trial(self, trial, **kwargs):
        """Calls `trial_fn` with the trial's values; returns its metrics.

        `kwargs` holds the `verbose` of `search`, which `trial_fn` does not take.
        """
        values = trial.hyperparameters.values
        results = self.trial_fn(
            policy_loss_weight=float(values[POLICY_LOSS_WEIGHT]),
            learning_rate=float(values[LEARNING_RATE]),
            trial_dir=self.get_trial_dir(trial.trial_id),
        )
        metrics = _check_results(results)
        metrics[OBJECTIVE] = penalised_objective(
            metrics["val_accuracy"], metrics["added_ratio"], self.target_cost, self.tolerance
        )
        metrics["target_miss"] = abs(metrics["added_ratio"] - self.target_cost)
        return metrics

    def get_state(self):
        return {"lambda_tuner": self._settings}

    def set_state(self, state):
        saved = state.get("lambda_tuner", {})
        differing = sorted(
            key for key in self._settings if saved.get(key, None) != self._settings[key]
        )
        if differing:
            details = ", ".join(
                f"{key}: saved {saved.get(key)!r}, now {self._settings[key]!r}" for key in differing
            )
            raise ValueError(
                f"The project at {self.project_dir} was searched with other settings "
                f"({details}). Resume it with the same settings, or pass overwrite=True "
                "or another project_name to start a new search."
            )


def summarize(tuner):
    """The trials of `tuner`, best first.

    Completed trials come first, by decreasing penalised accuracy; then the
    others (failed, running) by trial id. Only the oracle's host knows every
    trial: call it on the chief of a distributed search, or on a
    `LambdaTuner` rebuilt on the project without the `KERASTUNER_*`
    variables.

    Args:
        tuner: a `LambdaTuner`.

    Returns:
        A list of dicts with keys `trial_id`, `policy_loss_weight`,
        `learning_rate`, `val_accuracy`, `added_ratio`, `penalised_accuracy`,
        `in_budget` and `status` (metrics are `None` for a trial without
        results).
    """
    trials = _trials(tuner)
    rows = []
    for trial in trials:
        values = trial.hyperparameters.values
        row = {
            "trial_id": trial.trial_id,
            POLICY_LOSS_WEIGHT: values.get(POLICY_LOSS_WEIGHT),
            LEARNING_RATE: values.get(LEARNING_RATE),
        }
        for name in ("val_accuracy", "added_ratio", OBJECTIVE):
            row[name] = trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None
        miss = None if row["added_ratio"] is None else abs(row["added_ratio"] - tuner.target_cost)
        row["in_budget"] = None if miss is None else miss <= tuner.tolerance + _ROUNDING
        row["status"] = trial.status
        rows.append(row)

    def rank(row):
        completed = row["status"] == _COMPLETED
        score = row[OBJECTIVE] if completed and row[OBJECTIVE] is not None else -math.inf
        return (not completed, -score, row["trial_id"])

    return sorted(rows, key=rank)


_COLUMNS = (
    ("trial_id", "trial", "{}"),
    (POLICY_LOSS_WEIGHT, "lambda", "{:.4g}"),
    (LEARNING_RATE, "learning_rate", "{:.3g}"),
    ("val_accuracy", "val_accuracy", "{:.4f}"),
    ("added_ratio", "added_ratio", "{:.4f}"),
    (OBJECTIVE, "penalised", "{:.4f}"),
    ("in_budget", "in_budget", "{}"),
    ("status", "status", "{}"),
)


def format_trials(rows):
    """Formats the rows of `summarize` as a fixed-width text table."""
    cells = [[title for _, title, _ in _COLUMNS]]
    for row in rows:
        cells.append(
            ["-" if row.get(key) is None else spec.format(row[key]) for key, _, spec in _COLUMNS]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def best_hyperparameters(tuner):
    """`{"policy_loss_weight": ..., "learning_rate": ...}` of the best completed trial.

    Raises:
        ValueError: if no trial has completed.
    """
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != _COMPLETED:
        raise ValueError(
            f"No trial of the project at {tuner.project_dir} has completed; "
            "run tuner.search() first (see summarize(tuner) for failed trials)."
        )
    values = best[0].hyperparameters.values
    return {
        POLICY_LOSS_WEIGHT: float(values[POLICY_LOSS_WEIGHT]),
        LEARNING_RATE: float(values[LEARNING_RATE]),
    }


def _make_oracle(name, *, seed, **kwargs):
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    # keras-tuner replaces a falsy seed by a random one (`seed or randint`),
    # so seed=0 would not be reproducible: shift every seed by one.
    seed = None if seed is None else seed + 1
    kwargs.update(objective=objective, seed=seed, allow_new_entries=False, tune_new_entries=False)
    if name == "random":
        return keras_tuner.oracles.RandomSearchOracle(**kwargs)
    if name == "bayesian":
        if any(importlib.util.find_spec(module) is None for module in ("sklearn", "scipy")):
            raise ImportError(
                'oracle="bayesian" needs scikit-learn and scipy: `pip install scikit-learn '
                'scipy` (or keras-tuner[bayesian]), or use oracle="random".'
            )
        return keras_tuner.oracles.BayesianOptimizationOracle(**kwargs)
    raise ValueError(f"oracle must be one of {ORACLES}. Received: oracle={name!r}")


def _trials(tuner):
    trials = getattr(tuner.oracle, "trials", None)
    if trials is None:
        raise ValueError(
            "This tuner is a worker of a distributed search and does not hold the "
            "trials. Summarise on the chief, or on a LambdaTuner built on the same "
            "directory without the KERASTUNER_* environment variables."
        )
    return list(trials.values())


def _check_results(results):
    if not isinstance(results, dict) or any(key not in results for key in REQUIRED_RESULTS):
        raise keras_tuner.errors.FatalValueError(
            f"trial_fn must return a dict with keys {REQUIRED_RESULTS}. Received: {results!r}"
        )
    # keras-tuner records numbers only; other entries of the result are dropped.
    metrics = {
        key: float(value)
        for key, value in results.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }
    for key in REQUIRED_RESULTS:
        try:
            value = float(results[key])
        except (TypeError, ValueError):
            raise keras_tuner.errors.FatalValueError(
                f"trial_fn's {key!r} must be a number. Received: {key}={results[key]!r}"
            ) from None
        if not math.isfinite(value):
            raise keras_tuner.errors.FailedTrialError(
                f"trial_fn returned {key}={value}; the training diverged."
            )
        if not 0.0 <= value <= 1.0:
            raise keras_tuner.errors.FatalValueError(
                f"trial_fn's {key!r} must be a fraction in [0, 1]. Received: {key}={value}"
            )
        metrics[key] = value
    return metrics


def _check_unit_interval(name, value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]. Received: {name}={value}")
    return value


def _check_tolerance(tolerance):
    tolerance = float(tolerance)
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"tolerance must be in [0, 1]. Received: tolerance={tolerance}")
    return tolerance


def _check_log_range(name, value):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max). Received: {name}={value!r}") from None
    if not 0.0 < low < high:
        raise ValueError(
            f"{name} must satisfy 0 < min < max (it is sampled on a log scale). "
            f"Received: {name}={value!r}"
        )
    return (low, high)


def _check_choices(choices):
    values = [float(v) for v in choices]
    if not values or any(not v > 0 for v in values) or len(set(values)) != len(values):
        raise ValueError(
            "learning_rate_choices must be distinct positive numbers. "
            f"Received: learning_rate_choices={choices!r}"
        )
    return values


def _maybe_list(value):
    return None if value is None else list(value)
