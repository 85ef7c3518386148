"""Reporting an SWR keyword-spotting run the way the paper does.

Pure functions, no training: the kind of each reparametrised layer, the
policy map of Fig. 2b (which layers the policy network reparametrises at
each target cost), the controllability plot of Fig. 2a (target cost vs. the
parameters a task actually adds), the columns of Table 1 as a text table,
and the 95% confidence interval of an accuracy over seeds.

Plots are drawn on a `matplotlib.figure.Figure` with the Agg canvas, never
through `pyplot`, so reporting changes no global matplotlib state (backend,
current figure) of the program that calls it. matplotlib is imported only
when a plot is drawn: the tables and intervals work without it.
"""

import math
import os
import uuid

import numpy as np

from swr_keras.layers import ReparamConv2D, ReparamDense, ReparamDepthwiseConv2D

LAYER_KINDS = ("depthwise", "pointwise", "regular", "dense")

# Fig. 2b of the paper: blue for depth-wise kernels, red for {regular, 1x1}.
# The two red kinds get different shades so they stay distinguishable.
_KIND_COLOURS = {
    "depthwise": "#1f77b4",
    "pointwise": "#d62728",
    "regular": "#7f0000",
    "dense": "#ff7f0e",
}
_KIND_LABELS = {
    "depthwise": "depth-wise conv",
    "pointwise": "1x1 conv",
    "regular": "regular conv",
    "dense": "dense",
}
_SERIES_STYLES = (
    ("black", "o"),
    ("tab:purple", "s"),
    ("tab:green", "*"),
    ("tab:orange", "^"),
    ("tab:blue", "D"),
)
_DPI = 100

# Two-sided 95% quantiles t(0.975, df) of Student's t for df = 1..30
# (scipy.stats.t.ppf, 6 decimals); scipy is a test-only dependency.
_STUDENT_T_975 = (
    12.706205,
    4.302653,
    3.182446,
    2.776445,
    2.570582,
    2.446912,
    2.364624,
    2.306004,
    2.262157,
    2.228139,
    2.200985,
    2.178813,
    2.160369,
    2.144787,
    2.131450,
    2.119905,
    2.109816,
    2.100922,
    2.093024,
    2.085963,
    2.079614,
    2.073873,
    2.068658,
    2.063899,
    2.059539,
    2.055529,
    2.051831,
    2.048407,
    2.045230,
    2.042272,
)
_NORMAL_975 = 1.959963984540054

_TABLE_COLUMNS = (
    # (row key, header, left-aligned)
    ("method", "method", True),
    ("accuracy", "acc(%)", False),
    ("param_ratio", "#Param.(2 tasks)", False),
    ("task_parameters", "+params", False),
    ("task_bytes", "bytes", False),
    ("mult_ratio", "#Mult.", False),
    ("layers", "layers", False),
    ("target_cost", "target c", False),
    ("added_ratio", "actual", False),
)
_ROW_KEYS = frozenset(key for key, _, _ in _TABLE_COLUMNS) | {"accuracy_ci"}
_MISSING = "-"


def layer_kind(layer):
    """The kind of a reparametrised layer, as Fig. 2b of the paper colours it.

    Args:
        layer: a `ReparamDepthwiseConv2D`, `ReparamConv2D` or `ReparamDense`.

    Returns:
        `"depthwise"`, `"pointwise"` (a 1x1 `ReparamConv2D`), `"regular"`
        (any other `ReparamConv2D`) or `"dense"`.

    Raises:
        ValueError: `layer` is not one of the reparametrised layers.
    """
    if isinstance(layer, ReparamDepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, ReparamConv2D):
        return "pointwise" if tuple(layer.kernel_size) == (1, 1) else "regular"
    if isinstance(layer, ReparamDense):
        return "dense"
    raise ValueError(
        f"layer_kind needs a reparametrised layer (ReparamDepthwiseConv2D, ReparamConv2D "
        f"or ReparamDense). Received: {type(layer).__name__} {getattr(layer, 'name', '')!r}; "
        "take the layers from swr_keras.reparam_layers(model)."
    )


def plot_policy_map(layer_names, layer_kinds, gates_by_cost, path, title=None):
    """Draws which layers are reparametrised at each target cost (Fig. 2b).

    One column per layer (x: layer index 1..L, names along the top) and one
    row per target cost (y, lowest cost at the bottom). A cell is filled
    with its layer kind's colour when the layer's gate is 1 at that cost;
    the right margin gives the number of reparametrised layers per row.

    Args:
        layer_names: the L layer names, in the order of the gates.
        layer_kinds: the L kinds, each one of `LAYER_KINDS` (see `layer_kind`).
        gates_by_cost: `{target_cost: L gates}`, each gate 0 or 1.
        path: the `.png` to write; written atomically, directories created.
        title: an optional figure title.

    Returns:
        `path`, as a string.

    Raises:
        ValueError: mismatched lengths, an unknown kind, no costs, or a gate
            that is not 0 or 1.
    """
    layer_names = [str(name) for name in layer_names]
    layer_kinds = list(layer_kinds)
    num_layers = len(layer_names)
    if num_layers == 0 or len(layer_kinds) != num_layers:
        raise ValueError(
            "layer_names and layer_kinds must be non-empty and of equal length. Received: "
            f"{num_layers} names, {len(layer_kinds)} kinds."
        )
    unknown = sorted(set(layer_kinds) - set(LAYER_KINDS))
    if unknown:
        raise ValueError(f"Unknown layer kinds {unknown}. Use one of {LAYER_KINDS}.")
    if not gates_by_cost:
        raise ValueError("gates_by_cost is empty; give at least one {target_cost: gates}.")
    rows = sorted(
        (
            (float(cost), _binary_gates(gates, num_layers, cost))
            for cost, gates in gates_by_cost.items()
        ),
        key=lambda row: row[0],
    )

    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Patch, Rectangle

    figure = _new_figure(width=max(6.0, 0.2 * num_layers + 2.5), height=0.4 * len(rows) + 3.0)
    axes = figure.add_subplot()
    cells, colours = [], []
    for row, (_, gates) in enumerate(rows):
        for column, (kind, gate) in enumerate(zip(layer_kinds, gates)):
            cells.append(Rectangle((column + 0.55, row - 0.45), 0.9, 0.9))
            colours.append(_KIND_COLOURS[kind] if gate else "white")
    # One collection instead of L x rows patches: several times faster to draw.
    axes.add_collection(
        PatchCollection(cells, facecolors=colours, edgecolors="#bbbbbb", linewidths=0.5)
    )
    for row, (_, gates) in enumerate(rows):
        axes.text(
            num_layers + 0.8, row, f"{int(gates.sum())}/{num_layers}", va="center", fontsize=8
        )
    axes.set_xlim(0.5, num_layers + 0.5)
    axes.set_ylim(-0.5, len(rows) - 0.5)
    axes.set_xticks(range(1, num_layers + 1))
    axes.set_xticklabels([str(i) if i == 1 or i % 5 == 0 else "" for i in range(1, num_layers + 1)])
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([f"{cost:g}" for cost, _ in rows])
    axes.set_xlabel("layer index")
    axes.set_ylabel("target cost c")
    names_axis = axes.secondary_xaxis("top")
    names_axis.set_xticks(range(1, num_layers + 1))
    names_axis.set_xticklabels(layer_names, rotation=90, fontsize=6)
    for side in ("top", "right", "left", "bottom"):
        axes.spines[side].set_visible(False)
    present = [kind for kind in LAYER_KINDS if kind in layer_kinds]
    figure.legend(
        handles=[
            Patch(facecolor=_KIND_COLOURS[kind], label=_KIND_LABELS[kind]) for kind in present
        ],
        loc="outside lower center",
        ncols=len(present),
        fontsize=8,
        frameon=False,
    )
    if title:
        figure.suptitle(title)
    return _save_png(figure, path)


def plot_controllability(target_costs, actual_ratios, path, title=None):
    """Plots target cost vs. the parameter ratio a task actually adds (Fig. 2a).

    Args:
        target_costs: the target costs c, one per point.
        actual_ratios: the added-parameter ratio at each target cost, either
            one list or `{label: list}` for several series (e.g. `"SWR"`
            and `"equal r_l"`).
        path: the `.png` to write; written atomically, directories created.
        title: an optional axes title.

    Returns:
        `path`, as a string.

    Raises:
        ValueError: a series whose length differs from `target_costs`, or a
            value that is not a finite number.
    """
    costs = _finite_floats(target_costs, "target_costs")
    if not isinstance(actual_ratios, dict):
        actual_ratios = {"actual": actual_ratios}
    series = {}
    for label, ratios in actual_ratios.items():
        ratios = _finite_floats(ratios, f"actual_ratios[{label!r}]")
        if len(ratios) != len(costs):
            raise ValueError(
                f"actual_ratios[{label!r}] has {len(ratios)} values for {len(costs)} "
                "target costs; give one ratio per target cost."
            )
        series[str(label)] = ratios

    figure = _new_figure(width=4.5, height=4.5)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], "k--", linewidth=1, label="ideal (y = x)")
    for index, (label, ratios) in enumerate(series.items()):
        colour, marker = _SERIES_STYLES[index % len(_SERIES_STYLES)]
        axes.plot(costs, ratios, color=colour, marker=marker, label=label)
    # Ratios above 1 are possible (a head per task); keep them on the canvas.
    upper = max([1.0, *(max(r, default=0.0) * 1.05 for r in series.values())])
    axes.set_xlim(0, 1)
    axes.set_ylim(0, upper)
    axes.set_xlabel("target cost c")
    axes.set_ylabel("+Param. ratio (added / backbone)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    if title:
        axes.set_title(title)
    return _save_png(figure, path)


def format_table(rows):
    """The columns of the paper's Table 1 as a fixed-width text table.

    Args:
        rows: dicts with any of these keys (a missing or `None` value
            prints as `-`):
            `method` (str); `accuracy` (fraction in [0, 1], printed in
            percent) and `accuracy_ci` (the 95% half-width, a fraction,
            printed in brackets as in the paper: `98.5 (0.1)`);
            `param_ratio` (parameters of the backbone plus 2 tasks over one
            backbone, `2.04x`); `task_parameters` (parameters this task
            adds, `12,345`); `mult_ratio` (`1.00x`); `layers` (`(k, L)`,
            reparametrised layers out of all, `21/43`); `target_cost`
            (`0.50`) and `added_ratio` (the actual added-parameter ratio,
            `0.483`).

    Returns:
        The table: a header line, a rule, one line per row, joined by
        newlines (no trailing newline).

    Raises:
        ValueError: an unknown key, or an accuracy outside [0, 1].
    """
    cells = [[header for _, header, _ in _TABLE_COLUMNS]]
    cells += [_table_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_TABLE_COLUMNS))]

    def join(line):
        return "  ".join(
            cell.ljust(width) if left else cell.rjust(width)
            for cell, width, (_, _, left) in zip(line, widths, _TABLE_COLUMNS)
        ).rstrip()

    lines = [join(line) for line in cells]
    lines.insert(1, "-" * (sum(widths) + 2 * (len(widths) - 1)))
    return "\n".join(lines)


def confidence_interval_95(values):
    """Mean and 95% half-width of a metric over seeds (Student's t).

    Args:
        values: one value per seed, e.g. test accuracies.

    Returns:
        `(mean, half_width)`, with `half_width = t(0.975, n - 1) * s / sqrt(n)`
        for the sample standard deviation `s`; 0 for a single value.

    Raises:
        ValueError: no values, or a value that is not a finite number.
    """
    values = _finite_floats(values, "values")
    if not values:
        raise ValueError("confidence_interval_95 needs at least one value. Received: []")
    count = len(values)
    mean = float(np.mean(values))
    if count == 1:
        return mean, 0.0
    spread = float(np.std(values, ddof=1))
    return mean, student_t_975(count - 1) * spread / math.sqrt(count)


def check_degrees_of_freedom(degrees_of_freedom):
    """`degrees_of_freedom` as an int; a one-line ValueError unless a positive integer."""
    if int(degrees_of_freedom) != degrees_of_freedom or degrees_of_freedom < 1:
        raise ValueError(
            "degrees_of_freedom must be a positive integer. "
            f"Received: degrees_of_freedom={degrees_of_freedom}"
        )
    return int(degrees_of_freedom)


def student_t_975(degrees_of_freedom):
    """The 0.975 quantile of Student's t, without scipy.

    Exact to 6 decimals for 1..30 degrees of freedom (a table); beyond, the
    Cornish-Fisher expansion around the normal quantile (Abramowitz & Stegun
    26.7.5), within 1e-7 of the exact value there.

    Raises:
        ValueError: `degrees_of_freedom` is not a positive integer.
    """
    df = check_degrees_of_freedom(degrees_of_freedom)
    if df <= len(_STUDENT_T_975):
        return _STUDENT_T_975[df - 1]
    z = _NORMAL_975
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(term / df**power for power, term in enumerate(terms, start=1))


def _table_cells(row):
    unknown = sorted(set(row) - _ROW_KEYS)
    if unknown:
        raise ValueError(f"Unknown table keys {unknown}. Use {sorted(_ROW_KEYS)}.")
    accuracy = row.get("accuracy")
    if accuracy is None:
        accuracy_cell = _MISSING
    else:
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(
                f"accuracy is a fraction in [0, 1]. Received: accuracy={accuracy} "
                f"for {row.get('method')!r}; divide percentages by 100."
            )
        accuracy_cell = f"{100 * accuracy:.1f}"
        if row.get("accuracy_ci") is not None:
            accuracy_cell += f" ({100 * row['accuracy_ci']:.1f})"
    layers = row.get("layers")
    return [
        _MISSING if row.get("method") is None else str(row["method"]),
        accuracy_cell,
        _format(row.get("param_ratio"), "{:.2f}x"),
        _format(row.get("task_parameters"), "{:,}"),
        _format(row.get("task_bytes"), "{:,}"),
        _format(row.get("mult_ratio"), "{:.2f}x"),
        _MISSING if layers is None else f"{layers[0]}/{layers[1]}",
        _format(row.get("target_cost"), "{:.2f}"),
        _format(row.get("added_ratio"), "{:.3f}"),
    ]


def _format(value, template):
    return _MISSING if value is None else template.format(value)


def _binary_gates(gates, num_layers, cost):
    gates = np.asarray(gates, dtype=float).reshape(-1)
    if gates.size != num_layers:
        raise ValueError(
            f"gates_by_cost[{cost}] has {gates.size} gates for {num_layers} layers; "
            "give one gate per layer."
        )
    if not np.all((gates == 0) | (gates == 1)):
        raise ValueError(
            f"gates_by_cost[{cost}] must hold only 0 and 1. Received: {gates.tolist()}; "
            "binarise the policy first (swr_keras.binarize)."
        )
    return gates


def _finite_floats(values, name):
    floats = [float(value) for value in values]
    if not all(math.isfinite(value) for value in floats):
        raise ValueError(f"{name} must be finite numbers. Received: {floats}")
    return floats


def _new_figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plotting a report needs matplotlib: pip install 'swr_keras[kws]'"
        ) from error
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure, path):
    """Writes `figure` to `path` under a temporary name, then renames it.

    A reader (or a killed run) therefore never sees a half-written PNG.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            figure.savefig(file, format="png", dpi=_DPI)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
