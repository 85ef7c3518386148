"""Hard Gumbel-softmax with a straight-through gradient (Jang et al., 2017)."""

import keras
from keras import ops

_EPSILON = 1e-10


def gumbel_softmax(logits, temperature, seed=None, hard=True, uniform=None):
    """Samples a relaxed one-hot vector from `logits` along the last axis.

    With `hard=True` the forward value is exactly one-hot (the arg-max of the
    perturbed logits) while the gradient is that of the soft sample
    (straight-through estimator), so a gate drawn this way is a true {0, 1}
    gate that still trains the logits.

    Args:
        logits: tensor `[..., K]` of unnormalised log-probabilities.
        temperature: positive scalar (float or tensor); lower is sharper.
        seed: `keras.random.SeedGenerator` or int, for reproducible samples.
        hard: return the straight-through one-hot sample instead of the soft one.
        uniform: optional U(0, 1) samples of the shape of `logits`, used
            instead of drawing them with `seed` (under several replicas:
            `swr_keras.distribute.replica_uniform`).

    Returns:
        Tensor of the shape of `logits`.
    """
    if uniform is None:
        uniform = keras.random.uniform(ops.shape(logits), minval=0.0, maxval=1.0, seed=seed)
    noise = -ops.log(-ops.log(uniform + _EPSILON) + _EPSILON)
    soft = ops.softmax((logits + ops.cast(noise, logits.dtype)) / temperature, axis=-1)
    if not hard:
        return soft
    hard_sample = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(logits)[-1], dtype=soft.dtype)
    # (soft - stop_gradient(soft)) is exactly 0 forward, so the sample stays
    # exactly one-hot while the gradient is the soft sample's.
    return hard_sample + (soft - ops.stop_gradient(soft))
