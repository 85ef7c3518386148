"""Baseline "Rep-Net" (Yang et al., 2022): side modules reprogram a frozen backbone.

Trains the side modules, the backbone's BN offsets (its only biases) and the
new classifier, with label smoothing as the official scripts; deploys the
model with its side modules. See `swr_keras.module_methods.repnet`.
"""

import dataclasses

import keras

from swr_keras.methods.module_method import ModuleMethod
from swr_keras.methods.registry import register
from swr_keras.module_methods import repnet


@dataclasses.dataclass(frozen=True)
class RepNetOptions:
    repnet_kernel_size: int = dataclasses.field(
        default=repnet.KERNEL_SIZE,
        metadata={"help": "Kernel size of the side modules' grouped conv (official: 5)."},
    )
    repnet_label_smoothing: float = dataclasses.field(
        default=0.1,
        metadata={"help": "Label smoothing of the loss (official scripts: 0.1 to 0.7)."},
    )


@keras.saving.register_keras_serializable(package="swr_keras")
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Cross-entropy on logits with integer labels and label smoothing.

    (Keras' `SparseCategoricalCrossentropy` has no label smoothing.) The
    number of classes is the logits' last axis.

    Args:
        label_smoothing: in [0, 1); the target puts `1 - label_smoothing +
            label_smoothing / classes` on the label, as PyTorch's
            `CrossEntropyLoss(label_smoothing=...)`.
    """

    def __init__(self, label_smoothing=0.1, name="label_smoothing_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        targets = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@register
class RepNet(ModuleMethod):
    name = "repnet"
    label = "Rep-Net"
    help = (
        "Baseline: side modules from each stage's first block to its output reprogram the "
        "frozen backbone; trains them, the BN offsets and a new classifier."
    )
    Options = RepNetOptions

    def check_options(self, options):
        size = options.repnet_kernel_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(
                f"repnet_kernel_size must be a positive odd integer. "
                f"Received: repnet_kernel_size={size!r}"
            )
        if not 0 <= options.repnet_label_smoothing < 1:
            raise ValueError(
                "repnet_label_smoothing must be in [0, 1). "
                f"Received: repnet_label_smoothing={options.repnet_label_smoothing!r}"
            )

    def loss(self, options):
        return SparseLabelSmoothingCrossentropy(options.repnet_label_smoothing)

    def transform(self, base_model, settings, options):
        return repnet.build_repnet(base_model, kernel_size=options.repnet_kernel_size)
