"""swr_keras: Scalable Weight Reparametrization for efficient transfer learning."""

from swr_keras import cost, layers, models
from swr_keras.gumbel import gumbel_softmax
from swr_keras.losses import layer_cost_weights, policy_loss
from swr_keras.merge import merge
from swr_keras.model_walk import batch_norm_layers, reparam_layers
from swr_keras.policy_network import PolicyNetwork, binarize, budget_gates
from swr_keras.reparametrize import reparametrize
from swr_keras.task_state import TaskState, apply_task_state, extract_task_state
from swr_keras.training import STAGES, SWRTrainer, TemperatureSchedule, fit_stage

__version__ = "0.1.0"

__all__ = [
    "PolicyNetwork",
    "STAGES",
    "SWRTrainer",
    "TaskState",
    "TemperatureSchedule",
    "apply_task_state",
    "cost",
    "batch_norm_layers",
    "binarize",
    "budget_gates",
    "extract_task_state",
    "fit_stage",
    "gumbel_softmax",
    "layer_cost_weights",
    "layers",
    "merge",
    "models",
    "policy_loss",
    "reparam_layers",
    "reparametrize",
]
