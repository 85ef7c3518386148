"""What a transfer job leaves behind: exports, plots, metrics.json and the summary table.

Task-agnostic: a task's report subclasses `RunReport` with its TF Serving
export (`export_serving`); the TFLite files, plots, table and metrics.json
are the same for every task.
"""

import json
import os

import numpy as np

from swr_keras import atomic_io
from swr_keras.kws import report, tflite_export

REPRESENTATIVE_EXAMPLES = 200


class RunReport:
    """Collects a job's results as they come and writes them.

    Args:
        output_dir: metrics.json, plots and TFLite files go here.
        export_dir: TF Serving exports go to `<export_dir>/<name>/<version>/`;
            `None` exports nothing.
        job: the `swr_keras.transfer_job.TransferJob`.
        task: the task name, part of the export names.
        flags_text: the command line, recorded in metrics.json.
        program: the recipe, for the command in metrics.json.
        export_prefix: first part of every export's name (`<prefix>_<task>_<method>`).
        data: how the task's data was found (task, data_dir, options),
            recorded in metrics.json for a task bank (`swr_keras.bank`).
    """

    def __init__(
        self,
        output_dir,
        export_dir,
        job,
        task,
        flags_text="",
        program="kws.py",
        export_prefix="kws",
        data=None,
    ):
        self.output_dir = output_dir
        self.data = data
        self.export_dir = export_dir
        self.job = job
        self.task = task
        self.flags_text = flags_text
        self.program = program
        self.export_prefix = export_prefix
        self.rows = []
        self.policy = None
        self._test_arrays = None

    # -- policy -----------------------------------------------------------------
    def add_policy(self, target_costs):
        """Plots the policy map and the controllability of the trained policy network.

        Does nothing for a method without a policy (`Method.has_policy`).
        """
        if not self.job.method.has_policy:
            return
        costs = sorted(set(self.job.controllability_costs()) | set(target_costs))
        decided = self.job.controllability(costs)
        layers = self.job.policy_layers()
        map_path = report.plot_policy_map(
            [layer.name for layer in layers],
            [report.layer_kind(layer) for layer in layers],
            {c: gates for c, (gates, _) in decided.items()},
            os.path.join(self.output_dir, "policy_map.png"),
            title=f"Reparametrised layers per target cost ({len(layers)} layers)",
        )
        control_path = report.plot_controllability(
            costs,
            [ratio for _, ratio in decided.values()],
            os.path.join(self.output_dir, "controllability.png"),
            title="Target cost vs actual added-parameter ratio",
        )
        self.policy = {
            "layers": [layer.name for layer in layers],
            "kinds": [report.layer_kind(layer) for layer in layers],
            "controllability": [
                {"target_cost": c, "added_ratio": ratio, "gates": [int(g) for g in gates]}
                for c, (gates, ratio) in decided.items()
            ],
        }
        print("== policy network: target cost -> actual added-parameter ratio", flush=True)
        print("   " + "  ".join(f"{c:.2f}->{ratio:.3f}" for c, (_, ratio) in decided.items()))
        print(f"   {map_path}\n   {control_path}", flush=True)

    # -- results ----------------------------------------------------------------
    def add_result(self, row, model, label_suffix=""):
        """Records one transferred model's row; exports it unless disabled.

        `label_suffix` tells apart rows of one method, e.g. grid points.
        """
        label = self.job.method.row_label(self.job.settings)
        if row.get("target_cost") is not None:
            label += f" c={row['target_cost']:.2f}"
        label += label_suffix
        row = dict(row, label=label)
        print(f"== {label}: test accuracy {100 * row['test_accuracy']:.2f} %", flush=True)
        if self.export_dir is not None:
            row["exports"] = self._export(row, model)
        self.rows.append(row)

    def export_serving(self, model, export_base):
        """Writes `model` as a TF Serving version under `export_base`; returns its directory."""
        raise NotImplementedError

    def task_metrics(self):
        """The task's own fields of metrics.json (e.g. the KWS clip length)."""
        return {}

    def _export(self, row, model):
        name = f"{self.export_prefix}_{self.task}_{row['method']}"
        if row.get("target_cost") is not None:
            name += f"_c{round(100 * row['target_cost']):03d}"
        version_dir = self.export_serving(model, os.path.join(self.export_dir, name))
        print(f"   TF Serving SavedModel: {version_dir}", flush=True)
        inputs, labels = self._test_data()
        files = tflite_export.export_tflite(
            model, os.path.join(self.output_dir, "tflite"), self._representative_inputs(), name=name
        )
        tflite = {}
        for kind in ("float", "int8"):
            accuracy = tflite_export.tflite_accuracy(files[kind], inputs, labels)
            tflite[kind] = {
                "path": files[kind],
                "bytes": files[f"{kind}_bytes"],
                "test_accuracy": accuracy,
            }
            print(
                f"   TFLite {kind:<5}: {files[f'{kind}_bytes'] / 1024:8.1f} KiB, "
                f"test accuracy {100 * accuracy:.2f} %  {files[kind]}",
                flush=True,
            )
        return {"saved_model": version_dir, "tflite": tflite}

    def _test_data(self):
        if self._test_arrays is None:
            batches = list(self.job.test.as_numpy_iterator())
            self._test_arrays = (
                np.concatenate([x for x, _ in batches]),
                np.concatenate([y for _, y in batches]),
            )
        return self._test_arrays

    def _representative_inputs(self):
        """Un-augmented training examples in a seeded order, for int8 calibration."""
        return self.job.data.representative_inputs(
            REPRESENTATIVE_EXAMPLES, seed=self.job.settings.seed
        )

    # -- summary ----------------------------------------------------------------
    def finish(self, seconds):
        """Prints the table and writes metrics.json (atomically)."""
        table = report.format_table(
            [
                {
                    "method": row["label"],
                    "accuracy": row["test_accuracy"],
                    "param_ratio": row["param_ratio_two_tasks"],
                    "task_parameters": row["task_parameters"],
                    "task_bytes": row["task_bytes"],
                    "mult_ratio": row["mult_ratio"],
                    "layers": (
                        (row["reparametrised_layers"], row["num_layers"])
                        if "num_layers" in row
                        else None
                    ),
                    "target_cost": row.get("target_cost"),
                    "added_ratio": row.get("added_ratio"),
                }
                for row in self.rows
            ]
        )
        backbone = self.job.backbone_parameters
        print()
        print(
            f"Task {self.task}, test split; #Param.(2 tasks) = (backbone + 2 x task) / backbone, "
            f"backbone {backbone:,} parameters, +params = learnable parameters a task stores "
            "(BN statistics are not parameters); bytes = its stored file, statistics included; "
            "#Mult. of the deployed model vs the backbone."
        )
        print(table)
        metrics = {
            "command": f"python recipes/{self.program} " + self.flags_text,
            "task": self.task,
            "class_names": list(self.job.data.class_names),
            **self.task_metrics(),
            "data": self.data,
            "settings": self.job.settings_dict(),
            "backbone_parameters": backbone,
            "results": self.rows,
            "policy": self.policy,
            "seconds": round(seconds, 1),
        }
        path = os.path.join(self.output_dir, "metrics.json")
        temp = f"{path}.tmp-{os.getpid()}"
        with open(temp, "w") as file:
            json.dump(metrics, file, indent=2, default=atomic_io.json_default)
        os.replace(temp, path)
        print(f"metrics written to {path} ({seconds:.0f} s)")
