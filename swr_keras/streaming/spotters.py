"""Keyword spotters on a stream: posteriors for every hop of audio.

Two modes, both fed raw 16 kHz samples a whole number of hops at a time and
returning softmax posteriors `[hops, num_classes]`, one row per hop:

- `StreamingSpotter`: a causal model made streaming (`to_streaming`): each
  hop computes only the new frames' features; cost per second of audio is
  the clip model's per-frame cost times 100 frames.
- `SlidingWindowSpotter`: any model, e.g. the symmetric reference backbone:
  a ring buffer of the last `window_frames` log-mel frames and the full
  model on it every hop; cost per second is one full-window inference per
  hop. `sliding_window_posteriors` computes the same rows in batches for
  offline evaluation.

Both use the streaming front end (`swr_keras.streaming.front_end`), so the
frames are the `LogMel` frames the model was trained on.
"""

import numpy as np
import tensorflow as tf

from swr_keras.cost import count_multiplies
from swr_keras.data.features import LogMel
from swr_keras.streaming.front_end import HostLogMel, StreamingLogMel
from swr_keras.streaming.streaming_model import reset_states, to_streaming
from swr_keras.validation import check_positive_int


def softmax(logits):
    """Softmax over the last axis, in NumPy."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class Spotter:
    """What every spotter shares: `process(samples)` -> `[hops, num_classes]`.

    Subclasses set `num_classes` and implement `_hop(samples)` (one hop ->
    one posterior row) and `reset()`.
    """

    def __init__(self, hop_frames, hop_length, sample_rate=16000):
        self.hop_frames = check_positive_int("hop_frames", hop_frames)
        self.hop_samples = hop_frames * hop_length
        self.hop_seconds = self.hop_samples / sample_rate

    def process(self, samples):
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size % self.hop_samples:
            raise ValueError(
                f"Feed whole hops of {self.hop_samples} samples. Received: {samples.size} samples."
            )
        rows = [
            self._hop(samples[start : start + self.hop_samples])
            for start in range(0, samples.size, self.hop_samples)
        ]
        return np.stack(rows) if rows else np.zeros((0, self.num_classes), np.float32)


class StreamingSpotter(Spotter):
    """A causal model run hop by hop, all state inside Keras variables.

    Args:
        model: a plain causal model (see `to_streaming`), log-mel -> logits,
            or a model `to_streaming` already returned.
        hop_frames: log-mel frames per hop (2 = 20 ms).
        window_frames: frames the streaming pool averages.
        log_mel: the `LogMel` the model was trained with.
    """

    def __init__(self, model, hop_frames=2, window_frames=101, log_mel=None):
        log_mel = log_mel or LogMel()
        super().__init__(hop_frames, log_mel.hop_length, log_mel.sample_rate)
        self.streaming_model = to_streaming(model, window_frames=window_frames)
        self.num_classes = self.streaming_model.output_shape[-1]
        config = {k: v for k, v in log_mel.get_config().items() if k in _FRONT_END_KEYS}
        self.front_end = StreamingLogMel(**config)
        self.front_end.build((1, self.hop_samples))
        self._step = tf.function(self._logits, jit_compile=False, reduce_retracing=True)

    def _logits(self, samples):
        return self.streaming_model(self.front_end(samples), training=False)

    def _hop(self, samples):
        logits = self._step(tf.constant(samples[np.newaxis]))
        return softmax(logits.numpy()[0])

    def reset(self):
        reset_states(self.streaming_model)
        self.front_end.state.assign(np.zeros(self.front_end.state.shape, np.float32))


_FRONT_END_KEYS = (
    "sample_rate",
    "num_mel_bins",
    "fft_length",
    "window_length",
    "hop_length",
    "log_offset",
)


class SlidingWindowSpotter(Spotter):
    """Any keyword model on the last `window_frames` frames, every hop.

    The ring buffer starts filled with the log-mel of digital silence
    (`log(log_offset)`), what the front end gives before the stream.

    Args:
        predict: `log_mel [batch, num_mel_bins, window_frames, 1]` ->
            logits or probabilities `[batch, num_classes]` (a Keras model or
            a SavedModel signature).
        num_classes: outputs of `predict`.
        window_frames: frames the model sees (its training clip length).
        hop_frames: frames per hop.
        outputs_probabilities: `predict` already applies a softmax.
        log_mel: the `LogMel` the model was trained with.
    """

    def __init__(
        self,
        predict,
        num_classes,
        window_frames,
        hop_frames=2,
        outputs_probabilities=False,
        log_mel=None,
    ):
        self.log_mel = log_mel or LogMel()
        super().__init__(hop_frames, self.log_mel.hop_length, self.log_mel.sample_rate)
        self.window_frames = check_positive_int("window_frames", window_frames)
        self.num_classes = num_classes
        self.outputs_probabilities = outputs_probabilities
        self._predict = predict
        self.front_end = HostLogMel(self.log_mel)
        self.reset()

    def reset(self):
        self.front_end.reset()
        silence = np.log(self.log_mel.log_offset)
        self._frames = np.full((self.log_mel.num_mel_bins, self.window_frames), silence, np.float32)

    def _hop(self, samples):
        new = self.front_end(samples)
        self._frames = np.concatenate([self._frames[:, new.shape[1] :], new], axis=1)
        outputs = np.asarray(self._predict(self._frames[np.newaxis, :, :, np.newaxis]))[0]
        return outputs if self.outputs_probabilities else softmax(outputs)

    def window_multiplies(self, model):
        """Multiplies of one hop: one inference on the whole window."""
        return count_multiplies(model, (self.log_mel.num_mel_bins, self.window_frames, 1))


def sliding_window_posteriors(
    predict,
    samples,
    window_frames,
    hop_frames=2,
    batch_size=64,
    outputs_probabilities=False,
    log_mel=None,
):
    """`SlidingWindowSpotter(...).process(samples)` from a fresh state, batched.

    Returns:
        float32 `[hops, num_classes]`.
    """
    log_mel = log_mel or LogMel()
    front_end = HostLogMel(log_mel)
    samples = np.asarray(samples, np.float32).reshape(-1)
    hop_samples = hop_frames * log_mel.hop_length
    usable = samples.size - samples.size % hop_samples
    frames = front_end(samples[:usable])
    silence = np.full((frames.shape[0], window_frames), np.log(log_mel.log_offset), np.float32)
    frames = np.concatenate([silence, frames], axis=1)
    ends = np.arange(hop_frames, frames.shape[1] - window_frames + 1, hop_frames) + window_frames
    rows = []
    for start in range(0, len(ends), batch_size):
        batch = np.stack(
            [frames[:, end - window_frames : end] for end in ends[start : start + batch_size]]
        )
        rows.append(np.asarray(predict(batch[..., np.newaxis])))
    outputs = np.concatenate(rows).astype(np.float32)
    return outputs if outputs_probabilities else softmax(outputs)


def keras_predict(model):
    """A compiled `log_mel -> logits` function of a Keras model, for the spotters."""
    function = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: function(tf.constant(x, tf.float32)).numpy()
