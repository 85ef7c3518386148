"""WAV validation in Python and WAV decoding / length fitting in-graph.

Every file is checked with the stdlib `wave` module while a corpus is being
listed, so a corrupt, truncated, stereo, 8-bit or wrong-rate file is reported
by name (with the fix) before `tf.data` ever runs; `tf.audio.decode_wav`
would otherwise fail deep inside an iterator with no usable file name, or
silently read a stereo file as the wrong signal.
"""

import dataclasses
import os
import wave

import numpy as np
import tensorflow as tf

_REENCODE_HINT = (
    "Re-encode it as 16-bit PCM mono, e.g. "
    "`sox IN.wav -b 16 -c 1 -r RATE OUT.wav` or "
    "`ffmpeg -i IN.wav -ac 1 -ar RATE -c:a pcm_s16le OUT.wav`, or delete it."
)


@dataclasses.dataclass(frozen=True)
class WavInfo:
    """Header facts of a validated WAV file.

    Args:
        path: str, the file.
        sample_rate: int, samples per second.
        num_frames: int, number of samples (mono).
    """

    path: str
    sample_rate: int
    num_frames: int

    @property
    def seconds(self):
        return self.num_frames / self.sample_rate


def validate_wav(path, sample_rate=None, max_frames=None):
    """Checks that `path` is a complete 16-bit PCM mono WAV file.

    Args:
        path: str, the WAV file.
        sample_rate: optional int; if given, the file must have this rate.
        max_frames: optional int; if given, longer files are an error.

    Returns:
        A `WavInfo`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is corrupt, truncated, empty, not mono, not
            16-bit, has another sample rate or is too long. The message names
            the file and how to fix it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"WAV file not found: {path}")
    try:
        with wave.open(path, "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            num_frames = reader.getnframes()
            if num_frames > 0 and channels == 1 and width == 2:
                # The header promises `num_frames`; reading the last one
                # detects a file cut short after its header was written.
                reader.setpos(num_frames - 1)
                last = reader.readframes(1)
            else:
                last = b"\0\0"
    except (wave.Error, EOFError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{path} is not a readable PCM WAV file ({error}). {_REENCODE_HINT}"
        ) from error
    if channels != 1:
        raise ValueError(
            f"{path} has {channels} channels; only mono is supported. {_REENCODE_HINT}"
        )
    if width != 2:
        raise ValueError(
            f"{path} has {8 * width}-bit samples; only 16-bit PCM is supported. {_REENCODE_HINT}"
        )
    if num_frames == 0:
        raise ValueError(f"{path} contains no audio samples. Delete the file.")
    if len(last) != 2:
        raise ValueError(
            f"{path} is truncated: its header announces {num_frames} samples "
            "but the file ends early. Re-extract it from the corpus archive "
            "or delete it."
        )
    if sample_rate is not None and rate != int(sample_rate):
        raise ValueError(
            f"{path} is sampled at {rate} Hz; this corpus expects "
            f"{int(sample_rate)} Hz. Resample it (e.g. `sox IN.wav -r "
            f"{int(sample_rate)} OUT.wav`) or pass the corpus' real rate."
        )
    if max_frames is not None and num_frames > int(max_frames):
        raise ValueError(
            f"{path} has {num_frames} samples ({num_frames / rate:.3f} s), "
            f"longer than the {int(max_frames)} samples this corpus allows. "
            "Trim it to the clip length or delete it."
        )
    return WavInfo(path=path, sample_rate=rate, num_frames=num_frames)


def read_wav(path, sample_rate=None):
    """Reads a validated 16-bit mono WAV file into float32 in [-1, 1).

    Args:
        path: str, the WAV file.
        sample_rate: optional int, the required rate.

    Returns:
        A float32 NumPy array `[num_frames]`.
    """
    info = validate_wav(path, sample_rate=sample_rate)
    with wave.open(info.path, "rb") as reader:
        data = reader.readframes(info.num_frames)
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


def decode_wav_file(path):
    """Reads and decodes one (validated) mono WAV file in-graph.

    Args:
        path: scalar string tensor.

    Returns:
        float32 tensor `[num_frames]` in [-1, 1).
    """
    audio, _ = tf.audio.decode_wav(tf.io.read_file(path), desired_channels=1)
    return audio[:, 0]


CROP_MODES = ("energy", "start")


def fit_length(waveform, num_samples, crop="energy"):
    """Zero-pads or crops a waveform to exactly `num_samples`, in-graph.

    Short clips are padded at the end (as the BC-ResNet reference does).
    With `crop="energy"`, long clips keep the `num_samples` window with the
    largest energy: a keyword in a long recording sits where the energy is,
    and a plain centre crop would cut off words spoken early or late. With
    `crop="start"` they keep their first `num_samples` (for corpora that
    guarantee the keyword lies there).

    Args:
        waveform: float tensor `[length]`.
        num_samples: int, target length.
        crop: `"energy"` or `"start"`.

    Returns:
        float32 tensor `[num_samples]`.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}. Received: crop={crop!r}")
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    length = tf.shape(waveform)[0]

    def cut():
        if crop == "start":
            return waveform[:num_samples]
        # float64 cumulative energy: window sums of 1e5 squared samples
        # would lose the small differences between windows in float32.
        energy = tf.cumsum(tf.square(tf.cast(waveform, tf.float64)))
        energy = tf.concat([tf.zeros([1], tf.float64), energy], axis=0)
        window = energy[num_samples:] - energy[: length - num_samples + 1]
        start = tf.argmax(window, output_type=tf.int32)
        return waveform[start : start + num_samples]

    def pad():
        return tf.pad(waveform, [[0, num_samples - length]])

    out = tf.cond(length > num_samples, cut, pad)
    return tf.ensure_shape(out, [num_samples])
