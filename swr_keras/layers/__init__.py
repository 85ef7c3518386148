"""Reparametrised layers: `w = w0 + gate * delta` twins of Keras layers."""

from swr_keras.layers.reparam_conv2d import ReparamConv2D
from swr_keras.layers.reparam_dense import ReparamDense
from swr_keras.layers.reparam_depthwise_conv2d import ReparamDepthwiseConv2D
from swr_keras.layers.reparam_layer import ReparamLayer, example_gates

__all__ = [
    "ReparamConv2D",
    "ReparamDense",
    "ReparamDepthwiseConv2D",
    "ReparamLayer",
    "example_gates",
]
