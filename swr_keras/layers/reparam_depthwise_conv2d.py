"""`ReparamDepthwiseConv2D`: the reparametrised twin of `keras.layers.DepthwiseConv2D`."""

import keras
from keras import ops

from swr_keras.layers.reparam_conv2d import _data_format, _padding, _pair
from swr_keras.layers.reparam_layer import ReparamLayer


@keras.saving.register_keras_serializable(package="swr_keras")
class ReparamDepthwiseConv2D(ReparamLayer):
    """Depthwise 2D convolution whose kernel is `w0 + gate * delta`.

    Supports strides, padding, dilation, `depth_multiplier`, data format,
    activation and an optional bias, as `keras.layers.DepthwiseConv2D`.

    Args:
        kernel_size: int or tuple of 2 ints.
        strides: int or tuple of 2 ints.
        padding: `"valid"` or `"same"`.
        depth_multiplier: output channels per input channel.
        data_format: `"channels_last"` or `"channels_first"`.
        dilation_rate: int or tuple of 2 ints.
        activation: activation after the bias.
        use_bias: whether the layer has a (frozen, pre-trained) bias.

    Input shape: 4D tensor. Output shape: as `DepthwiseConv2D`.
    """

    layer_arguments = (
        "kernel_size",
        "strides",
        "padding",
        "depth_multiplier",
        "data_format",
        "dilation_rate",
    )
    plain_layer_class = keras.layers.DepthwiseConv2D

    def __init__(
        self,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        depth_multiplier=1,
        data_format=None,
        dilation_rate=(1, 1),
        activation=None,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.depth_multiplier = int(depth_multiplier)
        self.data_format = _data_format(data_format)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _channels(self, input_shape):
        axis = -1 if self.data_format == "channels_last" else 1
        if input_shape[axis] is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known number of input channels. "
                f"Received input shape {tuple(input_shape)}."
            )
        return input_shape[axis]

    def kernel_shape(self, input_shape):
        return self.kernel_size + (self._channels(input_shape), self.depth_multiplier)

    def bias_size(self, input_shape):
        return self._channels(input_shape) * self.depth_multiplier

    def bias_shape_for(self, outputs):
        if self.data_format == "channels_last":
            return (1, 1, 1, -1)
        return (1, -1, 1, 1)

    def apply_kernel(self, inputs, kernel):
        return ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
