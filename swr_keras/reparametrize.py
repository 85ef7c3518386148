"""`reparametrize`: turn a pre-trained model into its SWR twin."""

import logging

import keras

from swr_keras.layers import ReparamConv2D, ReparamDense, ReparamDepthwiseConv2D
from swr_keras.model_walk import (
    clone_replacing,
    iter_layers,
    set_batch_norm_affine_trainable,
)
from swr_keras.validation import check_built

# Plain Keras layer class -> its reparametrised twin. Looked up by exact class
# (not isinstance) so that a subclass with a different `call` is never
# silently replaced by a layer that computes something else.
REPARAM_TWINS = {
    keras.layers.Conv2D: ReparamConv2D,
    keras.layers.DepthwiseConv2D: ReparamDepthwiseConv2D,
    keras.layers.Dense: ReparamDense,
}

CLASSIFIER = "classifier"


def reparametrizable_layers(model):
    """Lists the Conv2D / DepthwiseConv2D / Dense layers of `model` in graph order."""
    return [layer for layer in iter_layers(model) if type(layer) in REPARAM_TWINS]


def reparametrize(model, *, exclude=CLASSIFIER, bn_affine=False, twins=None):
    """Returns the SWR twin of a pre-trained Functional or Sequential model.

    Every `Conv2D`, `DepthwiseConv2D` and `Dense` of the feature extractor
    (nested Functional/Sequential models included) is replaced by its
    `Reparam*` twin holding the pre-trained kernel as frozen `w0` and a
    zero-initialised delta, so the returned model computes exactly what
    `model` computes. Layers named by `exclude` -- by default the task
    classifier, i.e. the last reparametrisable layer in graph order -- are
    copied unchanged and stay trainable.

    Batch normalisation layers (also those inside custom layers) keep updating
    their moving mean and variance in training, while gamma and beta are
    frozen unless `bn_affine=True` (the paper's "+BN-affine" ablation). Every
    other layer with weights in the feature extractor is frozen: SWR stores
    nothing else per task.

    `model` itself is left untouched; the weights are copied.

    Args:
        model: a built Functional or Sequential Keras model.
        exclude: the layers to leave as they are: `"classifier"` (the last
            reparametrisable layer), a list of layer objects, or a callable
            `layer -> bool`. Pass `()` to reparametrise every layer.
        bn_affine: train BN gamma/beta as well.
        twins: plain layer class -> `ReparamLayer` subclass to use instead of
            `REPARAM_TWINS`, e.g. `swr_keras.layers.score_gated.SCORE_GATED_TWINS`
            for TAPS. Classes it does not list are left as they are.

    Returns:
        A new Keras model of the same architecture with reparametrised layers.

    Example:

    ```python
    swr_model = swr_keras.reparametrize(pretrained)
    swr_keras.reparam_layers(swr_model)  # the layers the policy gates
    ```
    """
    check_built(model)
    if (
        not isinstance(model, (keras.Sequential, keras.Model))
        or not hasattr(model, "inputs")
        or model.inputs is None
    ):
        raise ValueError(
            f"reparametrize needs a Functional or Sequential model. Received "
            f"'{model.__class__.__name__}', which Keras cannot clone layer by "
            "layer. Build the architecture with the Functional API."
        )
    twins = REPARAM_TWINS if twins is None else dict(twins)
    candidates = [layer for layer in iter_layers(model) if type(layer) in twins]
    excluded = _resolve_exclude(exclude, candidates)
    to_replace = [layer for layer in candidates if id(layer) not in excluded]
    if not to_replace:
        raise ValueError(
            f"Model '{model.name}' has no Conv2D, DepthwiseConv2D or Dense layer "
            f"left to reparametrise (found {len(candidates)}, excluded "
            f"{len(excluded)}). Pass a model with such layers, or exclude fewer "
            "layers."
        )
    replace_ids = {id(layer) for layer in to_replace}

    swr_model, pairs = clone_replacing(
        model,
        lambda layer: (
            twins[type(layer)].from_plain_layer(layer) if id(layer) in replace_ids else None
        ),
    )
    for source, clone in pairs:
        if id(source) in replace_ids:
            clone.set_pretrained_weights(source.kernel, source.bias if source.use_bias else None)
        elif source.weights and id(source) not in excluded:
            _freeze_all_but_batch_norm(clone)
    set_batch_norm_affine_trainable(swr_model, bn_affine)
    return swr_model


def _freeze_all_but_batch_norm(layer):
    """Freezes a pre-trained layer that SWR does not reparametrise.

    BN layers (also inside custom layers) stay trainable so that their moving
    statistics keep updating; everything else is frozen layer by layer, which
    `.keras` files remember.
    """
    for inner in [layer, *iter_layers(layer)]:
        if isinstance(inner, keras.layers.BatchNormalization):
            continue
        holds_batch_norm = any(
            isinstance(sub, keras.layers.BatchNormalization) for sub in iter_layers(inner)
        )
        if not holds_batch_norm:
            inner.trainable = False
        if type(inner) in REPARAM_TWINS:
            logging.warning(
                "Layer '%s' inside custom layer '%s' is frozen, not reparametrised: "
                "only layers in the Functional graph are. Build the block with the "
                "Functional API to reparametrise it.",
                inner.name,
                layer.name,
            )


def _resolve_exclude(exclude, candidates):
    """Returns the ids of the excluded layers among `candidates`."""
    if isinstance(exclude, str):
        if exclude != CLASSIFIER:
            raise ValueError(
                f'exclude must be "{CLASSIFIER}", a list of layers or a callable. '
                f"Received: exclude={exclude!r}"
            )
        return {id(candidates[-1])} if candidates else set()
    if callable(exclude):
        return {id(layer) for layer in candidates if exclude(layer)}
    try:
        layers = list(exclude)
    except TypeError:
        raise ValueError(
            f'exclude must be "{CLASSIFIER}", a list of layers or a callable. '
            f"Received: exclude={exclude!r}"
        ) from None
    for layer in layers:
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "exclude must list layer objects (not names). Received an "
                f"element {layer!r}; pass e.g. `model.get_layer(name)` instead."
            )
    return {id(layer) for layer in layers}
