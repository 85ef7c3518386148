"""Rep-Net (Yang et al., 2022): a frozen backbone reprogrammed by small side modules.

As in ASU-ESIC-FAN-Lab/RepNet (`repnet/model/reprogram.py`,
`tiny_train_repnet.py`): a side module ("program") reads the input of the
first block of each stage and its output is added to that block's output;
the backbone's weights are frozen except its biases (`tiny-reprogram+bias`;
in the backbones here the only biases are BN offsets), and the side modules
and the new classifier train. A side module is `ProgramModule`: average pool
2x2 -> k x k grouped conv (weight-standardised) -> BN -> ReLU -> 1x1 conv
(weight-standardised) -> BN with zero-initialised scale -> bilinear resize to
the block's output size. Its zero scale makes it output exactly 0 at first,
so the model starts as the backbone. As in the official training (PyTorch
`train()` mode), the backbone's BN statistics keep updating, so a task
stores them.

Stages are `blocks.block_layout`'s: BC-ResNet's 4 stages (4 side modules),
Res15 split into 2 stages of 3 residual blocks (2 side modules).
"""

import keras
import tensorflow as tf
from keras import ops

from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.models import task_model as task_model_lib
from swr_keras.models.batch_norm import FusedBatchNormalization
from swr_keras.module_methods import blocks as blocks_lib

KERNEL_SIZE = 5
GROUPS = 2
# `ProgramModule(expand=)`: the middle width is make_divisible(in * expand).
# Its default is 1; the official code's setting for ResNets (commented in
# `reprogram.py`) is 1/4, the one that sizes BC-ResNet-8's modules as the
# paper's Table 1 (#Param. 2.26x).
EXPAND = 0.25
# `ofa`'s BN epsilon in the program modules and weight-standardisation epsilon.
PROGRAM_BN_EPSILON = 1e-3
WS_EPSILON = 1e-5
CHANNEL_DIVISOR = 8


@keras.saving.register_keras_serializable(package="swr_keras")
class WeightStandardizedConv2D(keras.layers.Conv2D):
    """`Conv2D` whose kernel is standardised per output channel before use.

    `(w - mean(w)) / (std(w) + epsilon)` over each filter's taps and input
    channels, with the unbiased standard deviation, as `ofa`'s `MyConv2d`
    that the official Rep-Net applies to its side modules.

    Args:
        ws_epsilon: added to the standard deviation.
        Every other argument: as `keras.layers.Conv2D`.
    """

    def __init__(self, *args, ws_epsilon=WS_EPSILON, **kwargs):
        super().__init__(*args, **kwargs)
        self.ws_epsilon = float(ws_epsilon)

    def convolution_op(self, inputs, kernel):
        mean = ops.mean(kernel, axis=(0, 1, 2), keepdims=True)
        centred = kernel - mean
        count = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
        variance = ops.sum(ops.square(centred), axis=(0, 1, 2), keepdims=True) / max(count - 1, 1)
        return super().convolution_op(inputs, centred / (ops.sqrt(variance) + self.ws_epsilon))

    def get_config(self):
        return {**super().get_config(), "ws_epsilon": self.ws_epsilon}


@keras.saving.register_keras_serializable(package="swr_keras")
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of `inputs[0]` to the spatial size of `inputs[1]`.

    Half-pixel centres, as PyTorch's `F.upsample(mode="bilinear")` without
    `align_corners`. The target size is read at run time, so inputs of any
    length work.
    """

    def call(self, inputs):
        source, target = inputs
        size = tf.shape(target)[1:3]
        return ops.cast(tf.image.resize(source, size, method="bilinear"), source.dtype)

    def compute_output_shape(self, input_shape):
        source, target = input_shape
        return (source[0], target[1], target[2], source[3])


def make_divisible(value, divisor=CHANNEL_DIVISOR):
    """`ofa`'s `make_divisible`: the nearest multiple of `divisor`, not 10 % below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def program_module(inputs, target, *, kernel_size=KERNEL_SIZE, groups=GROUPS, expand=EXPAND, name):
    """One side module from `inputs` (a block's input) to `target`'s shape (its output).

    The middle width is `make_divisible(int(in_channels * expand))`, as the
    official `ProgramModule`; `groups` falls back to 1 where it does not
    divide both widths (Res15's 45 maps).
    """
    channels = inputs.shape[-1]
    middle = make_divisible(int(channels * expand))
    if channels % groups or middle % groups:
        groups = 1
    initializer = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")
    x = keras.layers.AveragePooling2D(2, name=f"{name}_pool")(inputs)
    x = WeightStandardizedConv2D(
        middle,
        kernel_size,
        padding="same",
        groups=groups,
        use_bias=False,
        kernel_initializer=initializer,
        name=f"{name}_conv1",
    )(x)
    x = FusedBatchNormalization(epsilon=PROGRAM_BN_EPSILON, name=f"{name}_bn1")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = WeightStandardizedConv2D(
        target.shape[-1], 1, use_bias=False, kernel_initializer=initializer, name=f"{name}_conv2"
    )(x)
    x = FusedBatchNormalization(
        epsilon=PROGRAM_BN_EPSILON, gamma_initializer="zeros", name=f"{name}_final_bn"
    )(x)
    return ResizeLike(name=f"{name}_resize")([x, target])


def build_repnet(model, *, kernel_size=KERNEL_SIZE, groups=GROUPS, expand=EXPAND):
    """Returns the Rep-Net twin of a task model.

    The backbone is cloned with its weights; a side module is added to the
    first block of every stage. Trainable: the side modules, the backbone's
    BN offsets (beta) and the classifier; the backbone's BN statistics keep
    updating in training. `model` is not changed.

    Args:
        model: a task model of `swr_keras.models` with a residual feature
            extractor (BCResNet, Res15).
        kernel_size: of the side modules' grouped convolution (5 officially).
        groups: of that convolution (2 officially).
        expand: the side modules' middle width over their input width
            (official `ProgramModule` default 1, its ResNet setting 1/4).

    Returns:
        A new Functional task model.
    """
    source = task_model_lib.feature_extractor(model)
    layout = blocks_lib.block_layout(source)
    inputs = keras.Input(source.inputs[0].shape[1:], name=source.inputs[0].name)
    backbone = [
        blocks_lib.clone_with_weights(keras.Model(source.inputs[0], layout.boundaries[0]), "stem")
    ]
    x = backbone[0](inputs)
    for index in range(layout.num_blocks):
        block = blocks_lib.clone_with_weights(
            layout.block_model(index, f"b{index}"), f"block{index}"
        )
        backbone.append(block)
        output = block(x)
        if index in layout.stage_starts:
            side = program_module(
                x,
                output,
                kernel_size=kernel_size,
                groups=groups,
                expand=expand,
                name=f"program{index}",
            )
            output = keras.layers.Add(name=f"block{index}_reprogrammed")([output, side])
        x = output
    head = blocks_lib.clone_with_weights(
        keras.Model(layout.boundaries[-1], source.outputs[0]), "head"
    )
    backbone.append(head)
    for part in backbone:
        _freeze_all_but_bias(part)
    features = keras.Model(inputs, head(x), name=task_model_lib.FEATURE_EXTRACTOR)
    classifier = task_model_lib.classifier(model)
    task = task_model_lib.build_task_model(
        features,
        classifier.units,
        classifier_activation=classifier.activation,
        name=f"{model.name}_repnet",
    )
    task_model_lib.classifier(task).set_weights(classifier.get_weights())
    return task


def _freeze_all_but_bias(model):
    """Freezes every weight of a backbone part but BN beta; BN statistics keep updating."""
    for layer in iter_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            layer.trainable = False
    for layer in batch_norm_layers(model):
        if layer.gamma is not None:
            layer.gamma.trainable = False


def program_modules(model):
    """Lists the layers of the side modules of a Rep-Net model."""
    features = task_model_lib.feature_extractor(model)
    return [layer for layer in features.layers if layer.name.startswith("program")]
