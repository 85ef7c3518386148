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


@register
class ResidualAdapter(ModuleMethod):
    name = "adapter"
    label = "Residual Adapter"
    help = (
        "Baseline: a zero-initialised 1x1 adapter beside each frozen spatial conv, BN per task "
        "and a new classifier; deploys the adapters."
    )
    Options = AdapterOptions

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
        )
