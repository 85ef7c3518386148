"""Residual Adapter (Rebuffi et al., 2018), the parallel form.

In srebuffi/residual_adapters (`models.py`, mode `parallel_adapters`) every
frozen 3x3 convolution of the shared network gets a task-specific 1x1
convolution with the same stride on the same input, and the two outputs are
summed before the task's own batch normalisation:
`y = BN_task(conv3x3(x) + conv1x1_task(x))`. `add_residual_adapters` does
that to every convolution of a task model's feature extractor; the adapter
starts at zero, so the transformed model computes exactly what the backbone
computes until it trains.
"""

import keras

from swr_keras.model_walk import clone_replacing, iter_layers
from swr_keras.models import task_model as task_model_lib

DEPTHWISE_ADAPTERS = ("channelwise", "pointwise")


@keras.saving.register_keras_serializable(package="swr_keras")
class ParallelAdapter(keras.layers.Layer):
    """A frozen convolution with a task-specific 1x1 convolution beside it.

    Computes `conv(x) + adapter(crop(x))`. `adapter` is a 1x1 convolution
    with a zero-initialised kernel applied with `conv`'s stride, so the layer
    equals `conv` until the adapter trains. `crop` aligns the adapter with the
    centre tap of `conv`: a `"valid"` convolution of kernel `k` and dilation
    `d` reads its input `d * (k - 1) / 2` positions after where its output
    position maps (the backbones pad explicitly with `ZeroPadding2D` and use
    `"valid"`), so the adapter reads the input from that offset on. A
    `"same"` convolution needs no crop (stride 1 only).

    For a `Conv2D` the adapter maps the input channels to the output
    channels (Rebuffi's `conv1x1(in_planes, planes, stride)`). For a
    `DepthwiseConv2D` `depthwise_adapter` decides: `"channelwise"` (a
    per-channel 1x1 scale, i.e. a 1x1 `DepthwiseConv2D`, which keeps the
    layer depthwise) or `"pointwise"` (a full 1x1 `Conv2D`, which mixes the
    channels where the backbone does not).

    The two convolutions are separate sub-layers, so `swr_keras.cost` counts
    the adapter's multiplies next to the convolution's.

    Args:
        conv: the `Conv2D` or `DepthwiseConv2D` to wrap (or its serialised
            config); a layer without bias or activation, as in the backbones.
        depthwise_adapter: `"channelwise"` or `"pointwise"`; used for a
            depthwise `conv` only.

    Input shape: that of `conv`. Output shape: that of `conv`.
    """

    def __init__(self, conv, depthwise_adapter="channelwise", **kwargs):
        super().__init__(**kwargs)
        if isinstance(conv, dict):
            conv = keras.saving.deserialize_keras_object(conv)
        if type(conv) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
            raise ValueError(
                "ParallelAdapter wraps a keras.layers.Conv2D or DepthwiseConv2D. "
                f"Received: conv={conv!r}"
            )
        if conv.use_bias or conv.activation is not keras.activations.linear:
            raise ValueError(
                f"ParallelAdapter needs a convolution without bias and activation (the adapter "
                f"is summed before the following BN). Received: conv '{conv.name}' with "
                f"use_bias={conv.use_bias}, activation={conv.activation.__name__}"
            )
        if conv.padding == "same" and max(conv.strides) > 1:
            raise ValueError(
                f"ParallelAdapter aligns a strided convolution only with padding='valid' "
                f"(pad with ZeroPadding2D first). Received: conv '{conv.name}' with "
                f"padding='same', strides={conv.strides}"
            )
        if depthwise_adapter not in DEPTHWISE_ADAPTERS:
            raise ValueError(
                f"depthwise_adapter must be one of {DEPTHWISE_ADAPTERS}. "
                f"Received: depthwise_adapter={depthwise_adapter!r}"
            )
        self.conv = conv
        self.depthwise_adapter = depthwise_adapter
        self.depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
        if self.depthwise and depthwise_adapter == "channelwise":
            self.adapter = keras.layers.DepthwiseConv2D(
                1,
                use_bias=False,
                depthwise_initializer="zeros",
                name=f"{self.name}_adapter",
            )
        else:
            filters = None if self.depthwise else conv.filters
            self._pointwise_filters = filters
            self.adapter = None  # built in `build`, once the input width is known.
        self._crop = [
            (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
            if conv.padding == "valid"
            else (0, 0)
            for k, d in zip(conv.kernel_size, conv.dilation_rate)
        ]

    def build(self, input_shape):
        if self.adapter is None:
            filters = self._pointwise_filters or input_shape[-1] * self.conv.depth_multiplier
            self.adapter = keras.layers.Conv2D(
                filters,
                1,
                use_bias=False,
                kernel_initializer="zeros",
                name=f"{self.name}_adapter",
            )
        if not self.conv.built:
            self.conv.build(input_shape)
        self.adapter.build(self.conv.compute_output_shape(input_shape)[:-1] + (input_shape[-1],))

    def call(self, inputs):
        (top, bottom), (left, right) = self._crop
        rows, columns = self.conv.strides
        # The stride is taken by the slice, not by the 1x1 convolution: the
        # same values, and training a strided 1x1 convolution beside
        # BC-ResNet's stem (strides (2, 1), one input channel, 101 frames)
        # crashed TensorFlow's CPU kernels with a segmentation fault.
        sampled = inputs[
            :,
            top : (-bottom if bottom else None) : rows,
            left : (-right if right else None) : columns,
            :,
        ]
        return self.conv(inputs) + self.adapter(sampled)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "conv": keras.saving.serialize_keras_object(self.conv),
            "depthwise_adapter": self.depthwise_adapter,
        }


def add_residual_adapters(
    model, *, depthwise_adapter="channelwise", adapt_pointwise=False, adapt_time_frequency=False
):
    """Returns a copy of a task model with a parallel adapter beside every convolution.

    Every `Conv2D` and `DepthwiseConv2D` of the feature extractor (the stem
    included, as in the official code's `pre_layers_conv`) becomes a
    `ParallelAdapter` around a frozen copy of itself. Batch normalisation
    layers train (gamma, beta and statistics: "BN per task"), as does the
    classifier; nothing else does. The weights are copied; `model` is not
    changed.

    Args:
        model: a task model of `swr_keras.models` (feature extractor +
            classifier), e.g. after `with_new_classifier`.
        depthwise_adapter: `"channelwise"` or `"pointwise"`; see
            `ParallelAdapter`.
        adapt_pointwise: also adapt every 1x1 convolution.
        adapt_time_frequency: also adapt the 1x1 convolutions that read
            time-frequency maps (an input more than one row high):
            BC-ResNet's transition convs, not the 1x1 convs after its
            frequency pooling; Res15 has no 1x1 convolution. With it,
            BC-ResNet-8's adapters are the size of the paper's Table 1.

    Returns:
        A new Functional task model.

    Example:

    ```python
    adapted = add_residual_adapters(with_new_classifier(pretrained, 12))
    ```
    """
    if depthwise_adapter not in DEPTHWISE_ADAPTERS:
        raise ValueError(
            f"depthwise_adapter must be one of {DEPTHWISE_ADAPTERS}. "
            f"Received: depthwise_adapter={depthwise_adapter!r}"
        )
    source = task_model_lib.feature_extractor(model)

    def replacement(layer):
        if type(layer) in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D) and (
            adapt_pointwise
            or max(layer.kernel_size) > 1
            or (adapt_time_frequency and _reads_time_frequency(layer))
        ):
            conv = layer.__class__.from_config(layer.get_config())
            return ParallelAdapter(conv, depthwise_adapter, name=f"{layer.name}_adapted")
        return None

    features, pairs = clone_replacing(source, replacement)
    for original, new in pairs:
        if isinstance(new, ParallelAdapter):
            new.conv.set_weights(original.get_weights())
            new.conv.trainable = False
        elif isinstance(new, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            new.trainable = False
    adapted = task_model_lib.build_task_model(
        features,
        task_model_lib.classifier(model).units,
        classifier_activation=task_model_lib.classifier(model).activation,
        name=f"{model.name}_adapters",
    )
    task_model_lib.classifier(adapted).set_weights(task_model_lib.classifier(model).get_weights())
    return adapted


def _reads_time_frequency(layer):
    """True for a layer whose input has more than one row (frequency bin)."""
    rows = layer.input.shape[1]
    return rows is None or rows > 1


def adapters(model):
    """Lists the `ParallelAdapter` layers of `model` in graph order."""
    return [layer for layer in iter_layers(model) if isinstance(layer, ParallelAdapter)]
