r"""A bank of keyword-spotting tasks on one backbone, and its TF Serving exports.

    python recipes/bank.py add --bank=banks/kws --run=runs/kws      # a kws.py run's results
    python recipes/bank.py list --bank=banks/kws
    python recipes/bank.py verify --bank=banks/kws            # sizes and sha256 of every file
    python recipes/bank.py remove --bank=banks/kws gsc2_swr_c050
    python recipes/bank.py export --bank=banks/kws --export_dir=serving
    python recipes/bank.py export --bank=banks/kws --export_dir=serving --label=canary
    python recipes/bank.py export --bank=banks/kws --export_dir=serving \
        --set_label=gsc2_swr_c050:stable=2                            # roll forward or back

`export` writes, each as a new version `<export_dir>/<model>/<version>/`:
`multitask`, one SavedModel with the backbone once and a signature per task
(`<task>`, `<task>_log_mel`, and `mixed` with a task id per example); each
task's merged model under the task's name; float and int8 TFLite files per
task in `<export_dir>/tflite/`; and `<export_dir>/models.config` for
`tensorflow_model_server --model_config_file`, the new versions labelled
`--label`. `--set_label` only rewrites models.config. Bad input exits with
status 2 and one line.
"""

import os
import sys

if not __package__:  # run as `python recipes/bank.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROGRAM = "bank.py"
COMMANDS = ("add", "list", "remove", "export", "verify")
MULTITASK = "multitask"

FLAGS = flags.FLAGS
flags.DEFINE_string("bank", "", "The bank's directory (created by the first add).")
flags.DEFINE_string("run", "", "add: the --output_dir of a finished kws.py run.")
flags.DEFINE_string(
    "pretrained", "", "add: the backbone the run was trained from; empty: the shipped model."
)
flags.DEFINE_string("name", "", "add: the task's name; default <task>_<method>_c<cost>.")
flags.DEFINE_string("export_dir", "", "export: where the models and models.config go.")
flags.DEFINE_list("tasks", [], "export: the tasks to export (default: all), in task_id order.")
flags.DEFINE_enum(
    "kernels",
    "delta",
    ["delta", "merged"],
    "export: the multi-task model computes a gated layer's kernel as w0 + delta per request "
    "(delta) or stores the merged kernel (merged; same bytes).",
)
flags.DEFINE_string("label", "stable", "export: the version label the new versions get.")
flags.DEFINE_list(
    "set_label",
    [],
    "export: MODEL:LABEL=VERSION,...: only point labels at exported versions in models.config.",
)
flags.DEFINE_string(
    "serving_root",
    "",
    "export: the export_dir as the server sees it (e.g. /models in a container); "
    "default: its absolute path here.",
)
flags.DEFINE_bool("tflite", True, "export: float and int8 TFLite files per task.")
flags.DEFINE_bool("mixed", True, "export: the multi-task model's per-example task_id signature.")


def _bank():
    if not FLAGS.bank:
        raise ValueError("--bank=DIR is required: the bank's directory.")
    from swr_keras import bank

    return bank.TaskBank(FLAGS.bank)


def add(names):
    if names:
        raise ValueError(f"add takes no names; use --name. Received: {' '.join(names)}")
    if not FLAGS.run:
        raise ValueError("add needs --run=DIR, the --output_dir of a finished kws.py run.")
    from swr_keras import bank

    backbone_path = FLAGS.pretrained or recipe_cli.SHIPPED_PRETRAINED
    if not os.path.isfile(backbone_path):
        raise FileNotFoundError(f"--pretrained={backbone_path} does not exist.")
    for entry in bank.add_run(FLAGS.bank, FLAGS.run, backbone_path, name=FLAGS.name or None):
        print(f"added {entry.name} ({entry.method}, {entry.files['task.npz']['bytes']:,} bytes)")


def list_tasks(names):
    from swr_keras.bank import summary

    del names
    print(summary.format_summary(summary.summarize(_bank())))


def remove(names):
    if not names:
        raise ValueError("remove needs the names of the tasks to remove, e.g. remove gsc2_swr_c050")
    bank = _bank()
    for name in names:
        bank.entry(name)  # all names checked before any is removed
    for name in names:
        bank.remove(name)
        print(f"removed {name}")


def verify(names):
    del names
    bank = _bank()
    leftovers = bank.verify()
    print(f"{bank.root}: backbone and {len(bank.names())} task(s) verified (size and sha256)")
    for path in leftovers:
        print(f"   not part of the bank (left by a killed write; may be deleted): {path}")


def export(names):
    del names
    from swr_keras import bank as bank_lib

    if not FLAGS.export_dir:
        raise ValueError("export needs --export_dir=DIR, where the models go.")
    bank = _bank()
    recipe_cli.check_writable_dir("--export_dir", FLAGS.export_dir)
    config_path = os.path.join(FLAGS.export_dir, bank_lib.serving_config.CONFIG_FILE)
    models = _served_models(config_path)
    if FLAGS.set_label:
        for text in FLAGS.set_label:
            models = bank_lib.relabel(models, *_parse_label(text))
        _write_config(config_path, models)
        return
    names = FLAGS.tasks or bank.names()
    for name in names:
        bank.entry(name)
    backbone = bank.load_backbone()
    result = bank_lib.export_multitask(
        bank,
        os.path.join(FLAGS.export_dir, MULTITASK),
        names=names,
        kernels=FLAGS.kernels,
        mixed=FLAGS.mixed,
    )
    versions = {MULTITASK: int(os.path.basename(result["path"]))}
    shared = result["backbone_bytes"]
    print(f"{MULTITASK}: {result['path']} ({_bytes(result['path']):,} bytes on disk; variables: ")
    print(f"   backbone {shared:,} bytes once, tasks {result['task_bytes']})")
    print(f"   signatures: {', '.join(result['signatures'])}")
    for name in names:
        path = bank_lib.export_task_serving(
            bank, name, os.path.join(FLAGS.export_dir, name), backbone=backbone
        )
        versions[name] = int(os.path.basename(path))
        print(f"{name}: {path} ({_bytes(path):,} bytes on disk)")
        if FLAGS.tflite:
            files = bank_lib.export_task_tflite(
                bank,
                name,
                os.path.join(FLAGS.export_dir, "tflite"),
                _calibration(bank.entry(name)),
                backbone=backbone,
            )
            print(f"   TFLite float {files['float_bytes']:,} bytes, int8 {files['int8_bytes']:,}")
    by_name = {m.name: m for m in models}
    for name, version in versions.items():
        model = by_name.get(name) or bank_lib.ServedModel(
            name, os.path.join(FLAGS.export_dir, name)
        )
        by_name[name] = bank_lib.ServedModel(
            name, model.base_path, {**model.labels, FLAGS.label: version}
        )
    _write_config(config_path, list(by_name.values()))


def _bytes(directory):
    return sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, files in os.walk(directory)
        for f in files
    )


def _served_models(config_path):
    from swr_keras import bank as bank_lib

    if not os.path.exists(config_path):
        return []
    return bank_lib.read_models_config(config_path, export_dir=FLAGS.export_dir)


def _parse_label(text):
    model, _, rest = text.partition(":")
    label, _, version = rest.partition("=")
    if not (model and label and version.isdigit()):
        raise ValueError(
            f"--set_label takes MODEL:LABEL=VERSION, e.g. multitask:stable=2. Received: {text}"
        )
    return model, label, int(version)


def _write_config(path, models):
    from swr_keras import bank as bank_lib

    bank_lib.write_models_config(path, models, serving_root=FLAGS.serving_root or None)
    print(f"{path}:")
    for model in models:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(model.labels.items()))
        print(f"   {model.name}: {labels}")


def _calibration(entry):
    """The int8 calibration examples `kws.py` used for the task, from its recorded data."""
    from swr_keras.kws import run_report, tasks

    data = entry.data
    if not data.get("task"):
        raise ValueError(
            f"Task {entry.name!r} records no data to calibrate int8 TFLite with. Pass --notflite."
        )
    source = tasks.resolve_data_dir(
        data.get("data_dir", ""), synthetic_corpus="transfer", task=data["task"]
    )
    options = dict(data.get("task_options") or {})
    if "unknown_words" in options:
        options["unknown_words"] = tuple(options["unknown_words"])
    corpus = tasks.list_task(data["task"], source, seed=data["seed"], **options)
    return run_report.representative_inputs(corpus, data["seed"], entry.settings["batch_size"])


def main(argv):
    commands = {
        "add": add,
        "list": list_tasks,
        "remove": remove,
        "export": export,
        "verify": verify,
    }
    try:
        if len(argv) < 2 or argv[1] not in commands:
            raise ValueError(
                f"Name a command: {', '.join(COMMANDS)}. Received: {' '.join(argv[1:]) or 'none'}"
            )
        recipe_cli.quiet_import("swr_keras.bank")
        commands[argv[1]](argv[2:])
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        recipe_cli.fail(PROGRAM, error)


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
