r"""keras-tuner search over lambda (and the learning rate) for one target cost.

Each trial runs the stages of recipes/kws.py for --method (swr or another
method of the registry that takes target costs) (same training flags) with
its own lambda and learning rate and scores the validation accuracy of the
reparametrised model; a trial whose actual added-parameter ratio misses
--target_cost by more than --tolerance is ranked below every trial that
meets it. Prints the trials, best first, and the best lambda.

    python recipes/tune_lambda.py --target_cost=0.5 --max_trials=8

Run the same command again to resume an interrupted search. Distributed
search with keras-tuner's chief/worker processes: BUILD.md, "Loss-weight
search".
"""

import os
import sys

if not __package__:  # run as `python recipes/tune_lambda.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import kws_flags, recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROGRAM = "tune_lambda.py"

FLAGS = flags.FLAGS
flags.DEFINE_string("target_cost", "0.5", "The one target cost c in [0, 1] the search is for.")
flags.DEFINE_float(
    "tolerance",
    0.05,
    "Largest |actual added-parameter ratio - c| of a trial that is not penalised.",
)
flags.DEFINE_integer(
    "max_trials", 8, "Trials in all (a resumed search runs only the missing ones)."
)
flags.DEFINE_string("oracle", "random", "random, or bayesian (needs scikit-learn).")
flags.DEFINE_float("min_lambda", 0.1, "Smallest lambda tried (log scale; paper: 1).")
flags.DEFINE_float("max_lambda", 10.0, "Largest lambda tried.")
flags.DEFINE_string(
    "directory", "runs/tune_lambda", "keras-tuner's state and each trial's checkpoints and logs."
)
flags.DEFINE_string("project_name", "", "Sub-directory of the search; default target_cost_<c>.")
flags.DEFINE_bool(
    "overwrite",
    False,
    "Delete an earlier search of the same project first "
    "(never on workers of a distributed search).",
)
kws_flags.define_method_flags()
kws_flags.define_training_flags()
# Listed by --help with this recipe's own flags (absl shows only key flags there).
flags.adopt_module_key_flags(kws_flags)


def check_flags():
    kws_flags.check_method()
    tunable = [
        m.name
        for m in recipe_cli.quiet_import("swr_keras.methods").methods()
        if m.takes_target_costs
    ]
    if FLAGS.method not in tunable:
        raise ValueError(
            f"--method={FLAGS.method} takes no target cost, so it has no lambda to tune. "
            f"Choose one of: {', '.join(tunable)}."
        )
    cost = kws_flags.parse_target_cost(FLAGS.target_cost)
    recipe_cli.quiet_import("swr_keras.validation").check_positive_int(
        "--max_trials", FLAGS.max_trials
    )
    if not 0.0 <= FLAGS.tolerance <= 1.0:
        raise ValueError(f"--tolerance must be in [0, 1]. Received: {FLAGS.tolerance}")
    if FLAGS.oracle not in ("random", "bayesian"):
        raise ValueError(f"--oracle={FLAGS.oracle} is unknown. Choose random or bayesian.")
    if not 0 < FLAGS.min_lambda < FLAGS.max_lambda:
        raise ValueError(
            f"Need 0 < --min_lambda < --max_lambda. Received: {FLAGS.min_lambda}, "
            f"{FLAGS.max_lambda}"
        )
    kws_flags.check_training_flags()
    recipe_cli.check_writable_dir("--directory", FLAGS.directory)
    return cost


def main(argv):
    del argv
    try:
        target_cost = check_flags()
        pretrained, source, corpus, pretrained_path = kws_flags.load_pretrained_and_corpus()
    except (ValueError, FileNotFoundError, ImportError) as error:
        recipe_cli.fail(PROGRAM, error)

    from swr_keras.kws import job as job_lib
    from swr_keras.kws import tuning

    identity = kws_flags.job_identity(source, pretrained_path)

    def trial_fn(policy_loss_weight, learning_rate, trial_dir):
        settings = kws_flags.settings(
            FLAGS.method, policy_loss_weight=policy_loss_weight, learning_rate=learning_rate
        )
        job = job_lib.Job(
            corpus,
            pretrained,
            settings,
            trial_dir,
            identity,
            verbose=recipe_cli.progress_verbosity(),
            validation_curve=FLAGS.validation_curve,
        )
        row, _ = job.train_variant(target_cost)
        return {
            "val_accuracy": row["validation_accuracy"],
            "added_ratio": row["added_ratio"],
            "test_accuracy": row["test_accuracy"],
        }

    try:
        tuner = tuning.LambdaTuner(
            trial_fn,
            target_cost=target_cost,
            directory=FLAGS.directory,
            project_name=FLAGS.project_name or None,
            tolerance=FLAGS.tolerance,
            lambda_range=(FLAGS.min_lambda, FLAGS.max_lambda),
            oracle=FLAGS.oracle,
            max_trials=FLAGS.max_trials,
            seed=FLAGS.seed,
            overwrite=FLAGS.overwrite,
        )
    except (ValueError, ImportError) as error:
        recipe_cli.fail(PROGRAM, error)
    tuner.search()
    if "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get(
        "KERASTUNER_TUNER_ID", ""
    ):
        return  # a worker of a distributed search: the chief holds the trials and reports
    print()
    print(f"Trials for target cost {target_cost} (tolerance {FLAGS.tolerance}), best first:")
    print(tuning.format_trials(tuning.summarize(tuner)))
    best = tuning.best_hyperparameters(tuner)
    print(
        f"best lambda {best['policy_loss_weight']:.4g}, learning rate {best['learning_rate']:.3g}"
    )


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
