"""Baseline "fine-tune classifier": only the new classifier; the feature extractor is frozen.

BN runs in inference mode (a frozen Keras layer does), so its statistics do
not change either; a task stores the classifier's kernel and bias.
"""

from swr_keras.methods import finetune
from swr_keras.methods.registry import register
from swr_keras.models import task_model as task_model_lib


@register
class FineTuneClassifier(finetune.FineTune):
    name = "finetune_classifier"
    label = "fine-tune classifier"
    help = "Baseline: trains only the new classifier; the feature extractor (BN too) is frozen."

    def build(self, base_model, settings, options):
        task_model_lib.feature_extractor(base_model).trainable = False
        return base_model

    def task_state(self, model):
        return finetune.stored_weights(task_model_lib.classifier(model))

    def restore(self, backbone, stored):
        model = finetune.clone(backbone)
        finetune.assign_stored(task_model_lib.classifier(model), stored)
        return model
