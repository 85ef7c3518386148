"""Keras' own LoRA (`layer.enable_lora(rank)`) as a baseline, sized to SWR's budgets.

Every Conv2D (and Dense) of the feature extractor gets LoRA of one rank, the
largest whose added parameters fit `--lora_budget` x the feature
extractor's kernel parameters (SWR's budget for target cost c);
DepthwiseConv2D layers stay frozen, as Keras has no LoRA for them
(`swr_keras.lora` says why). The factors, BN statistics and the new
classifier train for `--reparam_epochs` with Adam and cosine decay, like the
other single-stage baselines. A task stores the factors, the classifier and
the BN statistics; it deploys merged (`A @ B` folded into the kernels).
"""

import dataclasses

import numpy as np

from swr_keras import lora
from swr_keras.methods.base import Stage
from swr_keras.methods.finetune import FineTune
from swr_keras.methods.registry import register
from swr_keras.methods.stored_task import from_task_state, to_task_state
from swr_keras.task_state import apply_task_state
from swr_keras.validation import check_target_cost


@dataclasses.dataclass(frozen=True)
class LoraOptions:
    lora_budget: float = dataclasses.field(
        default=0.5,
        metadata={
            "help": "SWR target cost c whose parameter budget sets the rank: the largest "
            "rank adding at most c x the feature extractor's kernel parameters (0.1, 0.3, 0.5)."
        },
    )


@register
class Lora(FineTune):
    name = "lora"
    label = "Keras LoRA"
    help = (
        "Baseline beyond the paper: Keras' enable_lora on every Conv2D/Dense, rank from "
        "SWR's budget --lora_budget; deploys merged."
    )
    Options = LoraOptions
    reference = "beyond the paper (Keras enable_lora): trained as the fine-tune baselines"

    def check_options(self, options):
        try:
            budget = check_target_cost(options.lora_budget)
        except ValueError:
            budget = 0.0
        if not budget > 0:
            raise ValueError(
                "--lora_budget must be in (0, 1], a target cost of SWR. "
                f"Received: lora_budget={options.lora_budget}"
            )

    def build(self, base_model, settings, options):
        model = lora.enable_lora(base_model, lora.rank_for_budget(base_model, options.lora_budget))
        model.lora_budget = float(options.lora_budget)  # for the row's target cost column
        return model

    def variant_stages(self, settings, options, variant):
        epochs = settings.reparam_epochs
        return [Stage(f"lora_c{options.lora_budget:.2f}_e{epochs}", epochs)]

    def deploy(self, model):
        return lora.merge_lora(model)

    def task_state(self, model):
        return from_task_state(lora.extract_lora_task_state(model))

    def restore(self, backbone, stored):
        return apply_task_state(backbone, to_task_state(stored))

    def result_columns(self, model, variant):
        layers = lora.lora_layers(model)
        added = sum(
            int(np.size(layer.lora_kernel_a)) + int(np.size(layer.lora_kernel_b))
            for layer in layers
        )
        return {
            "target_cost": model.lora_budget,
            "lora_ranks": [int(layer.lora_rank) for layer in layers],
            "lora_parameters": added,
            "added_ratio": added / lora.budget(model, 1.0),
        }
