"""Finding layers inside models: nested models and custom layers included."""

import keras

from swr_keras.layers import ReparamLayer


def iter_layers(layer):
    """Yields every layer inside `layer` (not `layer` itself), depth first.

    Models are walked in their graph order (`model.layers`); custom layers
    through the sub-layers they hold as attributes (directly or in lists,
    tuples and dicts). A layer shared by several parents is yielded once.
    """
    seen = set()

    def visit(parent):
        for child in _children(parent):
            if id(child) in seen:
                continue
            seen.add(id(child))
            yield child
            yield from visit(child)

    yield from visit(layer)


def _children(layer):
    if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
        children = list(layer.layers)
        if children:
            return children
    children = []
    for value in vars(layer).values():
        candidates = value.values() if isinstance(value, dict) else value
        if isinstance(value, keras.layers.Layer):
            children.append(value)
        elif isinstance(value, (list, tuple, dict)):
            children.extend(c for c in candidates if isinstance(c, keras.layers.Layer))
    return children


def reparam_layers(model):
    """Lists the reparametrised layers of `model` in graph order.

    This order is the order of the policy network's outputs and of the
    `gates` arguments across the library.
    """
    return [layer for layer in iter_layers(model) if isinstance(layer, ReparamLayer)]


def batch_norm_layers(model):
    """Lists every `BatchNormalization` in `model`, inside custom layers too."""
    return [
        layer for layer in iter_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]


def set_batch_norm_affine_trainable(model, trainable):
    """Freezes (or unfreezes) gamma/beta of every BN layer in `model`.

    The BN layers themselves stay trainable: Keras updates the moving mean and
    variance only when a BN layer is trainable and called with
    `training=True`, and SWR transfers exactly those statistics.
    """
    for layer in batch_norm_layers(model):
        for variable in (layer.gamma, layer.beta):
            if variable is not None:
                variable.trainable = trainable


def weighted_leaf_layers(model):
    """Lists the layers of `model` that own weights and contain no other layer.

    Graph order. A reparametrised model and the plain model it came from (or
    its merge) give lists of equal length whose entries correspond one to one,
    which is how task-specific weights are matched between them.
    """
    return [layer for layer in iter_layers(model) if layer.weights and not _children(layer)]


def clone_replacing(model, replacement):
    """Clones `model` layer by layer, swapping some layers for new ones.

    Args:
        model: a Functional or Sequential model (nested ones are cloned too).
        replacement: `layer -> new unbuilt layer`, or `None` to keep a copy of
            `layer`'s class and config.

    Returns:
        `(clone, pairs)`: the new model and the `(source, new)` layer pairs,
        both built. Replaced layers come back without weights; kept layers
        have their source's weights copied.
    """
    pairs = []

    def clone_layer(layer):
        clone = replacement(layer)
        if clone is None:
            clone = layer.__class__.from_config(layer.get_config())
        pairs.append((layer, clone))
        return clone

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for source, new in pairs:
        if type(new) is type(source) and source.weights:
            new.set_weights(source.get_weights())
    return clone, pairs
