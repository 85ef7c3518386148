"""ResNet-50 for ImageNet-to-Sketch, on `keras.applications.ResNet50`."""

import os
import warnings

import keras

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
    (download it once from `IMAGENET_WEIGHTS_URL`) or a `.weights.h5` file
    saved from a feature extractor of this architecture.

    Args:
        num_classes: outputs of the classifier.
        weights: `None` or the path of a local weights file.
        input_shape: `(height, width, 3)`; smaller images (down to 32x32)
            work, e.g. for tests.
        classifier_activation: `None` for logits or e.g. `"softmax"`.
        name: model name.

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
    backbone = keras.applications.ResNet50(
        include_top=False,
        weights=None,
        input_shape=tuple(input_shape),
        pooling="avg",
    )
    if weights is not None:
        _load_weights(backbone, weights)
    features = keras.Model(backbone.input, backbone.output, name=FEATURE_EXTRACTOR)
    return build_task_model(
        features, num_classes, classifier_activation=classifier_activation, name=name
    )


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
