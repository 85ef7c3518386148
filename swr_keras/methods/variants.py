"""Labelled variants of the baselines: their sizes before issue 26 sized them as the paper's.

"Residual Adapter" and "Rep-Net" carry the paper's names at the paper's
sizes (BC-ResNet-8: #Param. 1.45x and 2.06x against the paper's 1.43x and
2.26x). The configurations they replaced stay as rows of their own, so that
Table 1 shows what the size does:

- `adapter_small`, "Residual Adapter (small)": adapters beside the spatial
  convolutions only (1.16x / 1.02x on BC-ResNet-8).
- `repnet_wide`, "Rep-Net (expand 1)": side modules as wide as their input
  (`ProgramModule`'s default `expand=1`; 4.97x / 3.19x on BC-ResNet-8).

Each trains, stores and deploys as its parent method.
"""

from swr_keras.losses import SparseLabelSmoothingCrossentropy
from swr_keras.methods.adapter import ResidualAdapter
from swr_keras.methods.base import NoOptions
from swr_keras.methods.registry import register
from swr_keras.methods.repnet import RepNet
from swr_keras.module_methods import repnet
from swr_keras.module_methods.residual_adapter import add_residual_adapters

REPNET_LABEL_SMOOTHING = 0.1


@register
class SmallResidualAdapter(ResidualAdapter):
    name = "adapter_small"
    label = "Residual Adapter (small)"
    help = (
        "Baseline variant: Residual Adapter beside the spatial convs only (channelwise beside "
        "depthwise convs), smaller than the paper's."
    )
    Options = NoOptions

    def check_options(self, options):
        pass

    def transform(self, base_model, settings, options):
        return add_residual_adapters(base_model)


@register
class WideRepNet(RepNet):
    name = "repnet_wide"
    label = "Rep-Net (expand 1)"
    help = (
        "Baseline variant: Rep-Net with side modules as wide as their input (official "
        "ProgramModule default), larger than the paper's."
    )
    Options = NoOptions

    def check_options(self, options):
        pass

    def loss(self, options, settings=None):
        del options, settings
        return SparseLabelSmoothingCrossentropy(REPNET_LABEL_SMOOTHING)

    def transform(self, base_model, settings, options):
        return repnet.build_repnet(base_model, expand=1.0)
