"""`merge`: fold `w0 + b * delta` into a plain Keras model for deployment."""

import keras

from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import clone_replacing, reparam_layers
from swr_keras.validation import check_built, resolve_gates


def merge(model, gates=None):
    """Returns a plain Keras model whose kernels are `w0 + b_l * delta_l`.

    The result has the architecture of the model that was reparametrised:
    every `Reparam*` layer becomes the plain Keras layer it stands for, with
    the merged kernel and the pre-trained bias, and every other layer keeps
    its weights (BN statistics, classifier). It contains no Reparam layer and
    costs exactly what the original backbone costs at inference.

    Args:
        model: a reparametrised model (see `swr_keras.reparametrize`).
        gates: binary policy, one value per layer of `reparam_layers(model)`;
            defaults to each layer's stored `gate`.

    Returns:
        A new, independent Keras model.
    """
    check_built(model)
    layers = reparam_layers(model)
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no reparametrised layer to merge. Pass the "
            "model returned by swr_keras.reparametrize."
        )
    gate_of = {id(layer): gate for layer, gate in zip(layers, resolve_gates(layers, gates))}
    return rebuild_plain(
        model,
        lambda layer: (
            [layer.merged_kernel(gate_of[id(layer)])]
            + ([keras.ops.convert_to_numpy(layer.bias)] if layer.use_bias else [])
        ),
    )


def rebuild_plain(model, reparam_weights):
    """Clones `model` with plain layers in place of Reparam layers.

    `reparam_weights(layer)` gives the plain weights (kernel, bias) for each
    Reparam layer; every other layer's weights are copied.
    """
    plain, pairs = clone_replacing(
        model, lambda layer: layer.to_plain_layer() if isinstance(layer, ReparamLayer) else None
    )
    for source, clone in pairs:
        if isinstance(source, ReparamLayer):
            clone.set_weights(reparam_weights(source))
    return plain
