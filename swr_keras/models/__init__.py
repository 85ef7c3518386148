"""Backbones of the paper, each split into feature extractor `f` and classifier `g`."""

from swr_keras.models.batch_norm import FusedBatchNormalization
from swr_keras.models.bc_resnet import BC_RESNET_TAUS, BCResNet, bc_resnet_feature_extractor
from swr_keras.models.causal_padding import CausalTimePadding
from swr_keras.models.frequency_mean import FrequencyMean
from swr_keras.models.res15 import Res15, res15_feature_extractor
from swr_keras.models.resnet50 import resnet50
from swr_keras.models.small_resnet import SmallResNet, small_resnet_feature_extractor
from swr_keras.models.sub_spectral_norm import SubSpectralNorm
from swr_keras.models.task_model import (
    build_task_model,
    classifier,
    feature_extractor,
    with_new_classifier,
)

__all__ = [
    "BCResNet",
    "BC_RESNET_TAUS",
    "CausalTimePadding",
    "Res15",
    "SmallResNet",
    "FrequencyMean",
    "FusedBatchNormalization",
    "SubSpectralNorm",
    "bc_resnet_feature_extractor",
    "build_task_model",
    "classifier",
    "feature_extractor",
    "res15_feature_extractor",
    "small_resnet_feature_extractor",
    "resnet50",
    "with_new_classifier",
]
