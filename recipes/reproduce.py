r"""The paper's Table 1, Table 2 and Fig. 2 on this project's benchmark, as one resumable grid.

    python recipes/reproduce.py --table=1                   # Table 1: every method, both tasks
    python recipes/reproduce.py --table=2 --figure=2        # the ablations and Fig. 2
    python recipes/reproduce.py --table=1,2 --figure=2 --seeds=0,1,2    # the whole grid
    python recipes/reproduce.py --table=1 --methods=swr,finetune_all --tasks=gsc2 --seeds=0
    python recipes/reproduce.py --table=1,2 --report_only --readme=README.md   # README's Table 1

Each cell (task x method or ablation x target cost x seed) trains through
the job of recipes/kws.py (same flags and defaults, except the epochs: the
grid's schedule, GRID_SCHEDULE below) and is written as its own JSON file under
<results_dir>/cells/ with the hash of its settings and of its inputs' contents
(corpus listing, pre-trained file). Run the same command again after a kill:
finished cells are skipped and the cell it was in resumes from its last epoch;
a record of other settings or inputs (or without a hash) is stale: trained
again, and never reported (--report_only reports the cells this command's
flags would compute, and counts the stale records it ignored). The
tables (table1.md/.csv, table2.md/.csv) and Fig. 2 (controllability.png,
policy_map.png, policy_map_equal.png, figure2.md) are rewritten from every
finished cell after each job, so a partial grid already shows its numbers
("-" for a cell not run), with table1_vs_paper.md setting Table 1 beside the
paper's numbers and claims.md checking the paper's claims (seed-paired
differences with 95 % intervals); --readme=README.md also writes that table and
the headline claims into README.md's block between <!-- table1-vs-paper:begin -->
and <!-- table1-vs-paper:end -->.
Res15 needs your own pre-trained --pretrained
(--backbone=res15): the shipped backbone is BC-ResNet-8. Bad flags exit
with status 2 and one line.
"""

import os
import shlex
import sys
import time

if not __package__:  # run as `python recipes/reproduce.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import kws_flags, recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROGRAM = "reproduce.py"

FLAGS = flags.FLAGS
flags.DEFINE_list("table", [], "Tables to run and write: 1 (methods), 2 (ablations), or 1,2.")
flags.DEFINE_list("figure", [], "Figures to run and draw: 2 (controllability and policy maps).")
flags.DEFINE_list("methods", [], "Rows to run (default: every row of the selected tables).")
flags.DEFINE_list("tasks", ["gsc2", "mc_kws"], "Tasks to run: gsc2, mc_kws (paper: both).")
flags.DEFINE_list(
    "seeds",
    ["0", "1", "2", "3", "4"],
    "Seeds to run (paper: a 95 % interval over runs; 5 for the headline rows).",
)
flags.DEFINE_list(
    "target_costs", ["0.1", "0.3", "0.5"], "Target costs of SWR's rows and LoRA's budgets."
)
flags.DEFINE_string("results_dir", "results", "Tables, figures and cells/ (one JSON per cell).")
flags.DEFINE_string("work_dir", "runs/reproduce", "The jobs' checkpoints and task files.")
flags.DEFINE_bool("report_only", False, "Only rewrite the tables and figures from cells/.")
flags.DEFINE_string(
    "readme",
    "",
    "A Markdown file (e.g. README.md) whose block between <!-- table1-vs-paper:begin --> and "
    "<!-- table1-vs-paper:end --> gets Table 1 beside the paper's and the headline claims "
    "(needs --table=1).",
)
kws_flags.define_method_flags()
kws_flags.define_training_flags()
flags.adopt_module_key_flags(kws_flags)

# The grid's schedule, longer than kws.py's quick defaults (BUILD.md, "Reproducing the paper's
# tables", "Schedule"): every method trains GRID_EPOCHS epochs on the target task, where fine-tune
# all's validation accuracy had flattened (epoch 10 of a 15-epoch cosine run on the GSC2 transfer
# task); SWR's policy search (stages 1a and 1b) is its own cost before that.
GRID_EPOCHS = 10
GRID_SCHEDULE = {"reparam_epochs": GRID_EPOCHS, "supernet_epochs": 5, "policy_epochs": 10}
for _name, _value in GRID_SCHEDULE.items():
    FLAGS.set_default(_name, _value)


def check_flags():
    """Every check that needs no data; returns the grid's axes. Raises a one-line error."""
    from swr_keras.kws import reproduce

    if not FLAGS["task"].using_default_value:
        raise ValueError(f"--task is kws.py's; use --tasks. Received: --task={FLAGS.task}")
    if not FLAGS["method"].using_default_value:
        raise ValueError(f"--method is kws.py's; use --methods. Received: --method={FLAGS.method}")
    if FLAGS.unknown_words:
        raise ValueError("--unknown_words is for kws.py --task=folder; the grid's tasks are fixed.")
    tables = _choices("table", FLAGS.table, reproduce.TABLES)
    figures = _choices("figure", FLAGS.figure, reproduce.FIGURES)
    if not tables and not figures:
        raise ValueError("Choose what to reproduce: --table=1, --table=2 and/or --figure=2.")
    tasks = _choices("tasks", FLAGS.tasks, reproduce.PAPER_TASKS)
    if not tasks:
        raise ValueError("--tasks needs at least one of gsc2, mc_kws.")
    seeds = []
    for text in FLAGS.seeds:
        if not text.strip().isdigit():
            raise ValueError(f"--seeds must be integers >= 0. Received: {text!r}")
        seeds.append(int(text))
    if not seeds:
        raise ValueError("--seeds needs at least one seed, e.g. --seeds=0,1,2")
    costs = [kws_flags.parse_target_cost(text) for text in FLAGS.target_costs]
    if not costs or min(costs) <= 0:
        raise ValueError(
            f"--target_costs must be numbers in (0, 1]. Received: {','.join(FLAGS.target_costs)}"
        )
    for name in ("bn_affine", "cost_weighting", "supernet", "supernet_weight", "warm_start"):
        if not FLAGS[name].using_default_value:
            raise ValueError(
                f"--{name} is set by the rows of Table 2 (--table=2 --methods=...); "
                f"drop it. Received: --{name}={FLAGS[name].value}"
            )
    kws_flags.check_training_flags()
    methods = recipe_cli.quiet_import("swr_keras.methods")
    for name in method_names():
        methods.get(name).options(kws_flags.method_options(name))
    rows = list(FLAGS.methods) or None
    axes = dict(
        tables=tables,
        figures=figures,
        rows=rows,
        tasks=tuple(tasks),
        seeds=tuple(dict.fromkeys(seeds)),
        costs=tuple(dict.fromkeys(costs)),
    )
    backbone = reproduce.backbone_tag(FLAGS.backbone, FLAGS.tau)
    cells = reproduce.grid(backbone, **axes)  # checks --methods
    if FLAGS.readme:
        from swr_keras.kws import paper_comparison

        paper_comparison.read_block_file(FLAGS.readme)  # before the grid trains for hours
        if "1" not in tables or not paper_comparison.has_paper_numbers(backbone):
            raise ValueError(
                "--readme writes Table 1 beside the paper's: add --table=1 and use a backbone "
                "the paper reports (bc_resnet with --tau=8, or res15). "
                f"Received: --table={','.join(tables)}, backbone {backbone}"
            )
    recipe_cli.check_writable_dir("--results_dir", FLAGS.results_dir)
    recipe_cli.check_writable_dir("--work_dir", FLAGS.work_dir)
    return backbone, axes, cells


def method_names():
    """The registered methods the grid's rows train."""
    from swr_keras.kws import reproduce

    return tuple(dict.fromkeys(r.method for r in reproduce.all_rows().values() if r.method))


def _choices(flag, values, allowed):
    unknown = [value for value in values if value not in allowed]
    if unknown:
        raise ValueError(
            f"--{flag}={','.join(values)} is unknown. Choose from: {', '.join(allowed)}."
        )
    return tuple(dict.fromkeys(values))


def cell_identity():
    """The `reproduce.CellIdentity` of the cells the flags would compute."""
    from swr_keras.kws import job as job_lib
    from swr_keras.kws import reproduce

    return reproduce.CellIdentity(
        kws_flags.settings("swr"),
        {name: kws_flags.method_options(name) for name in method_names()},
        FLAGS.backbone,
        FLAGS.tau,
        kws_flags.task_options(),
        job_lib.file_sha256(FLAGS.pretrained or recipe_cli.SHIPPED_PRETRAINED),
    )


def main(argv):
    del argv
    start = time.time()
    command = "python recipes/reproduce.py " + shlex.join(sys.argv[1:])
    try:
        backbone, axes, cells = check_flags()
        from swr_keras.kws import reproduce, tables

        path = FLAGS.pretrained or recipe_cli.SHIPPED_PRETRAINED
        # The cells' identity this command expects; the report lists no data, so
        # it takes each task's corpus digest from the records (fresh_records).
        identity = cell_identity()
        corpora = {}  # the listings the run makes

        def write_tables():
            try:
                tables.write_all(
                    FLAGS.results_dir,
                    backbone,
                    axes["tables"],
                    axes["figures"],
                    axes["seeds"],
                    axes["costs"],
                    command,
                    readme=FLAGS.readme,
                    identity=identity,
                    corpora=corpora,
                    list_stale=FLAGS.report_only,
                )
            except ValueError as error:  # e.g. --readme's markers removed while the grid ran
                recipe_cli.fail(PROGRAM, error)

        if FLAGS.report_only:
            write_tables()
            return
        backbones = recipe_cli.quiet_import("swr_keras.kws.backbones")
        from swr_keras.kws import tasks as tasks_lib

        pretrained = backbones.load_pretrained(
            path, FLAGS.backbone, len(tasks_lib.multilingual_class_names()), FLAGS.tau
        )
        print("== data", flush=True)
        source = tasks_lib.resolve_data_dir(FLAGS.data_dir, synthetic_corpus="transfer")
        runner = reproduce.Reproduction(
            FLAGS.results_dir,
            FLAGS.work_dir,
            identity.settings,
            identity.method_options,
            pretrained,
            path,
            FLAGS.backbone,
            FLAGS.tau,
            source,
            task_options=kws_flags.task_options(),
            command=command,
            verbose=recipe_cli.progress_verbosity(),
            validation_curve=FLAGS.validation_curve,
        )
        corpora = runner.corpus_digests  # filled as the run lists each task and seed
    except (ValueError, FileNotFoundError) as error:
        recipe_cli.fail(PROGRAM, error)

    ran = runner.run(cells, after_group=write_tables)
    write_tables()
    print(
        f"== {ran} cells run in {time.time() - start:.0f} s; tables and figures in "
        f"{FLAGS.results_dir}/",
        flush=True,
    )


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
