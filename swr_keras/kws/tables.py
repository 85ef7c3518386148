"""The paper's Table 1, Table 2 and Fig. 2 from the grid's finished cells.

Pure reporting, no training: reads the cell records `kws.reproduce` writes
and renders each table as Markdown and CSV, each accuracy as "mean (95 % CI
half-width)" in percent over the seeds that finished (Student's t,
`report.confidence_interval_95`), a cell not run as "-", and Fig. 2 as the
controllability plot (three series on one axes) and the two policy maps.
Every file is written atomically; the tables say which command, commits and
package versions computed their cells. Only fresh records are reported
(`kws.reproduce.fresh_records`: the identity hash a record carries must be the
one the reporting command expects of its cell); each file says how many
stale records it ignored.
"""

import csv
import datetime
import io
import os

import numpy as np

from swr_keras import atomic_io
from swr_keras import methods as methods_lib
from swr_keras.kws import claims, paper_comparison, report
from swr_keras.kws import reproduce as grid_lib

MISSING = "-"
TASK_COLUMNS = grid_lib.TASK_COLUMNS
CSV_FIELDS = (
    "table",
    "row",
    "label",
    "backbone",
    "task",
    "target_cost",
    "seeds",
    "accuracy_mean",
    "accuracy_ci95",
    "validation_accuracy_mean",
    "validation_accuracy_ci95",
    "param_ratio",
    "mult_ratio",
    "added_ratio",
    "seconds_mean",
)
VS_PAPER_EXPLANATION = (
    "Top-1 test accuracy (%) after transfer; ours: mean (95 % CI half-width) over the n seeds "
    "finished per task (Student's t), #Param. and #Mult. as in table1.md; the paper's: its "
    "Table 1 as printed; - = not run, or a row the paper does not report."
)
FIGURE2_LABELS = {"swr": "SWR", "wo_supernet": "w/o super-net", "equal_rl": "equal r_l"}


class Cells:
    """Finished cell records, looked up by their grid coordinates.

    Args:
        records: `{file name: record}` to report.
        stale: `[(file name, why)]` of the records left out as stale.
        notes: lines on the records' inputs (`reproduce.fresh_records`).
    """

    def __init__(self, records, stale=(), notes=()):
        self.stale = list(stale)
        self.notes = list(notes)
        self._by_key = {}
        for record in records.values():
            cell = record["cell"]
            key = (cell["backbone"], cell["task"], cell["row"], _cost(cell["target_cost"]))
            self._by_key.setdefault((*key, cell["kind"]), {})[cell["seed"]] = record
        self.records = list(records.values())

    def results(self, backbone, task, row, cost, seeds):
        """The records of one table cell, one per finished seed of `seeds`."""
        found = self._by_key.get((backbone, task, row, _cost(cost), grid_lib.RESULT), {})
        return [found[seed] for seed in seeds if seed in found]

    def policies(self, backbone, task, row, seeds):
        found = self._by_key.get((backbone, task, row, None, grid_lib.POLICY), {})
        return [found[seed] for seed in seeds if seed in found]


def _cost(cost):
    return None if cost is None else round(float(cost), 4)


def accuracy_cell(values, seeds_expected, scale=100.0, digits=1):
    """`"mean (half-width)"` over seeds, of fractions in percent by default; `"-"` for none.

    The half-width is the 95 % interval's (Student's t). A cell with fewer
    seeds than expected says how many it has: `"89.2 (4.3; n=2)"`. One seed
    has no interval: `"89.2"`, or `"89.2 (n=1)"` where more were expected.
    """
    if not len(values):
        return MISSING
    mean, half = report.confidence_interval_95(values)
    count = f"n={len(values)}" if len(values) < seeds_expected else ""
    if len(values) == 1:
        return f"{scale * mean:.{digits}f}" + (f" ({count})" if count else "")
    count = f"; {count}" if count else ""
    return f"{scale * mean:.{digits}f} ({scale * half:.{digits}f}{count})"


def _mean(records, key, scale=1.0):
    values = [record["result"][key] for record in records if record["result"].get(key) is not None]
    return None if not values else scale * float(np.mean(values))


def _ratio(value):
    return MISSING if value is None else f"{value:.2f}x"


def _seconds(records):
    return MISSING if not records else f"{np.mean([r['seconds'] for r in records]):.0f}"


def _row_label(row, cost):
    return row.label if cost is None else f"{row.label}, c={cost:g}"


def _lines(cells, table, backbone, seeds, costs):
    """`[(row, cost, {task: records})]` of one table, every row listed, run or not."""
    lines = []
    for row in grid_lib.rows_of(table):
        for cost in costs if row.takes_costs() else (None,):
            found = {
                task: cells.results(backbone, task, row.name, cost, seeds)
                for task, _ in TASK_COLUMNS
            }
            lines.append((row, cost, found))
    return lines


def table1_markdown(cells, backbone, seeds, costs, header):
    """Table 1: the paper's columns (GSC2, MC-KWS, #Param., #Mult.) plus time per cell."""
    out = [*header, "", "| Method | Backbone | GSC2 | MC-KWS | #Param. | #Mult. | time/cell (s) |"]
    out.append("|---|---|---|---|---|---|---|")
    for row, cost, found in _lines(cells, "1", backbone, seeds, costs):
        both = found["gsc2"] + found["mc_kws"]
        accuracies = [
            accuracy_cell([r["result"]["test_accuracy"] for r in found[task]], len(seeds))
            for task, _ in TASK_COLUMNS
        ]
        out.append(
            f"| {_row_label(row, cost)} | {_backbone_name(backbone)} | {' | '.join(accuracies)} "
            f"| {' | '.join(_cost_columns(found))} | {_seconds(both)} |"
        )
    return "\n".join(out) + "\n"


def training_conditions_markdown(cells, backbone):
    """The "Training conditions" list under Table 1: each method's optimiser, schedule, source.

    One item per Table 1 row that trains (`Method.training_conditions` of the
    settings its first finished cell of `backbone` recorded), with every way
    it departs from its official code or the paper; a row without a finished
    cell gives its source and deviations only.
    """
    out = [
        "Training conditions (every method trains the same epochs on the target task; each "
        "follows its official code or the paper except where a deviation is listed):",
        "",
    ]
    for row in grid_lib.table1_rows():
        if row.method is None:
            continue
        method = methods_lib.get(row.method)
        found = [
            r["settings"]
            for r in cells.records
            if r["cell"]["row"] == row.name
            and r["cell"]["backbone"] == backbone
            and r.get("settings")
        ]
        if found:
            c = method.training_conditions(found[0])
            rate = MISSING if c["learning_rate"] is None else f"{c['learning_rate']:g}"
            trained = (
                f"{c['optimizer']}, lr {rate}, {c['schedule']}; {c['epochs']} epochs on the "
                "target task"
            )
        else:
            c = {"source": method.reference, "deviations": method.deviations}
            trained = "not run"
        deviations = "; ".join(c["deviations"]) or "none"
        out.append(
            f"- **{row.label}**: {trained}. Source: {c['source']}. Deviations: {deviations}."
        )
    return "\n".join(out) + "\n"


def _cost_columns(found):
    """#Param. and #Mult. of one Table 1 row: means over both tasks' cells."""
    both = found["gsc2"] + found["mc_kws"]
    return _ratio(_mean(both, "param_ratio_two_tasks")), _ratio(_mean(both, "mult_ratio"))


def table1_vs_paper_markdown(cells, backbone, seeds, costs):
    """Table 1's rows, ours beside the paper's numbers (`paper_comparison.PAPER_TABLE1`).

    Ours are "mean (95 % CI half-width)" over the `n` seeds finished per task
    (one seed: half-width 0), #Param. and #Mult. as in `table1_markdown`; "-"
    for a cell not run and for a row or target cost the paper does not report.
    """
    out = [
        "| Method | n (GSC2/MC-KWS) | GSC2 ours | GSC2 paper | MC-KWS ours | MC-KWS paper "
        "| #Param. ours | #Param. paper | #Mult. ours | #Mult. paper |",
        "|---" * 10 + "|",
    ]
    for row, cost, found in _lines(cells, "1", backbone, seeds, costs):
        counts = [len(found[task]) for task, _ in TASK_COLUMNS]
        ours = [
            accuracy_cell([r["result"]["test_accuracy"] for r in found[task]], count)
            for (task, _), count in zip(TASK_COLUMNS, counts)
        ]
        ours += _cost_columns(found)
        paper = paper_comparison.paper_row(backbone, row.name, cost)
        pairs = " | ".join(f"{mine} | {theirs}" for mine, theirs in zip(ours, paper))
        seen = MISSING if not any(counts) else "/".join(str(count) for count in counts)
        out.append(f"| {_row_label(row, cost)} | {seen} | {pairs} |")
    return "\n".join(out) + "\n"


def table2_markdown(cells, backbone, seeds, costs, header):
    """Table 2: accuracy per target cost and task, plus time per cell."""
    columns = [f"c={cost:g} {name}" for cost in costs for _, name in TASK_COLUMNS]
    out = [*header, "", f"| Method | {' | '.join(columns)} | time/cell (s) |"]
    out.append("|---" * (len(columns) + 2) + "|")
    for row in grid_lib.rows_of("2"):
        values, everything = [], []
        for cost in costs:
            for task, _ in TASK_COLUMNS:
                records = cells.results(backbone, task, row.name, cost, seeds)
                everything += records
                values.append(
                    accuracy_cell([r["result"]["test_accuracy"] for r in records], len(seeds))
                )
        out.append(f"| {row.label} | {' | '.join(values)} | {_seconds(everything)} |")
    return "\n".join(out) + "\n"


def table_csv(cells, table, backbone, seeds, costs):
    """One CSV line per row, target cost and task; accuracies in percent, empty when not run."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    rows = _lines(cells, table, backbone, seeds, costs)
    for row, cost, found in rows:
        for task, _ in TASK_COLUMNS:
            records = found[task]
            line = {"table": table, "row": row.name, "label": row.label, "backbone": backbone}
            line.update(task=task, target_cost="" if cost is None else cost)
            line["seeds"] = " ".join(str(r["cell"]["seed"]) for r in records)
            for key in ("test_accuracy", "validation_accuracy"):
                values = [r["result"][key] for r in records]
                name = "accuracy" if key == "test_accuracy" else "validation_accuracy"
                if values:
                    mean, half = report.confidence_interval_95(values)
                    line[f"{name}_mean"] = _round(100 * mean)
                    line[f"{name}_ci95"] = _round(100 * half)
            for key, field in (
                ("param_ratio_two_tasks", "param_ratio"),
                ("mult_ratio", "mult_ratio"),
                ("added_ratio", "added_ratio"),
            ):
                line[field] = _round(_mean(records, key))
            if records:
                line["seconds_mean"] = _round(float(np.mean([r["seconds"] for r in records])))
            writer.writerow({key: "" if value is None else value for key, value in line.items()})
    return buffer.getvalue()


def _round(value, digits=4):
    return None if value is None else round(float(value), digits)


def stage_one_seconds(cells, table, backbone, seeds):
    """`{row label: mean seconds}` of the stages a row's cells shared, per task and seed.

    Counted once per job, with its first cell, and including the loading of
    a stage another row trained (e.g. equal r_l loads SWR's super-net).
    """
    found = {}
    for record in cells.records:
        cell = record["cell"]
        if cell["backbone"] != backbone or cell["seed"] not in seeds:
            continue
        if record["shared_seconds"] and any(r.name == cell["row"] for r in grid_lib.rows_of(table)):
            key = (cell["row"], cell["task"], cell["seed"])
            found[key] = found.get(key, 0.0) + record["shared_seconds"]
    by_row = {}
    for (row, _, _), seconds in found.items():
        by_row.setdefault(row, []).append(seconds)
    labels = {row.name: row.label for row in grid_lib.rows_of(table)}
    return {labels[row]: float(np.mean(values)) for row, values in by_row.items()}


def grid_seconds(cells, backbone):
    """`(cells, seconds)`: every finished cell of `backbone` and the sum of their times."""
    mine = [r for r in cells.records if r["cell"]["backbone"] == backbone]
    return len(mine), float(sum(r["seconds"] + r["shared_seconds"] for r in mine))


def grid_wall_seconds(cells, backbone):
    """Seconds during which at least one finished cell of `backbone` was running, or `None`.

    A cell ran from its record's `finished` time less its own and shared
    seconds until that time. The union of those intervals is the grid's wall
    time: cells of processes side by side count once, and the gaps between
    runs (sessions, a killed process) not at all. Records without `finished`
    take no part; `None` if no record has one.
    """
    intervals = []
    for record in cells.records:
        if record["cell"]["backbone"] == backbone and record.get("finished"):
            end = datetime.datetime.fromisoformat(record["finished"]).timestamp()
            intervals.append((end - record["seconds"] - record["shared_seconds"], end))
    intervals.sort()
    if not intervals:
        return None
    total, (start, stop) = 0.0, intervals[0]
    for begin, end in intervals[1:]:
        if begin > stop:
            total, start = total + stop - start, begin
        stop = max(stop, end)
    return total + stop - start


def header_lines(title, cells, backbone, seeds, command, explanation, rows=None, kind=None):
    """The lines above a table: what it is, the command, the commits and versions its cells record.

    `rows` (row names) and `kind` (`"result"`, `"policy"`) select the
    table's own cells; `None` takes every record of `backbone`.
    """
    mine = [
        r
        for r in cells.records
        if r["cell"]["backbone"] == backbone
        and (rows is None or r["cell"]["row"] in rows)
        and (kind is None or r["cell"]["kind"] == kind)
    ]
    commits = sorted({str(r["versions"].get("swr_keras_commit", "unknown")) for r in mine})
    versions = sorted(
        {
            _versions_text({k: v for k, v in r["versions"].items() if k != "swr_keras_commit"})
            for r in mine
        }
    )
    commands = sorted({r["command"] for r in mine if r["command"]})
    lines = [
        f"# {title}",
        "",
        explanation,
        "",
        f"Generated by `{command}` from the cell records in `cells/` (seeds {_join(seeds)}; "
        "a cell not run shows -).",
    ]
    lines += [f"Cells computed by: `{c}`" for c in commands]
    if commits:
        lines.append(f"Commits that computed its cells: {', '.join(commits)}")
    lines += [f"Versions: {v}" for v in versions if v]
    if cells.stale:
        lines.append(
            f"Stale cell records ignored: {len(cells.stale)} of `cells/` (no identity hash, or "
            "computed under other settings, code version or inputs than this command's; the "
            "next run of the grid trains them again)."
        )
    lines += cells.notes
    return lines


def _versions_text(versions):
    return ", ".join(f"{name} {value}" for name, value in sorted(versions.items()))


def _join(values):
    return ", ".join(str(v) for v in values)


def _backbone_name(tag):
    return "BC-ResNet-" + tag[len("bc_resnet") :] if tag.startswith("bc_resnet") else "Res15"


def figure2(cells, backbone, seeds, results_dir, suffix=""):
    """Fig. 2a (controllability, three series) and 2b/2c (policy maps); returns written paths.

    The series are the mean over the finished seeds of the actual added
    ratio; the policy maps show the first finished seed's gates at the
    paper's target costs. Rows without a finished policy are left out.
    """
    task = next(
        (
            t
            for t in (grid_lib.FIGURE_TASK, *grid_lib.PAPER_TASKS)
            if any(cells.policies(backbone, t, row, seeds) for row in grid_lib.FIGURE2_ROWS)
        ),
        None,
    )
    if task is None:
        return []
    series, table = {}, {}
    for row in grid_lib.FIGURE2_ROWS:
        records = cells.policies(backbone, task, row, seeds)
        if records:
            points = [r["result"]["controllability"] for r in records]
            costs = [p["target_cost"] for p in points[0]]
            ratios = np.array([[p["added_ratio"] for p in seed] for seed in points])
            series[FIGURE2_LABELS[row]] = ratios.mean(axis=0)
            table[row] = (costs, ratios)
    costs = next(iter(table.values()))[0]
    paths = [
        report.plot_controllability(
            costs,
            {label: list(values) for label, values in series.items()},
            os.path.join(results_dir, f"controllability{suffix}.png"),
            title=f"{_backbone_name(backbone)}, {task}: target cost vs added ratio",
        )
    ]
    for row, name in (("swr", "policy_map"), ("equal_rl", "policy_map_equal")):
        records = cells.policies(backbone, task, row, seeds)
        if records:
            policy = records[0]["result"]
            gates = {
                p["target_cost"]: p["gates"]
                for p in policy["controllability"]
                if _cost(p["target_cost"]) in {_cost(c) for c in grid_lib.PAPER_COSTS}
            }
            paths.append(
                report.plot_policy_map(
                    policy["layers"],
                    policy["kinds"],
                    gates,
                    os.path.join(results_dir, f"{name}{suffix}.png"),
                    title=f"{FIGURE2_LABELS[row]} (seed {records[0]['cell']['seed']})",
                )
            )
    lines = ["| c | " + " | ".join(FIGURE2_LABELS[row] for row in table) + " |"]
    lines.append("|---" * (len(table) + 1) + "|")
    for index, cost in enumerate(costs):
        values = [
            accuracy_cell(ratios[:, index], len(seeds), scale=1.0, digits=3)
            for _, ratios in table.values()
        ]
        lines.append(f"| {cost:g} | " + " | ".join(values) + " |")
    return paths, lines


def read_fresh_cells(results_dir, identity=None, corpora=None):
    """The `Cells` to report from `<results_dir>/cells/` (`reproduce.fresh_records`)."""
    records = grid_lib.read_cells(os.path.join(results_dir, "cells"))
    return Cells(*grid_lib.fresh_records(records, identity, corpora))


def write_all(
    results_dir,
    backbone,
    tables,
    figures,
    seeds,
    costs,
    command,
    readme="",
    identity=None,
    corpora=None,
    list_stale=False,
):
    """Writes every selected table (Markdown and CSV) and figure; returns the paths written.

    Only fresh records are reported: `identity` (the command's
    `reproduce.CellIdentity`) and `corpora` (`{(task, seed): corpus digest}`
    of the listings the caller made) as `reproduce.fresh_records` takes them.
    Prints how many stale records were ignored and, with `list_stale`, one
    line per record naming it and why.

    With any table, also `claims.md`: the paper's claims checked on the
    cells (`claims`). With Table 1 and a backbone the paper reports, also `table1_vs_paper.md`
    (ours beside the paper's numbers) and, if `readme` names a Markdown file,
    the same table and `claims.summary_markdown` (the headline claims) into its
    block between `paper_comparison.BEGIN` and `END`.
    """
    cells = read_fresh_cells(results_dir, identity, corpora)
    if cells.stale:
        print(f"== report: {len(cells.stale)} stale cell records ignored", flush=True)
        for name, why in cells.stale if list_stale else ():
            print(f"   stale cell {name}: {why}", flush=True)
    for note in cells.notes:
        print(f"   {note}", flush=True)
    suffix = "" if backbone == "bc_resnet8" else f"_{backbone}"
    written = []
    if readme and ("1" not in tables or not paper_comparison.has_paper_numbers(backbone)):
        raise ValueError(
            "Writing Table 1 beside the paper's into a README needs '1' in tables and a backbone "
            f"the paper reports (bc_resnet8, res15). Received: tables={list(tables)}, "
            f"backbone={backbone}"
        )
    for table in tables:
        explanations = {
            "1": "Top-1 test accuracy (%) after transfer, mean (95 % CI half-width) over seeds "
            "(Student's t); #Param. = (backbone + 2 tasks) / backbone; #Mult. of the deployed "
            "model per task vs the backbone; time/cell = training and evaluation of one cell.",
            "2": "Ablations of SWR: top-1 test accuracy (%), mean (95 % CI half-width) over "
            "seeds (Student's t); time/cell = training and evaluation of one cell.",
        }
        title = {"1": "Table 1: KWS transfer", "2": "Table 2: ablations of SWR"}[table]
        title += f", {_backbone_name(backbone)}"
        names = {row.name for row in grid_lib.rows_of(table)}
        header = header_lines(
            title, cells, backbone, seeds, command, explanations[table], names, grid_lib.RESULT
        )
        render = table1_markdown if table == "1" else table2_markdown
        text = render(cells, backbone, seeds, costs, header)
        if table == "1":
            text += "\n" + training_conditions_markdown(cells, backbone)
        shared = stage_one_seconds(cells, table, backbone, seeds)
        if shared:
            text += (
                "\nShared stages (stage 1; trained once per task and seed, then loaded by the "
                "other target costs and rows), mean seconds per task and seed: "
                + "; ".join(f"{label} {seconds:.0f}" for label, seconds in shared.items())
                + ".\n"
            )
        count, seconds = grid_seconds(cells, backbone)
        text += (
            f"\nThe whole grid so far: {count} finished cells of {_backbone_name(backbone)} "
            f"(both tables and Fig. 2), {seconds:.0f} s ({seconds / 3600:.1f} h) of compute in "
            "all: each cell's own time plus the shared stages, each counted once."
        )
        wall = grid_wall_seconds(cells, backbone)
        if wall is not None:
            text += (
                f" Wall time {wall:.0f} s ({wall / 3600:.1f} h): the union of the cells' running "
                "intervals (each record's finish time less its seconds), so cells run side by "
                "side count once and the gaps between runs not at all."
            )
        text += "\n"
        for extension, content in (
            ("md", text),
            ("csv", table_csv(cells, table, backbone, seeds, costs)),
        ):
            path = os.path.join(results_dir, f"table{table}{suffix}.{extension}")
            atomic_io.write_text_atomically(path, content)
            written.append(path)
    if tables:
        header = header_lines(
            f"The paper's claims, {_backbone_name(backbone)}",
            cells,
            backbone,
            seeds,
            command,
            claims.EXPLANATION,
            {row.name for table in tables for row in grid_lib.rows_of(table)},
            grid_lib.RESULT,
        )
        path = os.path.join(results_dir, f"claims{suffix}.md")
        atomic_io.write_text_atomically(
            path, claims.claims_markdown(cells, backbone, seeds, costs, header)
        )
        written.append(path)
    if "1" in tables and paper_comparison.has_paper_numbers(backbone):
        comparison = table1_vs_paper_markdown(cells, backbone, seeds, costs)
        title = f"Table 1 beside the paper's, {_backbone_name(backbone)}"
        names = {row.name for row in grid_lib.rows_of("1")}
        header = header_lines(
            title, cells, backbone, seeds, command, VS_PAPER_EXPLANATION, names, grid_lib.RESULT
        )
        path = os.path.join(results_dir, f"table1_vs_paper{suffix}.md")
        atomic_io.write_text_atomically(path, "\n".join([*header, "", comparison]))
        written.append(path)
        if readme:
            source = os.path.join(results_dir, "cells", "")
            intro = (
                f"Generated by `{command}` from `{source}` (seeds {_join(seeds)}). "
                + VS_PAPER_EXPLANATION
            )
            summary = claims.summary_markdown(cells, backbone, seeds, costs)
            paper_comparison.write_block(
                readme, f"{intro}\n\n{comparison}\n{claims.SUMMARY_INTRO}\n\n{summary}"
            )
            written.append(readme)
    if figures:
        drawn = figure2(cells, backbone, seeds, results_dir, suffix)
        if drawn:
            paths, lines = drawn
            header = header_lines(
                f"Fig. 2a: controllability, {_backbone_name(backbone)}",
                cells,
                backbone,
                seeds,
                command,
                "Actual added-parameter ratio of the binarised policy at each target cost c, "
                "mean (95 % CI half-width) over seeds, in the units of the ratio "
                f"(plots: {', '.join(os.path.basename(p) for p in paths)}).",
                set(grid_lib.FIGURE2_ROWS),
                grid_lib.POLICY,
            )
            path = os.path.join(results_dir, f"figure2{suffix}.md")
            atomic_io.write_text_atomically(path, "\n".join([*header, "", *lines]) + "\n")
            written += [*paths, path]
    return written
