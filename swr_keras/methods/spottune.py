"""Baseline "SpotTune" (Guo et al., 2019): per example, a frozen or a fine-tuned copy of each block.

Trains the fine-tuned block copies, the stem, every BN, the agent network
and the new classifier in one stage; deploys the model with both copies and
the agent. See `swr_keras.module_methods.spottune`.
"""

import dataclasses

from swr_keras.methods.module_method import ModuleMethod
from swr_keras.methods.registry import register
from swr_keras.module_methods import spottune


@dataclasses.dataclass(frozen=True)
class SpotTuneOptions:
    spottune_temperature: float = dataclasses.field(
        default=spottune.TEMPERATURE,
        metadata={"help": "Temperature of the agent's hard Gumbel-softmax (official: 5)."},
    )
    spottune_agent_width: int = dataclasses.field(
        default=spottune.AGENT_WIDTHS[0],
        metadata={
            "help": "Seed width of the agent ResNet; its blocks are 2x, 4x and 8x as wide "
            "(official: 32, here 12 to keep the agent at about half the backbone)."
        },
    )


@register
class SpotTune(ModuleMethod):
    name = "spottune"
    label = "SpotTune"
    help = (
        "Baseline: a frozen and a fine-tuned copy of each residual block, chosen per example "
        "by an agent network (hard Gumbel-softmax); deploys both copies and the agent."
    )
    Options = SpotTuneOptions
    reference = (
        "gyhui14/spottune main.py: SGD (momentum 0.9) with weight decay, lr 0.1 for the "
        "network and 0.01 for the agent, step decay"
    )
    deviations = (
        "one Adam optimiser at the job's learning rate for network and agent, cosine, no "
        "weight decay: the official SGD rates were not tried at our epochs",
        "an agent of widths 12/24/48/96 (official 32/64/128/256), about half the backbone",
    )

    def check_options(self, options):
        if not options.spottune_temperature > 0:
            raise ValueError(
                "spottune_temperature must be positive. "
                f"Received: spottune_temperature={options.spottune_temperature!r}"
            )
        width = options.spottune_agent_width
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(
                f"spottune_agent_width must be a positive integer. "
                f"Received: spottune_agent_width={width!r}"
            )

    def transform(self, base_model, settings, options):
        width = options.spottune_agent_width
        return spottune.build_spottune(
            base_model,
            agent_widths=(width, 2 * width, 4 * width, 8 * width),
            temperature=options.spottune_temperature,
            seed=None if settings is None else settings.seed,
        )
