"""`merge`: fold `w0 + b * delta` into a plain Keras model for deployment."""

import keras
import numpy as np

from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import clone_replacing, reparam_layers
from swr_keras.validation import check_built


def check_gates(gates, num_layers):
    """Returns `gates` as a `[num_layers]` float32 0/1 array or raises `ValueError`."""
    values = np.asarray(gates, dtype="float32").reshape(-1)
    if values.shape[0] != num_layers:
        raise ValueError(
            f"gates must hold one value per reparametrised layer ({num_layers}). "
            f"Received {values.shape[0]} values. Use swr_keras.reparam_layers(model) "
            "to see the layers and their order."
        )
    if not np.all((values == 0.0) | (values == 1.0)):
        bad = values[(values != 0.0) & (values != 1.0)][:3].tolist()
        raise ValueError(
            f"gates must be 0 or 1 (a binary policy). Received values {bad}. "
            "Binarise policy outputs first, e.g. with PolicyNetwork.binary_policy."
        )
    return values


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
    if gates is None:
        gates = [float(keras.ops.convert_to_numpy(layer.gate)) for layer in layers]
    gate_of = {id(layer): gate for layer, gate in zip(layers, check_gates(gates, len(layers)))}
    return rebuild_plain(
        model,
        lambda layer: [layer.merged_kernel(gate_of[id(layer)])]
        + ([keras.ops.convert_to_numpy(layer.bias)] if layer.use_bias else []),
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
