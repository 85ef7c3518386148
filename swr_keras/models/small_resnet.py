"""A small ResNet for small images: the backbone of the embedded image example.

ResNet-18's design (He et al., 2016) at a tenth of its width and a quarter
of its depth, for 48x48 inputs: a 3x3 stem, then one basic block per stage
(two 3x3 convolutions with BN, `relu(F(x) + shortcut(x))`), the stages
halving the resolution and doubling the width, global average pooling.
A 1x1 convolution with BN is the shortcut where a block changes the
shape, as in ResNet's option B. Every block is a residual block in the
sense of `swr_keras.module_methods.blocks`, so SpotTune and Rep-Net apply.
"""

import keras

from swr_keras.models.task_model import FEATURE_EXTRACTOR, build_task_model
from swr_keras.validation import check_positive_int

WIDTHS = (16, 32, 64, 128)
BLOCKS = (1, 1, 1, 1)


def SmallResNet(
    num_classes,
    *,
    input_shape=(48, 48, 3),
    widths=WIDTHS,
    blocks=BLOCKS,
    classifier_activation=None,
    name="small_resnet",
):
    """Builds the small ResNet as a task model: feature extractor + classifier.

    With the default widths and 10 classes: 12 convolutions (stem, 8 in the
    blocks, 3 shortcuts), 308,826 learnable parameters (Keras'
    `count_params()` adds 1,440 BN moving statistics).

    Args:
        num_classes: outputs of the classifier.
        input_shape: `(height, width, 3)` of the normalised images.
        widths: channels of each stage; the stem has the first stage's.
        blocks: basic blocks per stage (ResNet-18: 2 each).
        classifier_activation: `None` for logits or e.g. `"softmax"`.
        name: model name.

    Input shape: `[batch, height, width, 3]`. Output shape: `[batch, num_classes]`.
    """
    features = small_resnet_feature_extractor(input_shape=input_shape, widths=widths, blocks=blocks)
    return build_task_model(
        features, num_classes, classifier_activation=classifier_activation, name=name
    )


def small_resnet_feature_extractor(*, input_shape=(48, 48, 3), widths=WIDTHS, blocks=BLOCKS):
    """The feature extractor `f`: images -> `widths[-1]` pooled features."""
    if len(widths) != len(blocks) or not widths:
        raise ValueError(
            f"widths and blocks need one entry per stage. Received: widths={widths}, "
            f"blocks={blocks}"
        )
    for value in (*widths, *blocks):
        check_positive_int("widths and blocks", value)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = _conv_bn(inputs, widths[0], 3, 1, "stem")
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, (width, count) in enumerate(zip(widths, blocks), start=1):
        for block in range(1, count + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = _basic_block(x, width, stride, f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name=FEATURE_EXTRACTOR)


def _conv_bn(x, width, kernel_size, stride, name):
    x = keras.layers.Conv2D(
        width, kernel_size, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    # PyTorch's BN defaults, as the reference ResNets train with.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)


def _basic_block(x, width, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != width:
        shortcut = _conv_bn(x, width, 1, stride, f"{name}_shortcut")
    y = _conv_bn(x, width, 3, stride, f"{name}_1")
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, width, 3, 1, f"{name}_2")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)
