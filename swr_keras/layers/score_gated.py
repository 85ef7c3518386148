"""TAPS layers: reparametrised layers whose gate is a thresholded, learnt score.

Task-Adaptive Parameter Sharing (Wallingford et al., CVPR 2022; official code
MattWallingford/TAPS, `models/taps_net.py`, class `freeze_conv`) gives every
convolution a frozen kernel `w0`, a zero-initialised residual `delta` and one
scalar score `s` initialised at 0.15; the layer computes with
`w0 + I(s) * delta`, `I(s) = [s >= 0.1]`, and the score learns through a
straight-through gradient (`dI/ds := 1`). These layers are the `Reparam*`
twins with the stored gate replaced by `I(s)`: merging, task states and the
added-parameter ratio work on them unchanged.
"""

import keras
from keras import ops

from swr_keras.layers.reparam_conv2d import ReparamConv2D
from swr_keras.layers.reparam_dense import ReparamDense
from swr_keras.layers.reparam_depthwise_conv2d import ReparamDepthwiseConv2D

THRESHOLD = 0.1
INITIAL_SCORE = 0.15


def straight_through_indicator(score, threshold=THRESHOLD):
    """`[score >= threshold]` (0.0 or 1.0) whose gradient passes straight through.

    Forward, exactly 0 or 1; backward, the incoming gradient unchanged, as
    TAPS' `BinarizeIndictator`. Written `hard + (s - stop_gradient(s))`: the
    bracket is exactly 0, whereas `s + stop_gradient(hard - s)` can round
    to 0.99999994.

    Args:
        score: float tensor.
        threshold: the score at and above which the indicator is 1.

    Returns:
        Tensor of `score`'s shape and dtype.
    """
    score = ops.convert_to_tensor(score)
    hard = ops.cast(ops.greater_equal(score, threshold), score.dtype)
    return hard + (score - ops.stop_gradient(score))


class ScoreGated:
    """Mixin for a `ReparamLayer`: a trainable score `s` gates the delta by `[s >= threshold]`.

    The stored `gate` variable of the base class stays 1 and is not used.

    Args:
        threshold: score at and above which the delta is applied (TAPS: 0.1).
        initial_score: the score's initial value (TAPS: 0.15, i.e. on).
    """

    def __init__(self, *args, threshold=THRESHOLD, initial_score=INITIAL_SCORE, **kwargs):
        super().__init__(*args, **kwargs)
        self.threshold = float(threshold)
        self.initial_score = float(initial_score)

    def build(self, input_shape):
        super().build(input_shape)
        self.score = self.add_weight(
            name="score",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_score),
            trainable=True,
        )

    def effective_gate(self):
        return straight_through_indicator(self.score, self.threshold)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["score"] = self.score

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.score.assign(store["score"])

    def get_config(self):
        config = super().get_config()
        config.update({"threshold": self.threshold, "initial_score": self.initial_score})
        return config


@keras.saving.register_keras_serializable(package="swr_keras")
class ScoreGatedConv2D(ScoreGated, ReparamConv2D):
    """`ReparamConv2D` with the TAPS gate `[score >= threshold]`.

    Args: those of `ReparamConv2D`, plus `threshold` and `initial_score`
    (see `ScoreGated`).
    """


@keras.saving.register_keras_serializable(package="swr_keras")
class ScoreGatedDepthwiseConv2D(ScoreGated, ReparamDepthwiseConv2D):
    """`ReparamDepthwiseConv2D` with the TAPS gate `[score >= threshold]`.

    Args: those of `ReparamDepthwiseConv2D`, plus `threshold` and
    `initial_score` (see `ScoreGated`).
    """


@keras.saving.register_keras_serializable(package="swr_keras")
class ScoreGatedDense(ScoreGated, ReparamDense):
    """`ReparamDense` with the TAPS gate `[score >= threshold]`.

    Args: those of `ReparamDense`, plus `threshold` and `initial_score`
    (see `ScoreGated`).
    """


SCORE_GATED_TWINS = {
    keras.layers.Conv2D: ScoreGatedConv2D,
    keras.layers.DepthwiseConv2D: ScoreGatedDepthwiseConv2D,
    keras.layers.Dense: ScoreGatedDense,
}
