"""Many tasks on one backbone: the task bank, one SavedModel for all tasks, TF Serving config.

```python
from swr_keras import bank

tasks = bank.TaskBank("banks/kws")
bank.add_run("banks/kws", "runs/kws", "saved_models/bc_resnet8_multilingual/model.keras")
tasks.verify()                                        # sizes and sha256 of every file
model = bank.materialize(tasks, "gsc2_swr_c050")      # the task's merged plain model
bank.export_multitask(tasks, "serving/multitask")     # one SavedModel, a signature per task
```
"""

from swr_keras.bank.from_run import add_run, default_task_name
from swr_keras.bank.materialize import export_task_serving, export_task_tflite, materialize
from swr_keras.bank.multitask_export import export_multitask
from swr_keras.bank.serving_config import (
    ServedModel,
    read_models_config,
    relabel,
    write_models_config,
)
from swr_keras.bank.store import BankError, TaskBank, TaskEntry, file_sha256, weights_sha256

__all__ = [
    "BankError",
    "ServedModel",
    "TaskBank",
    "TaskEntry",
    "add_run",
    "default_task_name",
    "export_multitask",
    "export_task_serving",
    "export_task_tflite",
    "file_sha256",
    "materialize",
    "read_models_config",
    "relabel",
    "weights_sha256",
    "write_models_config",
]
