"""WAV validation in Python and WAV decoding / length fitting in-graph.

Every file is checked with the stdlib `wave` module while a corpus is being
listed, so a corrupt, truncated, stereo, 8-bit or wrong-rate file is reported
by name (with the fix) before `tf.data` ever runs; `tf.audio.decode_wav`
would otherwise fail deep inside an iterator with no usable file name, or
silently read a stereo file as the wrong signal.

IEEE-float WAV files (what many recording tools write) are accepted where a
loader asks for them (`allow_float=True`): neither `wave` nor
`tf.audio.decode_wav` reads them, so their header is parsed here and their
samples are read with NumPy (in-graph through `tf.numpy_function`, once per
file, since the pipeline caches decoded clips).
"""

import dataclasses
import os
import struct
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
        sample_format: `"pcm16"` or `"float"` (IEEE float, 32 or 64 bit).
        data_offset: int, byte offset of the samples (float files only).
        sample_bytes: int, bytes per sample.
    """

    path: str
    sample_rate: int
    num_frames: int
    sample_format: str = "pcm16"
    data_offset: int = 0
    sample_bytes: int = 2

    @property
    def seconds(self):
        return self.num_frames / self.sample_rate


def validate_wav(path, sample_rate=None, max_frames=None, allow_float=False):
    """Checks that `path` is a complete 16-bit PCM mono WAV file.

    Args:
        path: str, the WAV file.
        sample_rate: optional int; if given, the file must have this rate.
        max_frames: optional int; if given, longer files are an error.
        allow_float: bool; also accept mono IEEE-float (32/64-bit) files.

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
    if allow_float:
        info = _float_wav_info(path)
        if info is not None:
            _check_rate_and_length(info, sample_rate, max_frames)
            return info
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
    info = WavInfo(path=path, sample_rate=rate, num_frames=num_frames)
    _check_rate_and_length(info, sample_rate, max_frames)
    return info


def _check_rate_and_length(info, sample_rate, max_frames):
    path, rate, num_frames = info.path, info.sample_rate, info.num_frames
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


_WAVE_FORMAT_IEEE_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _float_wav_info(path):
    """`WavInfo` of an IEEE-float WAV file; `None` for any other file.

    Walks the RIFF chunks for `fmt ` and `data`. Anything that is not a
    float file (PCM, or not a RIFF file at all) returns `None` and is left
    to `wave`, whose messages cover it.
    """
    with open(path, "rb") as file:
        header = file.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        fmt = None
        while True:
            chunk = file.read(8)
            if len(chunk) < 8:
                if fmt is not None:
                    raise ValueError(f"{path} has no data chunk. {_REENCODE_HINT}")
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = file.read(size + size % 2)
                if len(body) < 16:
                    return None
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID's first field
                if tag != _WAVE_FORMAT_IEEE_FLOAT:
                    return None
                fmt = (channels, rate, bits)
            elif chunk_id == b"data":
                if fmt is None:
                    raise ValueError(f"{path}: data chunk before its fmt chunk. {_REENCODE_HINT}")
                channels, rate, bits = fmt
                if channels != 1:
                    raise ValueError(
                        f"{path} has {channels} channels; only mono is supported. {_REENCODE_HINT}"
                    )
                if bits not in (32, 64):
                    raise ValueError(
                        f"{path} has {bits}-bit float samples; only 32 or 64 are read. "
                        f"{_REENCODE_HINT}"
                    )
                offset = file.tell()
                available = os.path.getsize(path) - offset
                if available < size:
                    raise ValueError(
                        f"{path} is truncated: its header announces {size} bytes of samples "
                        f"but the file holds {available}. Re-record or delete it."
                    )
                num_frames = size // (bits // 8)
                if num_frames == 0:
                    raise ValueError(f"{path} contains no audio samples. Delete the file.")
                return WavInfo(path, rate, num_frames, "float", offset, bits // 8)
            else:
                file.seek(size + size % 2, os.SEEK_CUR)


def read_wav(path, sample_rate=None, allow_float=False):
    """Reads a validated mono WAV file into float32 (16-bit PCM in [-1, 1)).

    Args:
        path: str, the WAV file.
        sample_rate: optional int, the required rate.
        allow_float: bool; also read IEEE-float files (values as stored).

    Returns:
        A float32 NumPy array `[num_frames]`.
    """
    info = validate_wav(path, sample_rate=sample_rate, allow_float=allow_float)
    if info.sample_format == "float":
        dtype = "<f4" if info.sample_bytes == 4 else "<f8"
        data = np.fromfile(info.path, dtype, count=info.num_frames, offset=info.data_offset)
        return data.astype(np.float32)
    with wave.open(info.path, "rb") as reader:
        data = reader.readframes(info.num_frames)
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


SAMPLE_FORMATS = ("pcm16", "float")


def decode_wav_file(path, sample_format="pcm16"):
    """Reads and decodes one (validated) mono WAV file in-graph.

    Args:
        path: scalar string tensor.
        sample_format: `"pcm16"` (decoded by `tf.audio.decode_wav`) or
            `"float"` (read with `read_wav` through `tf.numpy_function`).

    Returns:
        float32 tensor `[num_frames]` (in [-1, 1) for 16-bit PCM).
    """
    if sample_format == "float":
        waveform = tf.numpy_function(
            lambda name: read_wav(name.decode(), allow_float=True), [path], tf.float32
        )
        return tf.ensure_shape(waveform, [None])
    if sample_format != "pcm16":
        raise ValueError(
            f"sample_format must be one of {SAMPLE_FORMATS}. "
            f"Received: sample_format={sample_format!r}"
        )
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
