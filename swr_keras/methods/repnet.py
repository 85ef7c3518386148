"""Baseline "Rep-Net" (Yang et al., 2022): side modules reprogram a frozen backbone.

Trains the side modules, the backbone's BN offsets (its only biases) and the
new classifier, with label smoothing as the official scripts; deploys the
model with its side modules. See `swr_keras.module_methods.repnet`.
"""

import dataclasses

from swr_keras.losses import SparseLabelSmoothingCrossentropy
from swr_keras.methods.module_method import ModuleMethod
from swr_keras.methods.registry import register
from swr_keras.module_methods import repnet


@dataclasses.dataclass(frozen=True)
class RepNetOptions:
    repnet_kernel_size: int = dataclasses.field(
        default=repnet.KERNEL_SIZE,
        metadata={"help": "Kernel size of the side modules' grouped conv (official: 5)."},
    )
    repnet_expand: float = dataclasses.field(
        default=repnet.EXPAND,
        metadata={
            "help": "Side modules' middle width over their input width (official "
            "ProgramModule: 1 by default, 1/4 for ResNets)."
        },
    )
    repnet_label_smoothing: float = dataclasses.field(
        default=0.1,
        metadata={"help": "Label smoothing of the loss (official scripts: 0.1 to 0.7)."},
    )


@register
class RepNet(ModuleMethod):
    name = "repnet"
    label = "Rep-Net"
    help = (
        "Baseline: side modules from each stage's first block to its output reprogram the "
        "frozen backbone; trains them, the BN offsets and a new classifier."
    )
    Options = RepNetOptions
    reference = (
        "ASU-ESIC-FAN-Lab/RepNet exp_scripts (tiny_train_test.py, tiny-reprogram+bias): Adam, "
        "lr 1.6e-3 (biases) and 3e-3 (side modules), batch 8, 50 epochs, label smoothing "
        "0.1-0.7"
    )
    deviations = (
        "one learning rate (the job's) for the side modules and the biases, cosine; the "
        "official gives the modules about 2x",
        "no 8-bit quantisation of the frozen weights",
    )

    def check_options(self, options):
        size = options.repnet_kernel_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(
                f"repnet_kernel_size must be a positive odd integer. "
                f"Received: repnet_kernel_size={size!r}"
            )
        if not options.repnet_expand > 0:
            raise ValueError(
                f"repnet_expand must be > 0. Received: repnet_expand={options.repnet_expand!r}"
            )
        if not 0 <= options.repnet_label_smoothing < 1:
            raise ValueError(
                "repnet_label_smoothing must be in [0, 1). "
                f"Received: repnet_label_smoothing={options.repnet_label_smoothing!r}"
            )

    def loss(self, options, settings=None):
        # Rep-Net's own smoothing replaces the job's, as its official scripts set it.
        del settings
        return SparseLabelSmoothingCrossentropy(options.repnet_label_smoothing)

    def transform(self, base_model, settings, options):
        return repnet.build_repnet(
            base_model, kernel_size=options.repnet_kernel_size, expand=options.repnet_expand
        )
