"""Batched, seeded augmentation for keyword spotting (BC-ResNet recipe).

Training (per clip, as in the BC-ResNet reference code): silence clips always
get background noise at amplitude U(0, 1); keyword/unknown clips get noise
with probability 0.8 at amplitude U(0, 0.1), and only those noisy clips are
also shifted in time by U(-0.1, 0.1) s (zero-filled) and clamped to
[-1, 1] - the reference skips the other 20 % untouched. Validation: noise on
silence clips only. Test: nothing. SpecAugment (training only): 2 frequency
masks of width < 7 bands and 2 time masks of width < 20 frames, set to 0 in
the log-mel domain.

Every op works on a whole batch at once and draws its randomness from a
`[2]` seed with stateless ops, so a pipeline is reproducible from its seed.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from swr_keras.data import audio

_LOG = logging.getLogger(__name__)

SILENCE_LABEL = 0


class NoiseBank:
    """Background-noise recordings concatenated into one array.

    Args:
        waveforms: list of float32 1-D arrays at the pipeline's rate.
        names: list of str, one per waveform (for messages).
    """

    def __init__(self, waveforms, names):
        if not waveforms:
            raise ValueError("A NoiseBank needs at least one noise recording.")
        self.names = tuple(names)
        self.lengths = np.array([len(w) for w in waveforms], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.flat = np.concatenate(waveforms).astype(np.float32)
        self._tensors = None

    @classmethod
    def from_directory(cls, noise_dir, sample_rate=16000, min_samples=16000):
        """Loads every `*.wav` of `noise_dir` (GSC2 `_background_noise_`).

        Recordings shorter than `min_samples` cannot supply a whole clip of
        noise; they are skipped with a warning (GSC2's are all >= 60 s).

        Raises:
            FileNotFoundError: the directory is missing or holds no WAV file.
            ValueError: a WAV file is invalid (see `audio.validate_wav`).
        """
        noise_dir = os.fspath(noise_dir)
        if not os.path.isdir(noise_dir):
            raise FileNotFoundError(
                f"Background-noise directory not found: {noise_dir}. Pass the "
                "`_background_noise_` folder of Speech Commands v0.02."
            )
        names = sorted(n for n in os.listdir(noise_dir) if n.endswith(".wav"))
        waveforms, kept = [], []
        for name in names:
            waveform = audio.read_wav(os.path.join(noise_dir, name), sample_rate)
            if len(waveform) < min_samples:
                _LOG.warning(
                    "Skipping noise file %s: %d samples, shorter than one %d-sample clip.",
                    os.path.join(noise_dir, name),
                    len(waveform),
                    min_samples,
                )
                continue
            waveforms.append(waveform)
            kept.append(name)
        if not waveforms:
            raise FileNotFoundError(
                f"No usable WAV file (>= {min_samples} samples at {sample_rate} Hz) in {noise_dir}."
            )
        return cls(waveforms, kept)

    def fixed_segments(self, rng, count, num_samples):
        """Draws `count` absolute offsets of `num_samples`-long segments.

        Files are picked uniformly, then a uniform start within the file.
        Used for evaluation silence clips, which are fixed at listing time.
        """
        if count == 0:
            return np.zeros([0], np.int64)
        files = rng.integers(0, len(self.lengths), size=count)
        spans = self.lengths[files] - num_samples + 1
        if np.any(spans <= 0):
            raise ValueError(f"Noise recordings must be at least {num_samples} samples long.")
        return self.starts[files] + (rng.random(count) * spans).astype(np.int64)

    def tensors(self):
        """(flat, starts, lengths) as tensors, created once and shared."""
        if self._tensors is None:
            self._tensors = (
                tf.constant(self.flat),
                tf.constant(self.starts),
                tf.constant(self.lengths),
            )
        return self._tensors


def _noise_segments(noise_bank, seed_file, seed_offset, batch, num_samples):
    flat, starts, lengths = noise_bank.tensors()
    files = tf.random.stateless_uniform(
        [batch], seed_file, minval=0, maxval=len(noise_bank.lengths), dtype=tf.int32
    )
    spans = tf.gather(lengths, files) - num_samples + 1
    offsets = tf.cast(
        tf.random.stateless_uniform([batch], seed_offset) * tf.cast(spans, tf.float32), tf.int64
    )
    offsets = tf.minimum(offsets, spans - 1)
    index = (tf.gather(starts, files) + offsets)[:, tf.newaxis] + tf.range(
        num_samples, dtype=tf.int64
    )[tf.newaxis]
    return tf.gather(flat, index)


def _time_shift(waveforms, shifts):
    """out[b, i] = waveforms[b, i + shifts[b]], zero outside the clip."""
    num_samples = tf.shape(waveforms)[1]
    source = tf.range(num_samples)[tf.newaxis] + shifts[:, tf.newaxis]
    inside = (source >= 0) & (source < num_samples)
    moved = tf.gather(waveforms, tf.clip_by_value(source, 0, num_samples - 1), batch_dims=1)
    return tf.where(inside, moved, tf.zeros_like(moved))


def augment_waveforms(
    waveforms,
    labels,
    seed,
    noise_bank,
    mode="train",
    sample_rate=16000,
    noise_prob=0.8,
    keyword_noise_max=0.1,
    silence_noise_max=1.0,
    max_shift_seconds=0.1,
    silence_label=SILENCE_LABEL,
):
    """Applies the reference noise/shift/clamp augmentation to a batch.

    Args:
        waveforms: float32 `[batch, samples]`.
        labels: int `[batch]`; `silence_label` marks silence clips.
        seed: int tensor `[2]` for the stateless random ops.
        noise_bank: a `NoiseBank` at `sample_rate`.
        mode: one of `"train"`, `"valid"`, `"test"`.
        sample_rate: int, for the shift range in samples.
        noise_prob: probability that a non-silence clip is augmented.
        keyword_noise_max: noise amplitude bound for non-silence clips.
        silence_noise_max: noise amplitude bound for silence clips.
        max_shift_seconds: bound of the uniform time shift.
        silence_label: int, the silence class index.

    Returns:
        float32 `[batch, samples]`.
    """
    if mode not in ("train", "valid", "test"):
        raise ValueError(f"mode must be 'train', 'valid' or 'test'. Received: mode={mode!r}")
    if mode == "test":
        return waveforms
    num_samples = waveforms.shape[1]
    if num_samples is None or noise_bank.lengths.min() < num_samples:
        raise ValueError(
            "Noise mixing needs a static clip length no longer than the "
            f"shortest noise recording ({noise_bank.lengths.min()} samples). "
            f"Received: waveforms of shape {waveforms.shape}"
        )
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    batch = tf.shape(waveforms)[0]
    is_silence = tf.equal(tf.cast(labels, tf.int32), silence_label)
    if mode == "train":
        noisy = is_silence | (tf.random.stateless_uniform([batch], seeds[0]) < noise_prob)
    else:
        noisy = is_silence
    gains = tf.random.stateless_uniform([batch], seeds[1]) * tf.where(
        is_silence, silence_noise_max, keyword_noise_max
    )
    gains = tf.where(noisy, gains, 0.0)
    noise = _noise_segments(noise_bank, seeds[2], seeds[3], batch, num_samples)
    if mode == "train":
        # int() in the reference truncates towards zero; so does the cast.
        shifts = tf.cast(
            tf.random.stateless_uniform([batch], seeds[4], -1.0, 1.0)
            * (max_shift_seconds * sample_rate),
            tf.int32,
        )
        waveforms = _time_shift(waveforms, tf.where(noisy, shifts, 0))
    mixed = waveforms + gains[:, tf.newaxis] * noise
    return tf.where(noisy[:, tf.newaxis], tf.clip_by_value(mixed, -1.0, 1.0), waveforms)


def _band_mask(seed, batch, size, num_masks, max_width):
    """[batch, size] bool: union of `num_masks` random bands per example."""
    seed_width, seed_start = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    widths = tf.cast(
        tf.random.stateless_uniform([batch, num_masks], seed_width) * max_width, tf.int32
    )
    starts = tf.cast(
        tf.random.stateless_uniform([batch, num_masks], seed_start)
        * tf.cast(size - widths + 1, tf.float32),
        tf.int32,
    )
    starts = tf.minimum(starts, size - widths)
    position = tf.range(size)[tf.newaxis, tf.newaxis]
    inside = (position >= starts[..., tf.newaxis]) & (position < (starts + widths)[..., tf.newaxis])
    return tf.reduce_any(inside, axis=1)


def spec_augment(
    features, seed, num_freq_masks=2, max_freq_width=7, num_time_masks=2, max_time_width=20
):
    """SpecAugment on a batch of log-mel features (masked values set to 0).

    Mask widths are `floor(U(0, max_width))` and starts uniform over the
    positions where the mask fits, as in the reference.

    Args:
        features: float32 `[batch, mel, frames, 1]`.
        seed: int tensor `[2]`.
        num_freq_masks, max_freq_width: frequency masks and their bound.
        num_time_masks, max_time_width: time masks and their bound.

    Returns:
        float32 `[batch, mel, frames, 1]`.
    """
    seed_freq, seed_time = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    shape = tf.shape(features)
    freq = _band_mask(seed_freq, shape[0], shape[1], num_freq_masks, max_freq_width)
    time = _band_mask(seed_time, shape[0], shape[2], num_time_masks, max_time_width)
    masked = freq[:, :, tf.newaxis] | time[:, tf.newaxis, :]
    return tf.where(masked[..., tf.newaxis], tf.zeros_like(features), features)
