"""`ReparamConv2D`: the reparametrised twin of `keras.layers.Conv2D`."""

import keras
from keras import ops

from swr_keras.layers.reparam_layer import ReparamLayer


@keras.saving.register_keras_serializable(package="swr_keras")
class ReparamConv2D(ReparamLayer):
    """2D convolution whose kernel is `w0 + gate * delta`.

    Supports everything `keras.layers.Conv2D` does at inference: strides,
    `"valid"`/`"same"` padding, dilation, groups, data format, activation and
    an optional bias. Create it from a built `Conv2D` with
    `ReparamConv2D.from_plain_layer(layer)` and load the weights with
    `set_pretrained_weights(layer.kernel, layer.bias)`, or let
    `swr_keras.reparametrize` do both for a whole model.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of 2 ints.
        strides: int or tuple of 2 ints.
        padding: `"valid"` or `"same"`.
        data_format: `"channels_last"` or `"channels_first"`.
        dilation_rate: int or tuple of 2 ints.
        groups: number of channel groups (input channels must be divisible).
        activation: activation after the bias.
        use_bias: whether the layer has a (frozen, pre-trained) bias.

    Input shape: 4D tensor, `[batch, rows, cols, channels]` for
    `channels_last`. Output shape: as `Conv2D`.
    """

    layer_arguments = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "data_format",
        "dilation_rate",
        "groups",
    )
    plain_layer_class = keras.layers.Conv2D

    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        data_format=None,
        dilation_rate=(1, 1),
        groups=1,
        activation=None,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.data_format = _data_format(data_format)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError(
                f"filters must be divisible by groups. Received: filters={filters}, groups={groups}"
            )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _channels(self, input_shape):
        axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[axis]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"Layer '{self.name}' needs a known number of input channels "
                f"divisible by groups={self.groups}. Received input shape "
                f"{tuple(input_shape)}."
            )
        return channels

    def kernel_shape(self, input_shape):
        channels = self._channels(input_shape)
        return self.kernel_size + (channels // self.groups, self.filters)

    def bias_size(self, input_shape):
        return self.filters

    def bias_shape_for(self, outputs):
        if self.data_format == "channels_last":
            return (1, 1, 1, self.filters)
        return (1, self.filters, 1, 1)

    def apply_kernel(self, inputs, kernel):
        return ops.conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )


def _pair(value, name):
    """Normalises an int or a sequence of 2 ints to a tuple of 2 ints."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or 2 ints. Received: {name}={value}")
    return value


def _padding(padding):
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f'padding must be "valid" or "same". Received: padding={padding!r}')
    return padding


def _data_format(data_format):
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            'data_format must be "channels_last" or "channels_first". '
            f"Received: data_format={data_format!r}"
        )
    return data_format
