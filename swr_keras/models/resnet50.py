"""ResNet-50 for ImageNet-to-Sketch: `keras.applications.ResNet50` (v1) or torchvision's v1.5.

The two differ in one place: in the first block of stages 3-5, v1 (He et
al., 2016, and `keras.applications`) puts the stride 2 on the block's first
1x1 convolution, v1.5 (torchvision's `resnet50`, which TAPS and the paper's
image experiments used) on its 3x3 convolution. Both have the same weights
shape for shape, so each loads the other's file, but the features differ:
use the variant the weights were trained for. Keras' ImageNet weights are
v1 (BGR inputs minus the mean pixel, "caffe" normalisation); torchvision's
are v1.5 (RGB, ImageNet mean/std). `load_torchvision_weights` reads
torchvision's `state_dict` saved as `.npz`.
"""

import os
import warnings

import keras
import numpy as np

from swr_keras.models.task_model import FEATURE_EXTRACTOR, build_task_model

IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + IMAGENET_WEIGHTS_FILE
)


def resnet50(
    num_classes,
    weights=None,
    *,
    input_shape=(224, 224, 3),
    classifier_activation=None,
    name="resnet50",
    variant="v1",
):
    """Builds ResNet-50 as a task model: feature extractor + classifier.

    The feature extractor is `keras.applications.ResNet50(include_top=False,
    pooling="avg")` (53 convolutions, 2048 features) and the classifier a
    new `Dense` with bias. Inputs are images preprocessed as
    `keras.applications.resnet50.preprocess_input` does (BGR, ImageNet mean
    subtracted), the convention of the ImageNet weights.

    Nothing is downloaded: `weights` is `None` (random initialisation) or the
    path of a local weights file for the feature extractor, e.g. Keras'
    ImageNet file `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`
    (download it once from `IMAGENET_WEIGHTS_URL`), a `.weights.h5` file
    saved from a feature extractor of this architecture, or (with
    `variant="v1.5"`) torchvision's ImageNet `state_dict` as `.npz`
    (`np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})`).

    Args:
        num_classes: outputs of the classifier.
        weights: `None` or the path of a local weights file.
        input_shape: `(height, width, 3)`; smaller images (down to 32x32)
            work, e.g. for tests.
        classifier_activation: `None` for logits or e.g. `"softmax"`.
        name: model name.
        variant: `"v1"` (`keras.applications`) or `"v1.5"` (torchvision's
            stride placement); see the module docstring.

    Returns:
        A Functional model `classifier(feature_extractor(images))`.
    """
    if weights is not None:
        weights = os.fspath(weights)
        if weights == "imagenet":
            raise ValueError(
                "resnet50 never downloads weights. Received: weights='imagenet'. Download "
                f"{IMAGENET_WEIGHTS_URL} once and pass its local path as weights."
            )
        if not os.path.isfile(weights):
            raise ValueError(
                f"weights must be None or the path of a local weights file. Received: "
                f"weights={weights!r}, which is not a file. Check the path, or download "
                f"{IMAGENET_WEIGHTS_URL} for the ImageNet weights."
            )
    if variant not in VARIANTS:
        raise ValueError(
            f"variant must be one of {', '.join(VARIANTS)}. Received: variant={variant!r}"
        )
    if variant == "v1":
        backbone = keras.applications.ResNet50(
            include_top=False,
            weights=None,
            input_shape=tuple(input_shape),
            pooling="avg",
        )
    else:
        backbone = _resnet50_v15(tuple(input_shape))
    if weights is not None and weights.endswith(".npz"):
        load_torchvision_weights(backbone, weights)
    elif weights is not None:
        _load_weights(backbone, weights)
    features = keras.Model(backbone.input, backbone.output, name=FEATURE_EXTRACTOR)
    return build_task_model(
        features, num_classes, classifier_activation=classifier_activation, name=name
    )


VARIANTS = ("v1", "v1.5")
STAGES = ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3))  # (stage, width, blocks)
_BN_EPSILON = 1.001e-5  # keras.applications'; torchvision's 1e-5 differs by 1e-8


def _resnet50_v15(input_shape):
    """`keras.applications.ResNet50(include_top=False, pooling="avg")` with v1.5's strides.

    Same layers, names and weight shapes as Keras' v1 (so either file
    loads); the stride 2 of a stage's first block sits on the 3x3
    convolution, padded by one pixel on every side as PyTorch pads.
    """
    inputs = keras.Input(input_shape)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = keras.layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, width, blocks in STAGES:
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _bottleneck_v15(x, width, stride, block == 1, f"conv{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, x, name="resnet50v1_5")


def _bottleneck_v15(x, width, stride, projection, name):
    def bn(y, suffix):
        return keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}_{suffix}_bn")(y)

    if projection:
        shortcut = keras.layers.Conv2D(4 * width, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = bn(shortcut, 0)
    else:
        shortcut = x
    x = keras.layers.Conv2D(width, 1, name=f"{name}_1_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(bn(x, 1))
    if stride == 1:
        x = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_2_conv")(x)
    else:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
        x = keras.layers.Conv2D(width, 3, strides=stride, name=f"{name}_2_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(bn(x, 2))
    x = bn(keras.layers.Conv2D(4 * width, 1, name=f"{name}_3_conv")(x), 3)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def torchvision_names():
    """`{keras layer name: torchvision module name}` of every conv and BN of ResNet-50."""
    names = {"conv1_conv": "conv1", "conv1_bn": "bn1"}
    for stage, _, blocks in STAGES:
        for block in range(blocks):
            keras_block, torch_block = f"conv{stage}_block{block + 1}", f"layer{stage - 1}.{block}"
            for k in (1, 2, 3):
                names[f"{keras_block}_{k}_conv"] = f"{torch_block}.conv{k}"
                names[f"{keras_block}_{k}_bn"] = f"{torch_block}.bn{k}"
            if block == 0:
                names[f"{keras_block}_0_conv"] = f"{torch_block}.downsample.0"
                names[f"{keras_block}_0_bn"] = f"{torch_block}.downsample.1"
    return names


def load_torchvision_weights(backbone, path):
    """Assigns torchvision's ResNet-50 `state_dict` (an `.npz` of its arrays) to `backbone`.

    Convolution kernels go from PyTorch's `[out, in, h, w]` to Keras' `[h,
    w, in, out]`; torchvision's convolutions have no bias, so Keras' are set
    to zero; BN weight/bias/running statistics become gamma/beta/moving
    statistics. Every conv and BN must be found in the file.
    """
    arrays = np.load(path)
    layers = {layer.name: layer for layer in backbone.layers}
    for keras_name, torch_name in torchvision_names().items():
        layer = layers[keras_name]
        keys = (
            ("weight",)
            if isinstance(layer, keras.layers.Conv2D)
            else ("weight", "bias", "running_mean", "running_var")
        )
        for key in keys:
            if f"{torch_name}.{key}" not in arrays.files:
                raise ValueError(
                    f"{path} has no '{torch_name}.{key}': a torchvision ResNet-50 state_dict "
                    "saved with np.savez was expected."
                )
        try:
            if isinstance(layer, keras.layers.Conv2D):
                kernel = np.transpose(arrays[f"{torch_name}.weight"], (2, 3, 1, 0))
                layer.set_weights([kernel, np.zeros(layer.filters, np.float32)])
            else:
                layer.set_weights(
                    [
                        arrays[f"{torch_name}.{key}"]
                        for key in ("weight", "bias", "running_mean", "running_var")
                    ]
                )
        except ValueError as error:
            raise ValueError(
                f"{path}: {torch_name} does not fit {keras_name} ({_first_line(error)})"
            ) from None


def _load_weights(backbone, path):
    """Loads `path` into `backbone`, refusing files that match only in part.

    Keras skips the parts of a `.weights.h5` file it cannot match with a
    warning and keeps the random weights there; a half-loaded backbone is
    worse than an error.
    """
    fix = (
        "Pass Keras' ImageNet 'notop' file or weights saved from "
        "swr_keras.models.feature_extractor(resnet50(...))."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            backbone.load_weights(path)
        except Exception as error:  # Keras raises several types for a wrong file.
            raise ValueError(
                f"Could not load ResNet-50 feature extractor weights from {path!r}: "
                f"{_first_line(error)} {fix}"
            ) from None
    skipped = [w for w in caught if "Skipping" in str(w.message) or "mismatch" in str(w.message)]
    if skipped:
        raise ValueError(
            f"Could not load ResNet-50 feature extractor weights from {path!r}: the file "
            f"does not match its layers ({_first_line(skipped[0].message)}) {fix}"
        )


def _first_line(message):
    """The first sentence of a (possibly multi-line) Keras message."""
    return str(message).strip().splitlines()[0].split(". ")[0].rstrip(":.") + "."
