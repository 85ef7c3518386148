"""The two stateful layers of a streaming keyword model.

Both keep their state in a non-trainable variable of batch size 1 (one
stream), which `keras.Model.stateless_call` exposes as explicit inputs and
outputs for TFLite (`swr_keras.streaming.tflite_stream`).
"""

import keras
from keras import ops

from swr_keras.validation import check_positive_int


@keras.saving.register_keras_serializable(package="swr_keras")
class StreamingTimeBuffer(keras.layers.Layer):
    """Puts the last `frames` frames of the previous calls before the input.

    The streaming twin of `CausalTimePadding(frames)`: where that layer puts
    `frames` zeros before a whole clip, this one puts the last `frames`
    frames it has seen, zeros before the first call. A `"valid"` convolution
    after it therefore computes, for each new frame, what it computes on the
    whole stream at once, and nothing it computed before (the receptive
    field of the new frames is read from the buffer, not recomputed).

    Args:
        frames: number of past frames kept (`(kernel - 1) * dilation`).

    Input shape: `[1, frequency, new_frames, channels]`.
    Output shape: `[1, frequency, frames + new_frames, channels]`.
    """

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = check_positive_int("frames", frames)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        self.state = self.add_weight(
            shape=(1, input_shape[1], self.frames, input_shape[3]),
            initializer="zeros",
            trainable=False,
            name="state",
        )

    def call(self, inputs):
        outputs = ops.concatenate([ops.cast(self.state, inputs.dtype), inputs], axis=2)
        self.state.assign(outputs[:, :, -self.frames :, :])
        return outputs

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


@keras.saving.register_keras_serializable(package="swr_keras")
class StreamingTimeMean(keras.layers.Layer):
    """The mean of the last `window_frames` frames: a streaming global pool.

    Replaces the global average pooling over frequency and time at the end of
    a keyword model. Each call averages its input over frequency, appends the
    new frames to a buffer of the last `window_frames` frames (zeros before
    the stream starts) and returns the buffer's mean, i.e. the pool over the
    last `window_frames` frames of the stream. The buffer is summed afresh at
    every call rather than kept as a running sum, which in float32 would
    drift over hours of audio.

    Args:
        window_frames: frames averaged (101 = 1 s at a 10 ms hop, the clip
            length the backbone was pooled over in training).

    Input shape: `[1, frequency, new_frames, channels]`.
    Output shape: `[1, channels]`.
    """

    def __init__(self, window_frames, **kwargs):
        super().__init__(**kwargs)
        self.window_frames = check_positive_int("window_frames", window_frames)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        self.state = self.add_weight(
            shape=(1, self.window_frames, input_shape[3]),
            initializer="zeros",
            trainable=False,
            name="state",
        )

    def call(self, inputs):
        frames = ops.mean(inputs, axis=1)
        window = ops.concatenate([ops.cast(self.state, frames.dtype), frames], axis=1)
        window = window[:, -self.window_frames :, :]
        self.state.assign(window)
        return ops.sum(window, axis=1) / self.window_frames

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "window_frames": self.window_frames}
