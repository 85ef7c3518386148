"""Res15 (Tang & Lin, 2018): a dilated residual network for keyword spotting.

Layer for layer `res15` of the reference implementation (castorini/honk,
`utils/model.py`), in Keras' channels-last layout: the input is
`[batch, 40 features, time, 1]`. The reference reads `[time, features]`;
every convolution is a square 3x3 kernel with equal dilation on both axes,
so the orientation changes neither the parameters nor the multiplies.
"""

import keras

from swr_keras.models.batch_norm import FusedBatchNormalization
from swr_keras.models.task_model import FEATURE_EXTRACTOR, build_task_model
from swr_keras.validation import check_positive_int

NUM_MAPS = 45
NUM_LAYERS = 13  # dilated 3x3 convolutions after conv0


def res15_dilation(layer):
    """Dilation of the 1-based `layer`-th conv after conv0: 1,1,1,2,2,2,...,16."""
    return 2 ** ((layer - 1) // 3)


def Res15(
    num_classes=12,
    *,
    num_features=40,
    num_maps=NUM_MAPS,
    classifier_activation=None,
    name="res15",
):
    """Builds Res15 as a task model: feature extractor + classifier.

    conv0 (3x3, 1 -> 45 maps) and ReLU, then 13 dilated 3x3 convolutions
    (45 -> 45, dilation 1,1,1,2,2,2,4,4,4,8,8,8,16 with equal padding), each
    followed by ReLU, a residual addition of the previous block's output
    after every second convolution, and batch normalisation without scale
    or offset. The feature maps are averaged over time and frequency and a
    `Dense` classifier with bias follows. No convolution has a bias; BN uses
    the reference's epsilon 1e-5 and momentum 0.1 (Keras 0.9).

    For 12 classes: 237,882 learnable parameters (Keras' `count_params()`
    adds 1,170 BN moving statistics) and 14 convolutions before the
    classifier.

    Args:
        num_classes: outputs of the classifier.
        num_features: feature bins of the input (40 MFCCs or mel bins).
        num_maps: feature maps of every convolution.
        classifier_activation: `None` for logits or e.g. `"softmax"`.
        name: model name.

    Input shape: `[batch, num_features, time, 1]`, any time length.
    Output shape: `[batch, num_classes]`.
    """
    features = res15_feature_extractor(num_features=num_features, num_maps=num_maps)
    return build_task_model(
        features, num_classes, classifier_activation=classifier_activation, name=name
    )


def res15_feature_extractor(*, num_features=40, num_maps=NUM_MAPS):
    """The feature extractor `f` of Res15: features -> `num_maps` averages."""
    check_positive_int("num_features", num_features)
    check_positive_int("num_maps", num_maps)
    inputs = keras.Input((num_features, None, 1), name="features")
    x = keras.layers.Conv2D(num_maps, 3, padding="same", use_bias=False, name="conv0")(inputs)
    x = keras.layers.ReLU(name="relu0")(x)
    block_input = x
    for layer in range(1, NUM_LAYERS + 1):
        dilation = res15_dilation(layer)
        x = keras.layers.Conv2D(
            num_maps,
            3,
            padding="same",
            dilation_rate=dilation,
            use_bias=False,
            name=f"conv{layer}",
        )(x)
        x = keras.layers.ReLU(name=f"relu{layer}")(x)
        if layer % 2 == 0:
            x = keras.layers.Add(name=f"add{layer}")([x, block_input])
            block_input = x
        x = FusedBatchNormalization(center=False, scale=False, name=f"bn{layer}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name=FEATURE_EXTRACTOR)
