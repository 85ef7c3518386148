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


def check_built(model):
    """Raises `ValueError` unless `model` has been built (its weights exist)."""
    if not getattr(model, "built", False) or not model.weights:
        raise ValueError(
            f"Model '{getattr(model, 'name', model)}' is not built, so its "
            "pre-trained weights do not exist yet. Build it first, e.g. with "
            "`keras.Input(shape=...)` or by calling it on a batch of data."
        )
