"""The policy loss of SWR (equation 2), its per-layer cost weights, and the smoothed task loss."""

import keras
import numpy as np
from keras import ops

PARAMETERS = "parameters"
EQUAL = "equal"


def layer_cost_weights(layers, weighting=PARAMETERS):
    """The normalised per-layer costs `r_l` of equation (2).

    Args:
        layers: the reparametrised layers, in gate order.
        weighting: `"parameters"` (the paper: `r_l = N(w_l) / sum_i N(w_i)`,
            with `N` the kernel's parameter count) or `"equal"` (the ablation:
            `r_l = 1 / L`).

    Returns:
        `float32` NumPy array of shape `[L]` summing to 1.
    """
    if not layers:
        raise ValueError("layer_cost_weights needs at least one reparametrised layer.")
    if weighting == PARAMETERS:
        counts = np.array([np.prod(layer.base_kernel.shape) for layer in layers], "float64")
    elif weighting == EQUAL:
        counts = np.ones(len(layers), "float64")
    else:
        raise ValueError(
            f'weighting must be "{PARAMETERS}" or "{EQUAL}". Received: weighting={weighting!r}'
        )
    return (counts / counts.sum()).astype("float32")


def expected_cost(logits, cost_weights, temperature=1.0):
    """`sum_l r_l * softmax(logits_l / temperature)[0]`, per example.

    Args:
        logits: `[batch, L, 2]` policy logits.
        cost_weights: `[L]` weights `r_l`.
        temperature: softmax temperature.

    Returns:
        `[batch]` tensor.
    """
    probabilities = ops.softmax(logits / temperature, axis=-1)[..., 0]
    weights = ops.cast(ops.convert_to_tensor(cost_weights), probabilities.dtype)
    return ops.sum(probabilities * weights, axis=-1)


def policy_loss(logits, target_cost, cost_weights, temperature=1.0):
    """Equation (2): `|sum_l r_l * softmax(h(c)_l / tau)[0] - c|`, batch mean.

    Args:
        logits: `[batch, L, 2]` policy logits `h(c)`.
        target_cost: `[batch]` or `[batch, 1]` target costs `c`.
        cost_weights: `[L]` weights `r_l` (see `layer_cost_weights`).
        temperature: softmax temperature `tau`.

    Returns:
        Scalar tensor.
    """
    cost = expected_cost(logits, cost_weights, temperature)
    target = ops.reshape(ops.cast(target_cost, cost.dtype), (-1,))
    return ops.mean(ops.abs(cost - target))


def gated_cost(gates, cost_weights):
    """`sum_l r_l b_l` of (batched, differentiable) gates, as a tensor.

    With parameter weights this is the share of reparametrisable parameters
    the gates add; `swr_keras.cost.added_parameter_ratio` is the same for a
    model's stored policy.

    Args:
        gates: `[..., L]` 0/1 gates.
        cost_weights: `[L]` parameter weights (use `weighting="parameters"`).
    """
    weights = ops.cast(ops.convert_to_tensor(cost_weights), "float32")
    return ops.sum(ops.cast(gates, "float32") * weights, axis=-1)


@keras.saving.register_keras_serializable(package="swr_keras")
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Cross-entropy on logits with integer labels and label smoothing.

    (Keras' `SparseCategoricalCrossentropy` has no label smoothing.) The
    number of classes is the logits' last axis.

    Args:
        label_smoothing: in [0, 1); the target puts `1 - label_smoothing +
            label_smoothing / classes` on the label, as PyTorch's
            `CrossEntropyLoss(label_smoothing=...)`.
    """

    def __init__(self, label_smoothing=0.1, name="label_smoothing_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        targets = keras.ops.one_hot(labels, y_pred.shape[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
