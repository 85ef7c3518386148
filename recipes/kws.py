r"""SWR transfer of a multi-lingual keyword-spotting backbone to one language.

The main job. By default it transfers the shipped BC-ResNet-8, pre-trained
on the 22 English + Mandarin classes of the synthetic corpus
(saved_models/bc_resnet8_multilingual), to the 12-way English task of the
synthetic transfer corpus (other speakers, English in an American accent):

    python recipes/kws.py --target_cost=0.5
    python recipes/kws.py --target_cost=0.1,0.3,0.5          # one policy network serves all
    python recipes/kws.py --method=finetune_all               # baseline, same epochs
    python recipes/kws.py --helpfull                          # every method and its options
    python recipes/kws.py --task=mc_kws --data_dir=/data/kws --pretrained=runs/bc8/model.keras
    python recipes/kws.py --task=folder --data_dir=my_words   # your own keywords, shipped backbone
    python recipes/kws.py --distribute=mirrored               # every GPU of this machine

SWR: stage 1a trains the super-net (every layer's delta), 1b the policy
network over random target costs, 2 the deltas of the layers the policy picks
for each target cost, from zero. It prints a line per stage, Keras progress,
and a table with the paper's Table 1 columns; writes metrics.json,
TensorBoard logs, policy_map.png and controllability.png into --output_dir;
and exports each transferred model, merged into plain layers, as a TF
Serving SavedModel (saved_models/<name>/<version>/) and as float and int8
TFLite files. Run again with the same flags after a kill: it resumes from
the last completed epoch. Bad flags exit with status 2 and one line.
"""

import os
import sys
import tempfile
import time

if not __package__:  # run as `python recipes/kws.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import kws_flags, recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROGRAM = "kws.py"

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "target_cost",
    ["0.5"],
    "Target cost(s) c in [0, 1], comma-separated; one policy "
    "network serves them all (paper: 0.1, 0.3, 0.5).",
)
kws_flags.define_method_flags()
kws_flags.define_training_flags()
# Listed by --help with this recipe's own flags (absl shows only key flags there).
flags.adopt_module_key_flags(kws_flags)
flags.DEFINE_string(
    "output_dir", "runs/kws", "metrics.json, plots, TensorBoard logs, checkpoints, TFLite files."
)
flags.DEFINE_string(
    "export_dir", "saved_models", "TF Serving exports go to <export_dir>/<model name>/<version>/."
)
flags.DEFINE_bool("export", True, "Export SavedModels and TFLite files.")
flags.DEFINE_string(
    "bank",
    "",
    "Add each result to the task bank in this directory (recipes/bank.py), named "
    "<task>_<method>[_c<cost>]; checked before training.",
)
recipe_cli.define_distribute_flag()


def check_flags():
    """Every check that needs no data; raises a one-line ValueError/FileNotFoundError."""
    kws_flags.check_method()
    costs = [kws_flags.parse_target_cost(text) for text in FLAGS.target_cost]
    if not costs:
        raise ValueError("--target_cost needs at least one value in [0, 1], e.g. --target_cost=0.5")
    kws_flags.check_training_flags()
    recipe_cli.check_writable_dir("--output_dir", FLAGS.output_dir)
    if FLAGS.export:
        recipe_cli.check_writable_dir("--export_dir", FLAGS.export_dir)
    return sorted(set(costs), key=costs.index)


def main(argv):
    del argv
    start = time.time()
    try:
        costs = check_flags()
        # Before any model: a multi-worker strategy must exist before TensorFlow runs anything.
        strategy = recipe_cli.strategy_from_flag()
        pretrained, source, corpus, pretrained_path = kws_flags.load_pretrained_and_corpus()

        from swr_keras.kws import job as job_lib
        from swr_keras.kws import run_report

        job = job_lib.Job(
            corpus,
            pretrained,
            kws_flags.settings(FLAGS.method),
            FLAGS.output_dir,
            kws_flags.job_identity(source, pretrained_path),
            verbose=recipe_cli.progress_verbosity(),
            strategy=strategy,
            validation_curve=FLAGS.validation_curve,
        )
        job.check_resumable(costs)
        if FLAGS.bank:
            from swr_keras.bank import from_run

            names = [
                from_run.default_task_name(FLAGS.task, FLAGS.method, v) for v in job.variants(costs)
            ]
            from_run.check_can_add(FLAGS.bank, names, pretrained)
    except (ValueError, FileNotFoundError) as error:
        recipe_cli.fail(PROGRAM, error)

    # Under several workers only the chief writes results; the others report to scratch.
    output_dir = FLAGS.output_dir if job.chief else tempfile.mkdtemp(prefix="kws_worker_")
    report = run_report.RunReport(
        output_dir,
        FLAGS.export_dir if FLAGS.export and job.chief else None,
        job,
        task=FLAGS.task,
        flags_text=" ".join(sys.argv[1:]),
        data={
            "task": FLAGS.task,
            "data_dir": FLAGS.data_dir,
            "task_options": kws_flags.task_options(),
        },
    )
    job.train_shared()
    report.add_policy(costs)  # methods with a policy network only
    for row, model in job.run(costs):
        report.add_result(row, model)
    report.finish(seconds=time.time() - start)
    if FLAGS.bank and job.chief:  # only the chief wrote the results
        try:
            for entry in from_run.add_run(
                FLAGS.bank, FLAGS.output_dir, pretrained_path, backbone_model=pretrained
            ):
                print(f"added {entry.name} to the task bank {FLAGS.bank}")
        except ValueError as error:
            recipe_cli.fail(PROGRAM, error)


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
