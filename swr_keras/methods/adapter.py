"""Baseline "Residual Adapter" (Rebuffi et al., 2018): parallel 1x1 adapters, BN per task.

Trains the adapters, every BN (gamma, beta, statistics) and the new
classifier; deploys the model with its adapters. See
`swr_keras.module_methods.residual_adapter`.
"""

import dataclasses

from swr_keras.methods.module_method import ModuleMethod
from swr_keras.methods.registry import register
from swr_keras.module_methods.residual_adapter import DEPTHWISE_ADAPTERS, add_residual_adapters


@dataclasses.dataclass(frozen=True)
class AdapterOptions:
    adapter_depthwise: str = dataclasses.field(
        default="channelwise",
        metadata={
            "help": "Adapter beside a depthwise conv: 'channelwise' (a per-channel 1x1 scale) "
            "or 'pointwise' (a full 1x1 conv across channels)."
        },
    )
    adapter_pointwise: bool = dataclasses.field(
        default=False,
        metadata={
            "help": "Also put an adapter beside each 1x1 conv (a second full copy of its "
            "kernel); by default only convolutions with a spatial kernel get one."
        },
    )
    adapter_time_frequency: bool = dataclasses.field(
        default=True,
        metadata={
            "help": "Also put an adapter beside each 1x1 conv that reads time-frequency maps "
            "(BC-ResNet's transition convs): #Param. 1.45x on BC-ResNet-8, the paper's 1.43x."
        },
    )


@register
class ResidualAdapter(ModuleMethod):
    name = "adapter"
    label = "Residual Adapter"
    help = (
        "Baseline: a zero-initialised 1x1 adapter beside each frozen spatial conv and each 1x1 "
        "conv on time-frequency maps, BN per task, a new classifier; deploys the adapters."
    )
    Options = AdapterOptions
    reference = (
        "srebuffi/residual_adapters train_new_task_adapters.py: SGD (momentum 0.9), lr 0.1, "
        "weight decay 1e-4, 120 epochs, lr x 0.1 at epochs 80 and 100"
    )
    deviations = (
        "the job's Adam and cosine learning rate, no weight decay: the official step schedule "
        "is defined over 120 epochs, and SGD at 0.1 was not tried at our epochs",
    )

    def check_options(self, options):
        if options.adapter_depthwise not in DEPTHWISE_ADAPTERS:
            raise ValueError(
                f"adapter_depthwise must be one of {', '.join(DEPTHWISE_ADAPTERS)}. "
                f"Received: adapter_depthwise={options.adapter_depthwise!r}"
            )

    def transform(self, base_model, settings, options):
        return add_residual_adapters(
            base_model,
            depthwise_adapter=options.adapter_depthwise,
            adapt_pointwise=options.adapter_pointwise,
            adapt_time_frequency=options.adapter_time_frequency,
        )
