"""Transfer methods that deploy extra modules: Residual Adapter, SpotTune, Rep-Net.

Each module here builds a method's model from a pre-trained task model; the
methods' training stages and registration live in `swr_keras.methods`.
"""

from swr_keras.module_methods.module_state import (
    assign_stored_tensors,
    count_task_parameters,
    stored_tensors,
)
from swr_keras.module_methods.repnet import build_repnet
from swr_keras.module_methods.residual_adapter import ParallelAdapter, add_residual_adapters
from swr_keras.module_methods.spottune import build_spottune

__all__ = [
    "ParallelAdapter",
    "add_residual_adapters",
    "assign_stored_tensors",
    "build_repnet",
    "build_spottune",
    "count_task_parameters",
    "stored_tensors",
]
