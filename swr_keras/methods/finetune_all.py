"""Baseline "fine-tune all": every weight of the pre-trained model (BN too) and a new classifier.

A task stores a full copy: every learnable weight, plus the BN running
statistics (stored, not parameters). Deploys the trained plain model.
"""

from swr_keras.methods import finetune
from swr_keras.methods.registry import register


@register
class FineTuneAll(finetune.FineTune):
    name = "finetune_all"
    label = "fine-tune all"
    help = "Baseline: trains every weight (BN statistics included) and a new classifier."

    def build(self, base_model, settings, options):
        base_model.trainable = True
        return base_model

    def task_state(self, model):
        return finetune.stored_weights(model)

    def restore(self, backbone, stored):
        model = finetune.clone(backbone)
        finetune.assign_stored(model, stored)
        return model
