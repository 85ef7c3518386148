"""Reparametrised layers: `w = w0 + gate * delta` twins of Keras layers."""

from swr_keras.layers.reparam_conv2d import ReparamConv2D
from swr_keras.layers.reparam_dense import ReparamDense
from swr_keras.layers.reparam_depthwise_conv2d import ReparamDepthwiseConv2D
from swr_keras.layers.reparam_layer import ReparamLayer, example_gates
from swr_keras.layers.score_gated import (
    ScoreGated,
    ScoreGatedConv2D,
    ScoreGatedDense,
    ScoreGatedDepthwiseConv2D,
    straight_through_indicator,
)

__all__ = [
    "ReparamConv2D",
    "ReparamDense",
    "ReparamDepthwiseConv2D",
    "ReparamLayer",
    "ScoreGated",
    "ScoreGatedConv2D",
    "ScoreGatedDense",
    "ScoreGatedDepthwiseConv2D",
    "example_gates",
    "straight_through_indicator",
]
