"""What a bank holds and what it saves: the rows of `bank.py list`.

Per task: method, target cost, test accuracy, the learnable parameters it
stores (`StoredTask.num_parameters`, read from its file) and its bytes on
disk. For the bank: the paper's #Param. for its T tasks,
`(backbone + sum of the tasks' parameters) / backbone`, next to T separate
models (T.00x), and its bytes next to T copies of the backbone's file (what T
separately stored models of the backbone's architecture take).
"""

import dataclasses

from swr_keras import cost


@dataclasses.dataclass
class TaskRow:
    name: str
    method: str
    target_cost: object
    test_accuracy: object
    parameters: int
    bytes: int


@dataclasses.dataclass
class BankSummary:
    rows: list
    backbone_parameters: int
    backbone_bytes: int
    total_bytes: int

    @property
    def param_ratio(self):
        """The paper's #Param. of the bank's tasks (1.0 for an empty bank)."""
        return cost.multi_task_parameter_ratio(
            self.backbone_parameters, [row.parameters for row in self.rows]
        )

    @property
    def separate_bytes(self):
        return len(self.rows) * self.backbone_bytes


def summarize(bank):
    """A `BankSummary` of `bank`, every task's parameters counted from its file."""
    info = bank.backbone_info()
    rows = []
    for entry in bank.entries():
        stored = bank.stored_task(entry.name)
        rows.append(
            TaskRow(
                name=entry.name,
                method=entry.method,
                target_cost=entry.target_cost,
                test_accuracy=entry.metrics.get("test_accuracy"),
                parameters=stored.num_parameters,
                bytes=entry.stored_bytes,
            )
        )
    return BankSummary(
        rows=rows,
        backbone_parameters=int(info["parameters"]),
        backbone_bytes=int(sum(f["bytes"] for f in info["files"].values())),
        total_bytes=bank.total_bytes(),
    )


def format_summary(summary):
    """The table `bank.py list` prints."""
    lines = [
        f"{'task':<24} {'method':<20} {'c':>5} {'acc(%)':>7} {'+params':>10} {'bytes':>10}",
        "-" * 81,
    ]
    for row in summary.rows:
        c = "-" if row.target_cost is None else f"{row.target_cost:.2f}"
        accuracy = "-" if row.test_accuracy is None else f"{100 * row.test_accuracy:.1f}"
        lines.append(
            f"{row.name:<24} {row.method:<20} {c:>5} {accuracy:>7} {row.parameters:>10,} "
            f"{row.bytes:>10,}"
        )
    t = len(summary.rows)
    lines += [
        "-" * 81,
        f"backbone: {summary.backbone_parameters:,} parameters, {summary.backbone_bytes:,} bytes",
        f"#Param.({t} tasks): bank {summary.param_ratio:.2f}x, {t} separate models {t:.2f}x",
        f"bytes: bank {summary.total_bytes:,} (backbone + tasks), {t} separate models "
        f"{summary.separate_bytes:,} ({t} x the backbone's file)",
    ]
    return "\n".join(lines)
