"""Adding the results of a `kws.py` run (its `metrics.json` and stored task files) to a bank.

`recipes/kws.py --bank=DIR` and `recipes/bank.py add --run=DIR` both go
through `add_run`, so a task enters a bank one way: the `StoredTask` file the
job wrote for it (`runs/.../task_states/*.npz`), its classes, settings,
accuracies and accounting, and the backbone the run was trained from.
"""

import json
import os
import zipfile

from swr_keras.bank.store import BankError, TaskBank, check_task_name, weights_sha256

_METRIC_KEYS = (
    "test_accuracy",
    "validation_accuracy",
    "task_parameters",
    "task_statistics",
    "task_bytes",
    "backbone_parameters",
    "added_ratio",
    "reparametrised_layers",
    "num_layers",
    "mult_ratio",
)


def default_task_name(task, method, target_cost):
    """`<task>_<method>[_c<100 c>]`, e.g. `gsc2_swr_c050`: the name `kws.py` exports under."""
    name = f"{task}_{method}"
    if target_cost is not None:
        name += f"_c{round(100 * target_cost):03d}"
    return name


def read_run(run_dir):
    """A run's `metrics.json`; a one-line BankError if it is missing or not a finished run."""
    path = os.path.join(run_dir, "metrics.json")
    try:
        with open(path, encoding="utf-8") as file:
            metrics = json.load(file)
    except FileNotFoundError:
        raise BankError(
            f"{path} does not exist. Pass the --output_dir of a finished kws.py run."
        ) from None
    except ValueError as error:
        raise BankError(f"{path} is not valid JSON ({error}).") from None
    if "clip_samples" not in metrics or not metrics.get("results"):
        raise BankError(
            f"{path} has no results or no clip length (written by an older kws.py). Run "
            "kws.py again with the same flags: it reuses its checkpoints."
        )
    return metrics


def run_task_names(metrics, name=None):
    """`[(task name, result row)]` of a run; `name` renames its one result."""
    rows = metrics["results"]
    if name is not None:
        if len(rows) != 1:
            raise BankError(
                f"--name names one task, but the run has {len(rows)} results (one per target "
                "cost). Leave --name out to use <task>_<method>_c<cost>."
            )
        return [(check_task_name(name), rows[0])]
    return [
        (
            check_task_name(default_task_name(metrics["task"], row["method"], row["target_cost"])),
            row,
        )
        for row in rows
    ]


def check_can_add(bank_dir, names, backbone_model):
    """Before a run trains: refuses names the bank has and a backbone other than the bank's."""
    bank = TaskBank(bank_dir)
    taken = sorted(set(names) & set(bank.names()))
    if taken:
        raise BankError(
            f"The bank {bank_dir} already has task(s) {', '.join(taken)}. Remove them first "
            "or use another --bank."
        )
    if bank.exists() and bank.backbone_info()["weights_sha256"] != weights_sha256(backbone_model):
        raise BankError(
            f"The bank {bank_dir} holds another backbone than --pretrained. Use a bank of this "
            "backbone."
        )


def add_run(bank_dir, run_dir, backbone_path, *, name=None, backbone_model=None):
    """Adds every result of a finished `kws.py` run to the bank at `bank_dir`.

    Args:
        bank_dir: the bank (created on the first task).
        run_dir: the run's `--output_dir` (metrics.json, task_states/).
        backbone_path: the `.keras` file the run was trained from.
        name: the task's name if the run has one result; default
            `default_task_name`.
        backbone_model: that model, loaded.

    Returns:
        The new `TaskEntry`s. Every name is checked before any is added.
    """
    import keras

    from swr_keras.methods import StoredTask

    metrics = read_run(run_dir)
    named = run_task_names(metrics, name)
    if backbone_model is None:
        backbone_model = keras.saving.load_model(backbone_path, compile=False)
    check_can_add(bank_dir, [n for n, _ in named], backbone_model)
    bank = TaskBank(bank_dir)
    entries = []
    for task_name, row in named:
        path = row["task_state"]
        if not os.path.isabs(path) and not os.path.exists(path):
            path = os.path.join(run_dir, "task_states", os.path.basename(path))
        if not os.path.isfile(path):
            raise BankError(f"The run's task file {path} does not exist. Run kws.py again.")
        try:
            stored = StoredTask.load(path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise BankError(f"{path} is not a readable stored task ({error}).") from None
        entries.append(
            bank.add(
                task_name,
                stored,
                method=row["method"],
                class_names=metrics["class_names"],
                backbone_path=backbone_path,
                backbone_model=backbone_model,
                target_cost=row["target_cost"],
                clip_samples=metrics["clip_samples"],
                sample_rate=metrics["sample_rate"],
                settings=metrics.get("settings", {}),
                metrics={k: row[k] for k in _METRIC_KEYS if k in row},
                data=dict(metrics.get("data") or {}, seed=metrics["settings"]["seed"]),
            )
        )
    return entries
