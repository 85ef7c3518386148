"""`CausalTimePadding`: zero padding on the past side of the time axis only."""

import keras
from keras import ops

from swr_keras.validation import check_positive_int


@keras.saving.register_keras_serializable(package="swr_keras")
class CausalTimePadding(keras.layers.Layer):
    """Pads `frames` zeros before the first time step of a 4D input.

    A convolution of time extent `(kernel - 1) * dilation + 1` after this
    layer (with `"valid"` time padding) sees only the current and past
    frames, so its output at frame `t` depends on no input after `t`: the
    property a streaming model needs. The layer is its own class (not a
    `ZeroPadding2D`) so that `swr_keras.streaming` finds every causal time
    padding by type and replaces it with a buffer of the last `frames`
    frames of the stream.

    Args:
        frames: number of zero frames put before the input.

    Input shape: `[batch, frequency, time, channels]`.
    Output shape: `[batch, frequency, time + frames, channels]`.

    Example:

    ```python
    x = keras.ops.ones((1, 40, 101, 1))
    CausalTimePadding(4)(x).shape  # (1, 40, 105, 1)
    ```
    """

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = check_positive_int("frames", frames)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def call(self, inputs):
        return ops.pad(inputs, ((0, 0), (0, 0), (self.frames, 0), (0, 0)))

    def compute_output_shape(self, input_shape):
        time = input_shape[2]
        return (
            input_shape[0],
            input_shape[1],
            None if time is None else time + self.frames,
            input_shape[3],
        )

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}
