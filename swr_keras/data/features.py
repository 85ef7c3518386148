"""Log-mel features as one Keras layer, shared by the input pipeline and models.

The same `LogMel` layer runs inside `tf.data` for training and as the first
layer of exported models, so training and serving cannot drift apart.
"""

import keras
import numpy as np
from keras import ops


def hz_to_mel(hz):
    """HTK mel scale (torchaudio's default `mel_scale="htk"`)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of `hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate=16000, fft_length=512, num_mel_bins=40, lower_hz=0.0, upper_hz=None):
    """Triangular mel filters, `[fft_length // 2 + 1, num_mel_bins]`.

    Matches the filters of the reference (torchaudio `MelSpectrogram` with
    default arguments: HTK mel scale, no area normalisation): mel band `m`
    rises linearly in Hz from centre `m - 1` to centre `m` and falls to
    centre `m + 1`, with centres equally spaced on the mel scale between
    `lower_hz` and `upper_hz` (default: Nyquist). Unlike
    `tf.signal.linear_to_mel_weight_matrix`, the triangles are linear in Hz
    and the DC bin is kept, which is what the reference computes.

    Returns:
        float32 NumPy array.
    """
    upper_hz = sample_rate / 2.0 if upper_hz is None else float(upper_hz)
    bin_hz = np.linspace(0.0, sample_rate // 2, fft_length // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), num_mel_bins + 2))
    widths = np.diff(edges_hz)
    offsets = edges_hz[np.newaxis, :] - bin_hz[:, np.newaxis]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@keras.saving.register_keras_serializable(package="swr_keras")
class LogMel(keras.layers.Layer):
    """Log-mel spectrogram of raw waveforms, frequency first.

    Computes `log(mel_power + log_offset)` exactly as the BC-ResNet reference
    does with torchaudio: the waveform is reflect-padded by `fft_length // 2`
    on both sides (torchaudio's `center=True, pad_mode="reflect"`), framed
    with a periodic Hann window of `window_length` samples centred in
    `fft_length`, transformed with a real FFT, squared (power 2) and
    projected onto HTK triangular mel filters. A 1 s clip at 16 kHz gives
    `1 + 16000 // 160 = 101` frames.

    With `center=False` nothing is padded: frame `k` is samples
    `[k * hop_length, k * hop_length + fft_length)`, and a waveform of `n`
    samples gives `1 + (n - fft_length) // hop_length` frames. That is the
    framing of the streaming front end (`swr_keras.streaming.StreamingLogMel`).

    The layer has no weights; the mel matrix is a constant rebuilt from the
    config, so it adds nothing to parameter counts.

    Args:
        sample_rate: int, sample rate of the input in Hz.
        num_mel_bins: int, number of mel bands.
        fft_length: int, FFT size.
        window_length: int, Hann window length (<= `fft_length`).
        hop_length: int, frame step in samples.
        log_offset: float, added to the mel power before the log.
        center: bool, reflect-pad `fft_length // 2` samples on both sides
            (the reference's framing) or frame the waveform as it is.
        **kwargs: base `Layer` arguments.

    Input shape:
        `(batch, samples)` or `(batch, samples, 1)` float waveforms.

    Output shape:
        `(batch, num_mel_bins, 1 + samples // hop_length, 1)`.

    Example:

    >>> layer = LogMel()
    >>> layer(np.zeros((2, 16000), "float32")).shape
    (2, 40, 101, 1)
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mel_bins=40,
        fft_length=512,
        window_length=480,
        hop_length=160,
        log_offset=1e-6,
        center=True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value in [
            ("sample_rate", sample_rate),
            ("num_mel_bins", num_mel_bins),
            ("fft_length", fft_length),
            ("window_length", window_length),
            ("hop_length", hop_length),
        ]:
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
        if window_length > fft_length:
            raise ValueError(
                "window_length must not exceed fft_length. Received: "
                f"window_length={window_length}, fft_length={fft_length}"
            )
        if log_offset <= 0:
            raise ValueError(f"log_offset must be positive. Received: log_offset={log_offset}")
        self.sample_rate = int(sample_rate)
        self.num_mel_bins = int(num_mel_bins)
        self.fft_length = int(fft_length)
        self.window_length = int(window_length)
        self.hop_length = int(hop_length)
        self.log_offset = float(log_offset)
        if not isinstance(center, bool):
            raise ValueError(f"center must be True or False. Received: center={center!r}")
        self.center = center
        self._filters = mel_filterbank(self.sample_rate, self.fft_length, self.num_mel_bins)
        # Periodic Hann, like torch.hann_window's default.
        self._window = (
            0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.window_length) / self.window_length)
        ).astype(np.float32)

    def call(self, inputs):
        waveforms = ops.cast(inputs, "float32")
        if len(waveforms.shape) == 3:
            waveforms = ops.squeeze(waveforms, axis=-1)
        real, imag = ops.stft(
            waveforms,
            sequence_length=self.window_length,
            sequence_stride=self.hop_length,
            fft_length=self.fft_length,
            window=self._window,
            center=self.center,
        )
        power = ops.square(real) + ops.square(imag)
        mel = ops.matmul(power, ops.convert_to_tensor(self._filters))
        log_mel = ops.log(mel + self.log_offset)
        return ops.expand_dims(ops.transpose(log_mel, (0, 2, 1)), axis=-1)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        if samples is None:
            frames = None
        elif self.center:
            frames = 1 + samples // self.hop_length
        else:
            frames = 1 + (samples - self.fft_length) // self.hop_length
        return (input_shape[0], self.num_mel_bins, frames, 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            num_mel_bins=self.num_mel_bins,
            fft_length=self.fft_length,
            window_length=self.window_length,
            hop_length=self.hop_length,
            log_offset=self.log_offset,
            center=self.center,
        )
        return config
