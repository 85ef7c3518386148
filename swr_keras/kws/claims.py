"""The paper's claims, checked on the grid's finished cells.

The paper's headline compares SWR at c = 0.1 with every baseline, SWR at
c = 0.5 with fine-tuning everything, and two-stage SWR with each ablation of
Table 2. Each comparison here is one task's: the difference of two table
cells' test accuracies, paired by seed (the two cells of one seed start from
the same pre-trained model, on the same task data, with the same seed), as a
mean and a 95 % interval (Student's t over the per-seed differences). Pairing
takes the variation the two cells share out of the interval, so it can
separate two rows whose own intervals overlap.

A verdict is read off that interval alone: "higher" or "lower" where it
excludes 0; "not told apart" where it spans 0, which means too few seeds to
tell and is not evidence that the two are equal; "one seed" where a single
pair finished.

The headline family (`headline_family`: SWR at c = 0.1 against each
baseline row of Table 1, and SWR at c = 0.5 against fine-tune all) is read
with a multiplicity control instead: per task, each comparison's two-sided
paired t-test p-value, Holm-adjusted over the family's comparisons that have
one (`holm`), and a verdict from the adjusted p-value: "higher" / "lower"
below `ALPHA`, "equivalent within 1 point" where not and the whole 95 %
interval lies inside +-1 point, else "not told apart".

The cost claims (zero extra computation, under 10 % extra parameters) are
read from the same cells' #Mult. and #Param. columns, counted as Table 1
counts them (`param_ratio_two_tasks`: backbone plus two tasks' stored
parameters over the backbone's).
"""

import dataclasses
import math

import numpy as np

from swr_keras.kws import paper_comparison, report
from swr_keras.kws import reproduce as grid_lib

MISSING = "-"
# The paper's operating points: the headline budget, and the budget it
# compares with fine-tuning everything.
HEADLINE_COST = 0.1
FULL_COST = 0.5
# The paper's baselines (Table 1 and the text's fine-tune classifier); rows this
# project adds, such as LoRA, are compared but are not candidates for "the best".
PAPER_BASELINES = ("finetune_all", "finetune_classifier", "spottune", "adapter", "repnet", "taps")
# The headline family's baselines: the paper's and LoRA (SWR at HEADLINE_COST
# against each, at the same budget for LoRA; see `headline_family`).
HEADLINE_BASELINES = (*PAPER_BASELINES, "lora")
# The family-wise error rate the Holm-adjusted p-values are read at.
ALPHA = 0.05
# "Equivalent" where the whole 95 % interval of the difference lies inside +-this (points).
EQUIVALENCE_POINTS = 1.0
# "Under 10 % extra parameters": the paper's #Param. column for two tasks.
EXTRA_PARAMETER_BAR = 0.10
TASKS = grid_lib.TASK_COLUMNS
# Percentage points below which per-seed differences count as identical: the
# records hold float32 accuracies, so equal clip counts can differ by ~1e-6.
NO_SPREAD = 1e-3
EXPLANATION = (
    "Each line compares two cells of Table 1 or Table 2 on one task: the difference of their "
    "top-1 test accuracies (percentage points), left minus right, paired by seed (both cells "
    "of a seed start from the same pre-trained model and data), mean (95 % CI half-width, "
    "Student's t over the per-seed differences). Verdict: higher / lower where the interval "
    "excludes 0; not told apart where it spans 0 (too few seeds to tell; not evidence of "
    "equality); equal on every seed / same difference on every seed where the seeds agree "
    "exactly (an interval of no width: accuracies move in steps of one test clip, so a few "
    "seeds can agree by chance, and that is no evidence either); one seed where only one pair "
    "finished; - where a cell is not run. The headline family (SWR at c = 0.1 against each "
    "baseline of Table 1, SWR at c = 0.5 against fine-tune all) is read per task with Holm's "
    "correction: p (Holm) is the two-sided paired t-test's p-value adjusted over the family's "
    "comparisons on that task, and its verdict is higher / lower where p (Holm) < 0.05 "
    "(adding by under 1 point where the interval lies inside +-1 point), equivalent within 1 "
    "point where not significant and the whole 95 % interval lies inside +-1 point, "
    "else not told apart; the other lines have no p (Holm) and keep the interval's verdict."
)
# What `summary_markdown`'s table holds, for the README that shows it.
SUMMARY_INTRO = (
    "The paper's headline claims on the same cells, from claims.md (which also compares "
    "every other ablation): accuracy difference in points, left minus right, paired by seed, "
    "mean (95 % CI half-width), for the headline family p (Holm) (the paired t-test's p-value, "
    "Holm-adjusted over the family per task) and the verdict read off it, for the other lines "
    "the verdict read off the interval, and n, the seeds paired."
)


@dataclasses.dataclass(frozen=True)
class Side:
    """One table cell of a comparison: a row's name and target cost (`None`: no cost)."""

    row: str
    cost: object = None

    def label(self):
        found = grid_lib.all_rows()[self.row].label
        return found if self.cost is None else f"{found}, c={self.cost:g}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    left: Side
    right: Side


def comparisons(costs):
    """The paper's accuracy claims, as `Comparison`s, for the target costs the grid ran.

    SWR at `HEADLINE_COST` against every other Table 1 row (a row with
    budgets, LoRA, at the same budget); SWR at `FULL_COST` against fine-tune
    all; two-stage SWR against each Table 2 ablation at each target cost.
    """
    costs = [round(float(c), 4) for c in costs]
    found = []
    if HEADLINE_COST in costs:
        swr = Side("swr", HEADLINE_COST)
        for row in grid_lib.table1_rows():
            if row.name != "swr":
                found.append(
                    Comparison(swr, Side(row.name, HEADLINE_COST if row.takes_costs() else None))
                )
    if FULL_COST in costs:
        found.append(Comparison(Side("swr", FULL_COST), Side("finetune_all")))
    for row in grid_lib.TABLE2_ROWS:
        if row.name != "swr":
            found += [Comparison(Side("swr", cost), Side(row.name, cost)) for cost in costs]
    return found


def paired_difference(left, right):
    """Left minus right test accuracy over the seeds both finished, in percentage points.

    Args:
        left, right: cell records of one task (`{"cell": {"seed"}, "result":
            {"test_accuracy"}}`).

    Returns:
        `None` if no seed finished on both sides; else a dict with `seeds`,
        `left` and `right` (means over those seeds), `mean` and `half` (the
        difference's mean and 95 % half-width; 0 for one seed), all in percent.
    """
    by_seed = {r["cell"]["seed"]: r["result"]["test_accuracy"] for r in right}
    pairs = sorted(
        (r["cell"]["seed"], r["result"]["test_accuracy"], by_seed[r["cell"]["seed"]])
        for r in left
        if r["cell"]["seed"] in by_seed
    )
    if not pairs:
        return None
    seeds, mine, theirs = zip(*pairs)
    mine, theirs = 100.0 * np.array(mine), 100.0 * np.array(theirs)
    mean, half = report.confidence_interval_95(mine - theirs)
    return {
        "seeds": list(seeds),
        "left": float(mine.mean()),
        "right": float(theirs.mean()),
        "mean": mean,
        "half": half,
        "p": paired_p_value(mine - theirs),
    }


def paired_p_value(differences):
    """The two-sided p-value of the paired t-test (mean difference 0), or `None`.

    `None` for fewer than two pairs and for differences that agree exactly
    (`NO_SPREAD`): no spread, no test (see `verdict`).
    """
    differences = np.asarray(differences, float)
    count = len(differences)
    if count < 2:
        return None
    mean, half = report.confidence_interval_95(differences)
    if half < NO_SPREAD:
        return None
    t = mean / (float(np.std(differences, ddof=1)) / math.sqrt(count))
    return student_t_two_sided_p(t, count - 1)


def student_t_two_sided_p(t, degrees_of_freedom):
    """`P(|T| >= |t|)` for Student's t with integer degrees of freedom, without scipy.

    The finite series of Abramowitz & Stegun 26.7.3-26.7.4 in
    `theta = atan(|t| / sqrt(df))`: exact for every integer df.

    Raises:
        ValueError: `degrees_of_freedom` is not a positive integer.
    """
    df = report.check_degrees_of_freedom(degrees_of_freedom)
    theta = math.atan(abs(t) / math.sqrt(df))
    sine, cosine2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:  # odd: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        series, term = 1.0, 1.0
        for k in range(1, (df - 3) // 2 + 1):
            term *= 2 * k / (2 * k + 1) * cosine2
            series += term
        inside = theta + (sine * math.cos(theta) * series if df > 1 else 0.0)
        probability = 2.0 / math.pi * inside
    else:  # even: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        series, term = 1.0, 1.0
        for k in range(1, (df - 2) // 2 + 1):
            term *= (2 * k - 1) / (2 * k) * cosine2
            series += term
        probability = sine * series
    return min(1.0, max(0.0, 1.0 - probability))


def holm(p_values):
    """Holm's step-down adjustment of `p_values`, in their order; `None` stays `None`.

    With the m p-values that are not `None` sorted, `p(1) <= ... <= p(m)`,
    the i-th smallest becomes `max over j <= i of min(1, (m - j + 1) p(j))`:
    the family-wise error rate stays under the level each adjusted value is
    read at, whatever the dependence between the tests.
    """
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[index] = running
    return adjusted


def verdict(difference):
    """The verdict on one `paired_difference` (`MISSING` for none).

    "higher" / "lower" where the 95 % interval excludes 0, "not told apart"
    where it spans 0, "one seed" for a single pair. Where every seed gave the
    same difference the interval has no width, which would claim certainty:
    test accuracies move in steps of one test clip, so a few seeds can agree
    exactly by chance. Those say so instead: "equal on every seed" or "same
    difference on every seed".
    """
    if difference is None:
        return MISSING
    if len(difference["seeds"]) < 2:
        return "one seed"
    if difference["half"] < NO_SPREAD:
        if abs(difference["mean"]) < NO_SPREAD:
            return "equal on every seed"
        return "same difference on every seed"
    if difference["mean"] - difference["half"] > 0:
        return "higher"
    if difference["mean"] + difference["half"] < 0:
        return "lower"
    return "not told apart"


def holm_verdict(difference, adjusted):
    """The verdict on a headline comparison from its Holm-adjusted p-value (`None`: none).

    "higher" / "lower" where `adjusted < ALPHA` (", by under 1 point" where
    the whole 95 % interval also lies inside +-`EQUIVALENCE_POINTS`);
    "equivalent within 1 point" where not significant and the interval lies
    inside +-1; else "not told apart". Without a p-value (one seed, seeds
    that agree exactly) the interval's words of `verdict`.
    """
    if difference is None or adjusted is None:
        return verdict(difference)
    low, high = difference["mean"] - difference["half"], difference["mean"] + difference["half"]
    within = -EQUIVALENCE_POINTS < low and high < EQUIVALENCE_POINTS
    if adjusted < ALPHA:
        word = "higher" if difference["mean"] > 0 else "lower"
        return word + (", by under 1 point" if within else "")
    return "equivalent within 1 point" if within else "not told apart"


def headline_family(costs):
    """The comparisons Holm's correction runs over, per task: the headline family.

    SWR at `HEADLINE_COST` against each of `HEADLINE_BASELINES` (a row with
    budgets, LoRA, at the same budget) and SWR at `FULL_COST` against
    fine-tune all, as far as `costs` holds those target costs.
    """
    found = []
    for comparison in comparisons(costs):
        left, right = comparison.left, comparison.right
        if left == Side("swr", HEADLINE_COST) and right.row in HEADLINE_BASELINES:
            found.append(comparison)
        elif left == Side("swr", FULL_COST) and right == Side("finetune_all"):
            found.append(comparison)
    return found


def family_readings(cells, backbone, task, seeds, costs):
    """`{comparison: (difference, Holm-adjusted p or None, verdict)}` of one task's family."""
    family = headline_family(costs)
    differences = [_difference(cells, backbone, task, c, seeds) for c in family]
    adjusted = holm([None if d is None else d["p"] for d in differences])
    return {
        comparison: (difference, p, holm_verdict(difference, p))
        for comparison, difference, p in zip(family, differences, adjusted)
    }


def _p_text(p):
    if p is None:
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _difference(cells, backbone, task, comparison, seeds):
    left, right = comparison.left, comparison.right
    return paired_difference(
        cells.results(backbone, task, left.row, left.cost, seeds),
        cells.results(backbone, task, right.row, right.cost, seeds),
    )


def headline_comparisons(costs):
    """The comparisons the paper's headline rests on, a subset of `comparisons`.

    SWR at `HEADLINE_COST` against every other Table 1 row, SWR at
    `FULL_COST` against fine-tune all, and two-stage SWR against not staged;
    the other ablations stay in `claims.md` only.
    """
    ablations = {row.name for row in grid_lib.TABLE2_ROWS} - {"swr", "not_staged"}
    return [c for c in comparisons(costs) if c.right.row not in ablations]


def summary_markdown(cells, backbone, seeds, costs):
    """The headline comparisons, one line each with every task as a column, then the cost claims.

    This is the short form of `claims.md` that `reproduce.py --readme` writes
    under Table 1, so a README states the claims from the cells and never
    from a hand-typed copy.
    """
    out = [
        "| Left | Right | " + " | ".join(name for _, name in TASKS) + " |",
        "|---" * (2 + len(TASKS)) + "|",
    ]
    families = {task: family_readings(cells, backbone, task, seeds, costs) for task, _ in TASKS}
    for comparison in headline_comparisons(costs):
        values = []
        for task, _ in TASKS:
            difference = _difference(cells, backbone, task, comparison, seeds)
            said = verdict(difference)
            if comparison in families[task]:
                _, adjusted, said = families[task][comparison]
                if adjusted is not None:
                    said = f"p (Holm) {_p_text(adjusted)}, {said}"
            if difference is None:
                values.append(MISSING)
            elif len(difference["seeds"]) < 2:
                values.append(f"{difference['mean']:+.1f}, {said}")
            else:
                values.append(
                    f"{difference['mean']:+.1f} ({difference['half']:.1f}), "
                    f"{said}, n={len(difference['seeds'])}"
                )
        out.append(
            f"| {comparison.left.label()} | {comparison.right.label()} | "
            + " | ".join(values)
            + " |"
        )
    return "\n".join([*out, "", *cost_lines(cells, backbone, seeds)]) + "\n"


def accuracy_lines(cells, backbone, seeds, costs):
    """The Markdown table of every accuracy comparison, one line per comparison and task."""
    out = [
        "| Left | Right | Task | Seeds | Left (%) | Right (%) | Difference (95 % CI) "
        "| p (Holm) | Verdict |",
        "|---" * 9 + "|",
    ]
    families = {task: family_readings(cells, backbone, task, seeds, costs) for task, _ in TASKS}
    for comparison in comparisons(costs):
        for task, name in TASKS:
            difference = _difference(cells, backbone, task, comparison, seeds)
            adjusted, said = None, verdict(difference)
            if comparison in families[task]:
                _, adjusted, said = families[task][comparison]
            if difference is None:
                numbers = [MISSING] * 4
            else:
                numbers = [
                    ",".join(str(s) for s in difference["seeds"]),
                    f"{difference['left']:.1f}",
                    f"{difference['right']:.1f}",
                    f"{difference['mean']:+.1f} ({difference['half']:.1f})",
                ]
            out.append(
                f"| {comparison.left.label()} | {comparison.right.label()} | {name} | "
                + " | ".join(numbers)
                + f" | {_p_text(adjusted)} | {said} |"
            )
    return out


def best_baseline_lines(cells, backbone, seeds):
    """Per task, the paper's baseline with the highest mean accuracy (SWR and additions aside)."""
    lines = []
    for task, name in TASKS:
        means = {}
        for row in grid_lib.table1_rows():
            if row.name in PAPER_BASELINES:
                records = cells.results(backbone, task, row.name, None, seeds)
                if records:
                    means[row.label] = 100.0 * np.mean(
                        [r["result"]["test_accuracy"] for r in records]
                    )
        if means:
            best = max(means, key=means.get)
            lines.append(f"- {name}: {best}, {means[best]:.1f} % (mean over its seeds).")
        else:
            lines.append(f"- {name}: {MISSING} (no baseline finished).")
    return lines


def cost_lines(cells, backbone, seeds):
    """SWR at `HEADLINE_COST`: zero extra computation and under 10 % extra parameters."""
    records = [
        r for task, _ in TASKS for r in cells.results(backbone, task, "swr", HEADLINE_COST, seeds)
    ]
    if not records:
        return [f"- SWR, c={HEADLINE_COST:g}: {MISSING} (no cell finished)."]
    mult = float(np.mean([r["result"]["mult_ratio"] for r in records]))
    param = float(np.mean([r["result"]["param_ratio_two_tasks"] for r in records]))
    extra = param - 1.0
    paper = paper_comparison.paper_row(backbone, "swr", HEADLINE_COST)[2]
    return [
        f"- Zero extra computation: #Mult. {mult:.2f}x of the backbone per task "
        f"({'holds' if round(mult, 2) <= 1.0 else 'does not hold'}).",
        f"- Under {100 * EXTRA_PARAMETER_BAR:.0f} % extra parameters: #Param. {param:.2f}x for "
        f"the backbone and two tasks, {100 * extra:.1f} % extra for the two tasks "
        f"({100 * extra / 2:.1f} % per task), classifiers included "
        f"({'holds' if extra < EXTRA_PARAMETER_BAR else 'does not hold'} as the paper's "
        f"#Param. column counts it, two tasks; the paper prints {paper}).",
    ]


def claims_markdown(cells, backbone, seeds, costs, header):
    """The whole `claims.md`: the cost claims, the best baseline, then every comparison."""
    out = [*header, ""]
    out += [f"## SWR at c = {HEADLINE_COST:g}: its cost", "", *cost_lines(cells, backbone, seeds)]
    out += ["", "## The best baseline of the paper's Table 1, per task", ""]
    out += best_baseline_lines(cells, backbone, seeds)
    out += ["", "## Accuracy comparisons", "", *accuracy_lines(cells, backbone, seeds, costs)]
    return "\n".join(out) + "\n"
