"""Argument checks shared by the public API: one clear `ValueError` per bad value."""

import math

import numpy as np


def check_target_cost(target_cost):
    """Returns `target_cost` as a float in [0, 1] or raises `ValueError`.

    Accepts a Python number or a NumPy scalar/array (every element is checked).
    """
    values = np.asarray(target_cost, dtype="float64").reshape(-1)
    if values.size == 0:
        raise ValueError(
            "target_cost must be a number in [0, 1]. Received an empty value: "
            f"target_cost={target_cost!r}"
        )
    for value in values:
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ValueError(
                "target_cost must be in [0, 1] (the share of the feature "
                "extractor's reparametrisable parameters a task may add). "
                f"Received: target_cost={target_cost!r}"
            )
    return float(values[0]) if values.size == 1 else values


def check_positive_int(name, value):
    """Returns `value` unless it is not a positive integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return value


def check_built(model):
    """Raises `ValueError` unless `model` has been built (its weights exist)."""
    if not getattr(model, "built", False) or not model.weights:
        raise ValueError(
            f"Model '{getattr(model, 'name', model)}' is not built, so its "
            "pre-trained weights do not exist yet. Build it first, e.g. with "
            "`keras.Input(shape=...)` or by calling it on a batch of data."
        )


def check_gates(gates, num_layers):
    """Returns `gates` as a `[num_layers]` float32 array of 0/1 or raises `ValueError`."""
    values = np.asarray(gates, dtype="float32")
    if values.shape != (num_layers,):
        raise ValueError(
            "gates must hold one value per reparametrised layer, i.e. have shape "
            f"({num_layers},). Received gates of shape {values.shape}. Use "
            "swr_keras.reparam_layers(model) to see the layers and their order."
        )
    for value in values:
        if value not in (0.0, 1.0):
            raise ValueError(
                f"gates must be 0 or 1 (a binary policy). Received a gate of value "
                f"{value}. Binarise policy outputs first, e.g. with "
                "PolicyNetwork.binary_policy."
            )
    return values


def resolve_gates(layers, gates=None):
    """Checked gates for `layers`: `gates` if given, else the ones their forward pass applies."""
    if gates is None:
        gates = [float(np.asarray(layer.effective_gate())) for layer in layers]
    return check_gates(gates, len(layers))


def shape_fits(known_shape, shape):
    """Whether `shape` has the rank of `known_shape` and agrees with its known (non-None) axes."""
    return len(known_shape) == len(shape) and all(
        known is None or known == dim for known, dim in zip(known_shape, shape)
    )
