"""The log-mel front end, hop by hop: as a Keras layer and on the host.

Framing. `LogMel` (training, serving) centres frame `k` on sample
`k * hop_length` and reflect-pads both ends of a clip; a stream has no end to
pad. The streaming front end keeps the last `history_samples` samples and
frames `history + new samples` without padding (`LogMel(center=False)`), so
one hop of audio gives one frame, and its frame `j` covers samples
`[j * hop - history, j * hop - history + fft_length)` of the stream (zeros
before the stream starts). With the defaults (fft 512, hop 160) `history` is
416 and streaming frame `j` is exactly `LogMel` frame `j - 1` of the same
audio (`lag_frames = 1`) wherever `LogMel`'s window lies inside the audio:
the model sees the features it was trained on, 96 samples (6 ms) of
look-ahead after the frame's centre and one frame late.
"""

import keras
import numpy as np
from keras import ops

from swr_keras.data.features import LogMel
from swr_keras.validation import check_positive_int


def framing(fft_length, hop_length):
    """`(history_samples, lag_frames)` of the streaming front end.

    The history is the shortest that keeps each frame's window on `LogMel`'s
    centred grid: `fft_length - hop_length` plus the `(-fft_length // 2) mod
    hop_length` samples by which the grid is offset from the hop boundaries.
    """
    check_positive_int("fft_length", fft_length)
    check_positive_int("hop_length", hop_length)
    offset = (-(fft_length // 2)) % hop_length
    history = fft_length + offset - hop_length
    return history, (fft_length // 2 + offset) // hop_length - 1


@keras.saving.register_keras_serializable(package="swr_keras")
class StreamingLogMel(keras.layers.Layer):
    """`LogMel` features of a stream, one frame per hop of new samples.

    Keeps the last `history_samples` samples (see `framing`) in a
    non-trainable variable; each call returns the frames of the samples it
    received, which must be a whole number of hops. The output of a stream cut
    into any calls equals `LogMel(center=False)` of the stream with
    `history_samples` zeros before it.

    Args:
        sample_rate, num_mel_bins, fft_length, window_length, hop_length,
        log_offset: as `LogMel` (the model's training features).

    Input shape: `[1, num_hops * hop_length]` float waveform in [-1, 1].
    Output shape: `[1, num_mel_bins, num_hops, 1]`.
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mel_bins=40,
        fft_length=512,
        window_length=480,
        hop_length=160,
        log_offset=1e-6,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.log_mel = LogMel(
            sample_rate=sample_rate,
            num_mel_bins=num_mel_bins,
            fft_length=fft_length,
            window_length=window_length,
            hop_length=hop_length,
            log_offset=log_offset,
            center=False,
        )
        self.history_samples, self.lag_frames = framing(fft_length, hop_length)
        self.hop_length = hop_length

    def build(self, input_shape):
        self.state = self.add_weight(
            shape=(1, self.history_samples), initializer="zeros", trainable=False, name="state"
        )

    def call(self, inputs):
        samples = ops.concatenate([self.state, ops.cast(inputs, "float32")], axis=1)
        self.state.assign(samples[:, -self.history_samples :])
        return self.log_mel(samples)

    def compute_output_shape(self, input_shape):
        hops = None if input_shape[1] is None else input_shape[1] // self.hop_length
        return (input_shape[0], self.log_mel.num_mel_bins, hops, 1)

    def get_config(self):
        config = self.log_mel.get_config()
        config = {
            key: config[key]
            for key in (
                "sample_rate",
                "num_mel_bins",
                "fft_length",
                "window_length",
                "hop_length",
                "log_offset",
            )
        }
        return {**super().get_config(), **config}


class HostLogMel:
    """The streaming front end in NumPy, for TFLite on a host without TF.

    Computes what `StreamingLogMel` computes (same window, filters and
    framing, float32), keeping its sample history in a NumPy array.

    Args:
        log_mel: the `LogMel` layer whose settings to use (its `center` is
            ignored: a stream is framed as `framing` says).
    """

    def __init__(self, log_mel=None):
        log_mel = log_mel or LogMel()
        self.fft_length = log_mel.fft_length
        self.hop_length = log_mel.hop_length
        self.log_offset = log_mel.log_offset
        self.history_samples, self.lag_frames = framing(self.fft_length, self.hop_length)
        # The window sits centred in the FFT frame, as ops.stft pads it.
        left = (self.fft_length - log_mel.window_length) // 2
        self._window = np.zeros(self.fft_length, np.float32)
        self._window[left : left + log_mel.window_length] = log_mel._window
        self._filters = log_mel._filters
        self.reset()

    def reset(self):
        self._history = np.zeros(self.history_samples, np.float32)

    def __call__(self, samples):
        """Frames of `samples` (a whole number of hops): `[num_mel_bins, hops]`."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if samples.size % self.hop_length:
            raise ValueError(
                f"Feed whole hops of {self.hop_length} samples. Received: {samples.size} samples."
            )
        stream = np.concatenate([self._history, samples])
        self._history = stream[-self.history_samples :]
        hops = samples.size // self.hop_length
        starts = np.arange(hops) * self.hop_length
        frames = stream[starts[:, None] + np.arange(self.fft_length)] * self._window
        spectrum = np.fft.rfft(frames, axis=-1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        return np.log(power @ self._filters + self.log_offset).T.astype(np.float32)
