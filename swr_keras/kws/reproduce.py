"""The grid behind the paper's Table 1, Table 2 and Fig. 2: its cells, run and resumed.

A cell is one (backbone, task, row, target cost, seed): a row is a method of
the registry (Table 1), an ablation of SWR (Table 2: settings of the job, see
`kws.job.Settings`) or the pre-trained multi-lingual model evaluated without
training. Fig. 2's cells are the policy networks of three rows (SWR, w/o
super-net, equal r_l): their actual added ratio at c = 0.1 ... 0.9 and their
gates. Every cell trains through `kws.job.Job`, the code of `recipes/kws.py`,
and its result is written atomically as its own JSON file under
`<results_dir>/cells/` (the job's row, settings, versions, wall time). A cell
whose record exists and carries the expected identity hash is skipped, so a
killed grid run again resumes: finished cells are not redone, and the cell it
was in resumes from the job's last epoch checkpoint.

Cells cannot go stale: each record carries the hash of what its result
depends on (`CellIdentity`: the job's settings for its row, the task options,
backbone, `CELL_VERSION`, and the contents of its inputs: the corpus listing's
digest for its task and seed and the pre-trained file's SHA-256). The harness
computes each cell's expected hash before running; a record with another hash,
or none, is retrained (replaced only when the new record is complete) and is
never reported (`fresh_records`).

A cell never pays for work another cell did: the cells of one row, task and
seed run as one job (stage 1 once, then stage 2 per target cost), the jobs of
one task and seed share a work directory, so an ablation finds the stages it
does not change (e.g. equal r_l finds SWR's super-net) and loads them, and
each task is listed once per seed and process.
"""

import dataclasses
import gc
import hashlib
import json
import os
import platform
import subprocess
import time

import numpy as np

from swr_keras import atomic_io
from swr_keras import methods as methods_lib
from swr_keras.kws import job as job_lib
from swr_keras.kws import report, tasks

TABLES = ("1", "2")
FIGURES = ("2",)
# Each of the paper's tasks and its name in the tables.
TASK_COLUMNS = (("gsc2", "GSC2"), ("mc_kws", "MC-KWS"))
PAPER_TASKS = tuple(task for task, _ in TASK_COLUMNS)
PAPER_COSTS = (0.1, 0.3, 0.5)
MULTILINGUAL = "multilingual"
RESULT, POLICY = "result", "policy"
# Fig. 2 is drawn for GSC2 in the paper.
FIGURE_TASK = "gsc2"
# Part of every cell's identity: bump it when a change of the code alters what
# a finished cell measures (its training, evaluation or accounting), and every
# record computed before is retrained and never reported again.
CELL_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table.

    Attributes:
        name: the row's `--methods` name, unique across the tables.
        label: the row's label in the tables.
        method: the registered method it trains, or `None` for the
            pre-trained model evaluated as it is.
        changes: `(Settings field, value)` pairs: the ablation.
        cost_option: a method option that the target cost sets (LoRA's
            `lora_budget`), for a method that does not take target costs.
    """

    name: str
    label: str
    method: object = None
    changes: tuple = ()
    cost_option: str = ""

    def takes_costs(self):
        if self.method is None:
            return False
        return bool(self.cost_option) or methods_lib.get(self.method).takes_target_costs


# Table 2 (and the two series of Fig. 2a beyond SWR), as the paper lists them.
TABLE2_ROWS = (
    Row("not_staged", "Not staged (co-optimize)", "not_staged"),
    Row("swr", "SWR (two-stage)", "swr"),
    Row("bn_affine", "+ BN-affine", "swr", (("bn_affine", True),)),
    Row("supernet_weight", "+ Super-net weight", "swr", (("supernet_weight", True),)),
    Row("warm_start", "SWR, warm classifier", "swr", (("warm_start", True),)),
    Row("wo_supernet", "w/o super-net", "swr", (("supernet", False),)),
    Row("equal_rl", "equal r_l", "swr", (("cost_weighting", "equal"),)),
    # Beyond the paper: budget gates instead of its threshold (BUILD.md, Controllability).
    Row("swr_budget", "SWR + budget fill", "swr", (("binarization", "budget"),)),
    # Controls without a policy (swr_keras.methods.no_policy): SWR's stage 2 on
    # layers no policy chose. The random row's draw is the cell's seed.
    Row("smallest_first", "Smallest kernels first (no policy)", "smallest_first"),
    Row("random_layers", "Random layers at the same budget (no policy)", "random_layers"),
)
FIGURE2_ROWS = ("swr", "wo_supernet", "equal_rl")
# Table 1's order in the paper; registered methods it does not list follow.
_TABLE1_ORDER = ("finetune_all", "spottune", "adapter", "repnet", "taps", "swr")
_COST_OPTIONS = {"lora": "lora_budget"}


def table1_rows():
    """The multi-lingual model, then every registered method that is not an ablation."""
    ablations = {row.method for row in TABLE2_ROWS} - {"swr"}
    names = [name for name in methods_lib.names() if name not in ablations]
    names.sort(key=lambda n: _TABLE1_ORDER.index(n) if n in _TABLE1_ORDER else len(_TABLE1_ORDER))
    rows = [Row(MULTILINGUAL, "Multi-lingual model", None)]
    for name in names:
        label = methods_lib.get(name).label
        rows.append(Row(name, label, name, cost_option=_COST_OPTIONS.get(name, "")))
    return tuple(rows)


def rows_of(table):
    """The rows of table `"1"` or `"2"`."""
    return table1_rows() if table == "1" else TABLE2_ROWS


def all_rows():
    """`{name: Row}` of every table."""
    return {row.name: row for table in TABLES for row in rows_of(table)}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One result of the grid; `kind` is `"result"` (a table cell) or `"policy"` (Fig. 2)."""

    backbone: str
    task: str
    row: str
    target_cost: object
    seed: int
    kind: str = RESULT

    def file_name(self):
        cost = "" if self.target_cost is None else f"-c{round(100 * self.target_cost):03d}"
        kind = "-policy" if self.kind == POLICY else ""
        return f"{self.backbone}-{self.task}-{self.row}{cost}{kind}-s{self.seed}.json"


def backbone_tag(backbone, tau):
    """`bc_resnet8` or `res15`: the backbone part of a cell's name."""
    return f"bc_resnet{tau:g}" if backbone == "bc_resnet" else backbone


def grid(
    backbone, tables=(), figures=(), rows=None, tasks=PAPER_TASKS, seeds=(0,), costs=PAPER_COSTS
):
    """The cells of `tables` and `figures`, in running order.

    Args:
        backbone: `backbone_tag(...)`.
        tables: of `TABLES`; figures: of `FIGURES`.
        rows: row names to keep (`--methods`); `None` keeps every row.
        tasks, seeds, costs: the grid's other axes; Fig. 2 uses `FIGURE_TASK`
            if it is among `tasks`, else the first task.

    Raises:
        ValueError: a row name that none of the selected tables has.
    """
    selected = {}
    for table in tables:
        for row in rows_of(table):
            selected.setdefault(row.name, row)
    if figures:
        for name in FIGURE2_ROWS:
            selected.setdefault(name, all_rows()[name])
    if rows is not None:
        unknown = sorted(set(rows) - set(selected))
        if unknown:
            raise ValueError(
                f"--methods={','.join(unknown)} is not a row of the selected tables/figures. "
                f"Choose from: {', '.join(selected)}."
            )
    cells = []
    for seed in seeds:
        for task in tasks:
            for name, row in selected.items():
                if rows is not None and name not in rows:
                    continue
                # The policy first: Fig. 2 needs only stage 1.
                figure_task = FIGURE_TASK if FIGURE_TASK in tasks else tasks[0]
                if figures and name in FIGURE2_ROWS and task == figure_task:
                    cells.append(Cell(backbone, task, name, None, seed, POLICY))
                if any(row in rows_of(table) for table in tables):
                    for cost in costs if row.takes_costs() else (None,):
                        cells.append(Cell(backbone, task, name, cost, seed))
    return cells


def versions():
    """The package versions and the source commit a result was computed with."""
    import keras
    import tensorflow as tf

    found = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        # "-dirty": the working tree had changes the commit does not hold.
        found["swr_keras_commit"] = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found["swr_keras_commit"] = "unknown"
    return found


def write_cell(path, record):
    """Writes one finished cell's record atomically (the marker that it is done)."""
    atomic_io.write_text_atomically(
        path, json.dumps(record, indent=1, default=atomic_io.json_default)
    )


def read_cells(cells_dir):
    """Every finished cell's record under `cells_dir`, by file name.

    Raises:
        ValueError: a record is not JSON (e.g. copied in part); one line that
            names the file and the fix.
    """
    records = {}
    if os.path.isdir(cells_dir):
        for name in sorted(os.listdir(cells_dir)):
            if name.endswith(".json"):
                path = os.path.join(cells_dir, name)
                with open(path) as file:
                    try:
                        records[name] = json.load(file)
                    except json.JSONDecodeError as error:
                        # The harness writes records atomically, so this one was
                        # damaged or copied in part after it was written.
                        raise ValueError(
                            f"{path} is not a cell record ({error}); delete it, and the next "
                            "grid run trains that cell again."
                        ) from None
    return records


def identity_hash(material):
    """The SHA-256 (hex) of a cell's identity material, as JSON with sorted keys."""
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


class CellIdentity:
    """What a cell's result depends on; its hash is written into the cell's record.

    A cell's material (`material`): its coordinates, the job's recorded
    settings for its row (`Settings.recorded()`, with the row's ablation
    changes, the method's options and a cost option; the multi-lingual row's
    seed and batch size; without `transfer_job.POLICY_SEARCH_SETTINGS` for a
    method that does not search a policy), the task options, backbone and tau, `CELL_VERSION`
    and `job.CHECKPOINT_VERSION`, and its inputs' contents: the digest of the
    task's corpus listing for the cell's seed (`job.corpus_digest`; the listing
    depends on the seed) and the pre-trained file's SHA-256. Every other
    setting counts, also one a row may not use: a cell is never reported under
    settings it was not computed with.

    Args:
        settings: the base `kws.job.Settings`; each row replaces its method,
            options and ablation settings.
        method_options: `{method: {option: value}}` of the methods' own options.
        backbone, tau: the architecture.
        task_options: `tasks.list_task` options for every task.
        pretrained_sha256: the pre-trained file's SHA-256 (`job.file_sha256`).
    """

    def __init__(self, settings, method_options, backbone, tau, task_options, pretrained_sha256):
        self.settings = settings
        self.method_options = method_options
        self.backbone = backbone
        self.tau = tau
        self.task_options = dict(task_options or {})
        self.pretrained_sha256 = pretrained_sha256

    def job_settings(self, row, cost):
        """The job's `Settings` for `row` (its cost option set to `cost`)."""
        options = dict(self.method_options.get(row.method, {}))
        if row.cost_option:
            options[row.cost_option] = float(cost)
        return dataclasses.replace(
            self.settings, method=row.method, options=options, **dict(row.changes)
        )

    def material(self, cell, corpus_digest):
        """The cell's identity material, as JSON values (as its record holds it).

        Raises:
            KeyError: the cell's row is in no table.
        """
        row = all_rows()[cell.row]
        if row.method is None:
            settings = {"seed": cell.seed, "batch_size": self.settings.batch_size}
        else:
            cost = cell.target_cost if row.cost_option else None
            settings = dataclasses.replace(self.job_settings(row, cost), seed=cell.seed)
            settings = settings.recorded()
            if not methods_lib.get(row.method).searches_policy:
                # Settings the method never reads: a longer policy stage does
                # not make a baseline's cells stale.
                for name in job_lib.POLICY_SEARCH_SETTINGS:
                    settings.pop(name, None)
        material = {
            "cell": dataclasses.asdict(cell),
            "settings": settings,
            "task_options": self.task_options,
            "backbone": self.backbone,
            "tau": self.tau,
            "cell_version": CELL_VERSION,
            "checkpoint_version": job_lib.CHECKPOINT_VERSION,
            "inputs": {"corpus": corpus_digest, "pretrained": self.pretrained_sha256},
        }
        return json.loads(json.dumps(material, default=str))


def stale_reason(record, expected=None):
    """Why a cell record must not be reported, or `None` if it may be.

    Args:
        record: a cell record (`read_cells`).
        expected: the `CellIdentity.material` the caller expects of the cell;
            `None` checks the record against itself only.
    """
    identity = record.get("identity") or {}
    material = identity.get("material")
    if "hash" not in identity or not isinstance(material, dict):
        return "no identity hash (computed before cells were identified by settings and inputs)"
    if identity_hash(material) != identity["hash"]:
        return "its identity hash does not match its own recorded settings and inputs"
    if material.get("cell_version") != CELL_VERSION:
        return f"computed by cell version {material.get('cell_version')}, now {CELL_VERSION}"
    if expected is not None and identity["hash"] != identity_hash(expected):
        return "computed with other " + "; ".join(_differences(material, expected))
    return None


def _differences(old, new, prefix=""):
    """`["settings.reparam_epochs 3 -> 10", ...]`: where two materials differ."""
    found = []
    for key in sorted(set(old) | set(new), key=str):
        mine, theirs = old.get(key), new.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            found += _differences(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            found.append(f"{prefix}{key} {_short(mine)} -> {_short(theirs)}")
    return found


def _short(value):
    text = json.dumps(value, default=str)
    return text[:13] + "..." if len(text) > 16 else text


def fresh_records(records, identity=None, corpora=None):
    """Splits cell records into those a report may show and the stale ones.

    A record is stale if it has no identity hash, if the hash is not that of
    its own material, if its `CELL_VERSION` is not the code's, and, with
    `identity`, if it is not the hash this command expects of the cell. The
    expected hash needs the corpus digest of the cell's task and seed: from
    `corpora` where the caller listed the data, otherwise (`--report_only`
    lists no data, which may not even be at hand) the records' own. The
    records of one backbone, task and seed must then agree on their inputs
    (corpus digest and pre-trained SHA-256); where they do not, those of the
    newest record (`finished`) are reported, the others counted as stale, and
    a note names the disagreement.

    Args:
        records: `{file name: record}` (`read_cells`).
        identity: the reporting command's `CellIdentity`, or `None`.
        corpora: `{(task, seed): corpus digest}` the caller listed.

    Returns:
        `(fresh, stale, notes)`: `{file name: record}` to report,
        `[(file name, why)]` ignored, and one line per disagreement.
    """
    corpora = dict(corpora or {})
    stale, candidates = [], {}
    for name, record in records.items():
        why = stale_reason(record)
        if why:
            stale.append((name, why))
        else:
            candidates[name] = record
    groups = {}
    for name, record in candidates.items():
        cell = record["cell"]
        groups.setdefault((cell["backbone"], cell["task"], cell["seed"]), []).append(name)
    chosen, notes = {}, []
    for (backbone, task, seed), names in groups.items():
        newest = max(names, key=lambda n: (candidates[n].get("finished") or "", n))
        inputs = dict(candidates[newest]["identity"]["material"]["inputs"])
        if (task, seed) in corpora:
            inputs["corpus"] = corpora[(task, seed)]
        chosen[(backbone, task, seed)] = inputs
        seen = {_inputs_text(candidates[n]["identity"]["material"]["inputs"]) for n in names}
        if len(seen) > 1 and (task, seed) not in corpora:
            notes.append(
                f"{backbone} {task} seed {seed}: the cell records were computed on "
                f"{len(seen)} different inputs ({'; '.join(sorted(seen))}); reported: those "
                f"of the newest record ({_inputs_text(inputs)})."
            )
    fresh = {}
    for name, record in candidates.items():
        cell = record["cell"]
        inputs = chosen[(cell["backbone"], cell["task"], cell["seed"])]
        if identity is not None:
            try:
                expected = identity.material(Cell(**cell), inputs["corpus"])
            except KeyError:
                stale.append((name, f"its row {cell['row']!r} is in no table"))
                continue
            why = stale_reason(record, expected)
        elif record["identity"]["material"]["inputs"] != inputs:
            why = f"computed on other inputs than its task's ({_inputs_text(inputs)})"
        else:
            why = None
        if why:
            stale.append((name, why))
        else:
            fresh[name] = record
    return fresh, sorted(stale), notes


def _inputs_text(inputs):
    return (
        f"corpus {str(inputs.get('corpus'))[:12]}, pre-trained {str(inputs.get('pretrained'))[:12]}"
    )


class Reproduction:
    """Runs the cells of a grid through `kws.job.Job`, skipping those already done.

    Args:
        results_dir: cells go to `<results_dir>/cells/`.
        work_dir: the jobs' checkpoints, one folder per backbone, task and seed.
        settings: the base `kws.job.Settings` (epochs, learning rates, ...);
            each row replaces its method, options and ablation settings.
        method_options: `{method: {option: value}}` of the methods' own options.
        pretrained: the pre-trained multi-lingual task model.
        pretrained_path: its file (its SHA-256 is part of the cells' and the
            jobs' identity).
        backbone, tau: its architecture.
        source: the `tasks.DataSource` of the tasks.
        task_options: `tasks.list_task` options for every task.
        command: the command line, recorded with every cell.
        verbose: Keras `fit` verbosity.
        validation_curve: the jobs' `validation_curve` (TensorBoard only).
    """

    def __init__(
        self,
        results_dir,
        work_dir,
        settings,
        method_options,
        pretrained,
        pretrained_path,
        backbone,
        tau,
        source,
        task_options=None,
        command="",
        verbose=2,
        validation_curve=False,
    ):
        self.cells_dir = os.path.join(results_dir, "cells")
        self.work_dir = work_dir
        self.settings = settings
        self.method_options = method_options
        self.pretrained = pretrained
        self.pretrained_path = pretrained_path
        self.backbone = backbone
        self.tau = tau
        self.tag = backbone_tag(backbone, tau)
        self.source = source
        self.task_options = dict(task_options or {})
        self.command = command
        self.verbose = verbose
        self.validation_curve = validation_curve
        self.versions = versions()
        self.identity = CellIdentity(
            settings,
            method_options,
            backbone,
            tau,
            self.task_options,
            job_lib.file_sha256(pretrained_path),
        )
        self._corpora = {}
        self.corpus_digests = {}  # {(task, seed): digest} of the listings made

    def cell_path(self, cell):
        return os.path.join(self.cells_dir, cell.file_name())

    def expected(self, cell):
        """The identity material `cell`'s record must carry (lists its task's corpus)."""
        return self.identity.material(cell, self.corpus_digest(cell.task, cell.seed))

    def pending(self, cells):
        """The cells without a record of their expected identity; prints why for each stale one."""
        records = read_cells(self.cells_dir)
        found = []
        for cell in cells:
            record = records.get(cell.file_name())
            if record is None:
                found.append(cell)
                continue
            why = stale_reason(record, self.expected(cell))
            if why:
                print(f"   stale cell {cell.file_name()}: {why}; training it again", flush=True)
                found.append(cell)
        return found

    def corpus_digest(self, task, seed):
        """`job.corpus_digest` of the task's listing for `seed`, once per process."""
        if (task, seed) not in self.corpus_digests:
            self.corpus_digests[(task, seed)] = job_lib.corpus_digest(self.corpus(task, seed))
        return self.corpus_digests[(task, seed)]

    def corpus(self, task, seed):
        """The task's listing for `seed`, listed once per process."""
        if (task, seed) not in self._corpora:
            self._corpora[(task, seed)] = tasks.list_task(
                task, self.source, seed=seed, **self.task_options
            )
        return self._corpora[(task, seed)]

    def run(self, cells, after_group=None):
        """Runs every pending cell of `cells`; returns how many it ran.

        `after_group()` is called after each job (e.g. to rewrite the tables).
        """
        pending = self.pending(cells)
        print(
            f"== grid: {len(cells)} cells, {len(cells) - len(pending)} finished earlier, "
            f"{len(pending)} to run",
            flush=True,
        )
        groups = {}
        for cell in pending:
            row = all_rows()[cell.row]
            variant = cell.target_cost if row.cost_option else None
            groups.setdefault((cell.task, cell.seed, cell.row, variant), []).append(cell)
        for (task, seed, name, _), group in groups.items():
            print(f"== {self.tag} {task} seed {seed}: {name}", flush=True)
            if name == MULTILINGUAL:
                self._run_multilingual(group)
            else:
                self._run_job(all_rows()[name], group)
            gc.collect()
            if after_group is not None:
                after_group()
        return len(pending)

    # -- one job -------------------------------------------------------------------
    def _settings(self, row, cost):
        return self.identity.job_settings(row, cost)

    def _run_job(self, row, group):
        task, seed = group[0].task, group[0].seed
        results = [cell for cell in group if cell.kind == RESULT]
        option_cost = results[0].target_cost if row.cost_option and results else None
        settings = self._settings(row, option_cost)
        job = job_lib.Job(
            self.corpus(task, seed),
            self.pretrained,
            dataclasses.replace(settings, seed=seed),
            os.path.join(self.work_dir, self.tag, task, f"seed{seed}"),
            # With the cells' version: a cell retrained for a new CELL_VERSION
            # must not load the checkpoints that computed its stale record.
            (
                *job_lib.job_identity(
                    task, self.backbone, self.tau, self.pretrained_path, None, self.task_options
                ),
                f"cell_version={CELL_VERSION}",
            ),
            verbose=self.verbose,
            validation_curve=self.validation_curve,
        )
        takes_costs = job.method.takes_target_costs
        costs = [cell.target_cost for cell in results] if takes_costs else []
        job.check_resumable(costs)
        start = time.time()
        job.train_shared()
        has_shared = bool(job.method.shared_stages(job.settings, job.options))
        shared_seconds = time.time() - start if has_shared else 0.0
        for cell in group:
            start = time.time()
            if cell.kind == POLICY:
                result = self._policy(job)
            else:
                result, _ = job.train_variant(cell.target_cost if takes_costs else None)
            self._write(cell, row, result, job.settings_dict(), time.time() - start, shared_seconds)
            shared_seconds = 0.0  # counted once, with the group's first cell

    @staticmethod
    def _policy(job):
        costs = sorted(set(job.controllability_costs()) | set(PAPER_COSTS))
        decided = job.controllability(costs)
        layers = job.policy_layers()
        return {
            "layers": [layer.name for layer in layers],
            "kinds": [report.layer_kind(layer) for layer in layers],
            "controllability": [
                {"target_cost": c, "added_ratio": float(ratio), "gates": [int(g) for g in gates]}
                for c, (gates, ratio) in decided.items()
            ],
        }

    # -- the multi-lingual model ------------------------------------------------------
    def _run_multilingual(self, group):
        for cell in group:
            start = time.time()
            result = multilingual_accuracies(self.pretrained, self.corpus(cell.task, cell.seed))
            result.update(param_ratio_two_tasks=1.0, mult_ratio=1.0)
            settings = {"seed": cell.seed, "batch_size": self.settings.batch_size}
            self._write(cell, all_rows()[MULTILINGUAL], result, settings, time.time() - start, 0.0)

    def _write(self, cell, row, result, settings, seconds, shared_seconds):
        material = self.expected(cell)
        record = {
            "cell": dataclasses.asdict(cell),
            "identity": {"hash": identity_hash(material), "material": material},
            "label": row.label,
            "method": row.method,
            "result": result,
            "settings": settings,
            "seconds": round(seconds, 1),
            "shared_seconds": round(shared_seconds, 1),
            "versions": self.versions,
            "command": self.command,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_cell(self.cell_path(cell), record)
        print(f"   cell written: {cell.file_name()} ({seconds:.0f} s)", flush=True)


def multilingual_accuracies(pretrained, corpus, class_names=None):
    """Test and validation accuracy of the pre-trained multi-lingual model on a task, untrained.

    The paper's "Multi-lingual model" row: the model pre-trained on the 22
    classes answers the task's 12 (each task class is one of its classes,
    `_silence_` and `_unknown_` included) by the largest of its outputs for
    those 12 classes.

    Raises:
        ValueError: a task class the pre-trained model does not know.
    """
    columns = task_columns(corpus.class_names, class_names or tasks.multilingual_class_names())
    accuracies = {}
    for name, split in (("test", "test"), ("validation", "valid")):
        hits = []
        for x, y in tasks.evaluation_dataset(corpus, split):
            scores = np.asarray(pretrained.predict_on_batch(x))[:, columns]
            hits.append(np.argmax(scores, axis=-1) == np.asarray(y))
        accuracies[f"{name}_accuracy"] = float(np.mean(np.concatenate(hits)))
    return accuracies


def task_columns(task_class_names, class_names):
    """The index among `class_names` (the model's outputs) of each task class, in task order.

    Raises:
        ValueError: a task class the model does not know.
    """
    class_names = list(class_names)
    missing = [name for name in task_class_names if name not in class_names]
    if missing:
        raise ValueError(
            f"The multi-lingual model does not know the task's classes {missing}. "
            f"Its classes: {class_names}"
        )
    return np.array([class_names.index(name) for name in task_class_names])
