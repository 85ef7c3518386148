"""The split of a task model into feature extractor `f` and classifier `g`.

Every backbone in `swr_keras.models` is a Functional model of two parts, in
the paper's notation: the feature extractor `f` -- a nested Functional model
named `"feature_extractor"` that maps the input to a feature vector -- and
the task classifier `g` -- one `Dense` layer named `"classifier"` with a bias.
A new task keeps `f` and swaps `g` (`with_new_classifier`), and
`swr_keras.reparametrize`, whose default `exclude="classifier"` is the last
layer, reparametrises exactly `f`.
"""

import keras

from swr_keras.validation import check_positive_int

FEATURE_EXTRACTOR = "feature_extractor"
CLASSIFIER = "classifier"


def build_task_model(feature_extractor, num_classes, *, classifier_activation=None, name=None):
    """Puts a new task classifier `g` on top of the feature extractor `f`.

    Args:
        feature_extractor: a built Functional model mapping the input to a
            `[batch, features]` vector; it is used as is (not copied).
        num_classes: classes of the task.
        classifier_activation: `None` for logits (pair with a loss built with
            `from_logits=True`) or e.g. `"softmax"`.
        name: name of the returned model.

    Returns:
        A Functional model `g(f(x))` whose layers are the input, `f` and `g`.
    """
    check_positive_int("num_classes", num_classes)
    if len(feature_extractor.outputs) != 1 or len(feature_extractor.outputs[0].shape) != 2:
        raise ValueError(
            f"The feature extractor '{feature_extractor.name}' must have one output of "
            f"shape [batch, features]. Received outputs "
            f"{[tuple(t.shape) for t in feature_extractor.outputs]}; end it with a "
            "global pooling layer."
        )
    inputs = keras.Input(feature_extractor.inputs[0].shape[1:], name="inputs")
    features = feature_extractor(inputs)
    outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name=CLASSIFIER)(
        features
    )
    return keras.Model(inputs, outputs, name=name)


def feature_extractor(model):
    """Returns the feature extractor `f` of a model built by `build_task_model`."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(
            f"Model '{model.name}' holds {len(nested)} nested models; a task model holds "
            "exactly one, its feature extractor. Build it with swr_keras.models "
            "(BCResNet, Res15, resnet50) or swr_keras.models.build_task_model."
        )
    return nested[0]


def classifier(model):
    """Returns the task classifier `g` (the final `Dense`) of a task model."""
    layer = model.layers[-1]
    if not isinstance(layer, keras.layers.Dense):
        raise ValueError(
            f"Model '{model.name}' does not end with a Dense classifier (its last layer "
            f"is '{layer.name}', a {type(layer).__name__}). Build it with "
            "swr_keras.models.build_task_model."
        )
    return layer


_KEEP = object()


def with_new_classifier(model, num_classes, *, classifier_activation=_KEEP):
    """Returns a copy of `model` whose classifier `g` is new, for another task.

    The feature extractor is copied with its trained weights (the returned
    model shares no variable with `model`); the classifier is freshly
    initialised with `num_classes` outputs. This is how a multi-lingual
    backbone (e.g. 22 classes) becomes the starting point of a 12-class task.

    Args:
        model: a task model built by `swr_keras.models`.
        num_classes: classes of the new task.
        classifier_activation: activation of the new classifier; by default
            that of the old one.

    Returns:
        A new Functional model with the same input and feature extractor.
    """
    check_positive_int("num_classes", num_classes)
    old_classifier = classifier(model)
    if classifier_activation is _KEEP:
        classifier_activation = old_classifier.activation
    source = feature_extractor(model)
    copy = keras.models.clone_model(source, recursive=True)
    copy.set_weights(source.get_weights())
    return build_task_model(
        copy, num_classes, classifier_activation=classifier_activation, name=model.name
    )
