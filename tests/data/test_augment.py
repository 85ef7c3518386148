"""Batched waveform augmentation and SpecAugment."""

import numpy as np
import pytest
import tensorflow as tf

from swr_keras.data import augment

SAMPLES = 4000  # short clips keep a 1000-clip batch cheap


def _bank(value=None):
    rng = np.random.default_rng(0)
    noise = [rng.uniform(-1, 1, 9000), rng.uniform(-1, 1, 12000)]
    if value is not None:
        noise = [np.full_like(n, value) for n in noise]
    return augment.NoiseBank([n.astype(np.float32) for n in noise], ["a", "b"])


def _batch(num=1000, silence_every=4):
    labels = np.where(np.arange(num) % silence_every == 0, 0, 5).astype(np.int32)
    waves = np.where(
        labels[:, None] == 0, 0.0, 0.5 * np.sin(np.arange(SAMPLES) / 7.0)[None]
    ).astype(np.float32)
    return tf.constant(waves), tf.constant(labels)


def _run(mode, seed=(1, 2), bank=None, **kwargs):
    waves, labels = _batch()
    out = augment.augment_waveforms(
        waves, labels, tf.constant(seed, tf.int64), bank or _bank(), mode=mode, **kwargs
    )
    return waves.numpy(), labels.numpy(), out.numpy()


def test_test_mode_is_identity():
    waves, _, out = _run("test")
    np.testing.assert_array_equal(out, waves)


def test_valid_mode_noises_silence_only():
    waves, labels, out = _run("valid")
    keyword = labels != 0
    np.testing.assert_array_equal(out[keyword], waves[keyword])
    peaks = np.abs(out[~keyword]).max(axis=1)
    assert np.all(peaks <= 1.0) and np.mean(peaks > 0) > 0.99
    assert peaks.max() > 0.5  # amplitude U(0, 1) times noise in [-1, 1]


def test_train_mode_probabilities_and_amplitudes():
    waves, labels, out = _run("train")
    keyword = labels != 0
    changed = np.any(out != waves, axis=1)
    assert changed[~keyword].all()
    assert 0.75 < changed[keyword].mean() < 0.85  # p = 0.8
    assert np.abs(out).max() <= 1.0


def test_train_noise_amplitude_bounds():
    # Constant noise 1.0 and silent clips: the output is exactly the gain.
    waves = tf.zeros([2000, SAMPLES])
    labels = tf.constant(np.where(np.arange(2000) < 1000, 0, 3), tf.int32)
    out = augment.augment_waveforms(
        waves, labels, tf.constant([3, 4], tf.int64), _bank(1.0), mode="train"
    ).numpy()
    gains = out[:, SAMPLES // 2]  # the middle never falls in a shifted-out zone
    assert gains[:1000].max() > 0.9 and gains[:1000].max() <= 1.0
    assert gains[1000:].max() <= 0.1 and gains[1000:].max() > 0.09


def test_time_shift_is_bounded_and_zero_filled():
    waves = tf.constant(np.tile(np.arange(1, SAMPLES + 1, dtype=np.float32) / SAMPLES, (500, 1)))
    out = augment.augment_waveforms(
        waves,
        tf.fill([500], 3),
        tf.constant([5, 6], tf.int64),
        _bank(0.0),
        mode="train",
        sample_rate=16000,
    ).numpy()
    max_shift = int(0.1 * 16000)
    shifts = []
    for row in out:
        nonzero = np.flatnonzero(row)
        first = nonzero[0]
        shift = int(round(row[first] * SAMPLES)) - 1 - first
        shifts.append(shift)
        # Content is the original ramp moved by `shift`, zeros elsewhere.
        expected = np.zeros(SAMPLES, np.float32)
        src = np.arange(SAMPLES) + shift
        ok = (src >= 0) & (src < SAMPLES)
        expected[ok] = waves.numpy()[0][src[ok]]
        np.testing.assert_allclose(row, expected, atol=1e-6)
    shifts = np.array(shifts)
    assert np.abs(shifts).max() <= max_shift
    assert shifts.min() < -max_shift // 2 and shifts.max() > max_shift // 2


def test_seeded():
    _, _, a = _run("train", seed=(7, 7))
    _, _, b = _run("train", seed=(7, 7))
    _, _, c = _run("train", seed=(7, 8))
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='eval'"):
        _run("eval")


def test_spec_augment_masks():
    features = tf.ones([400, 40, 101, 1])
    out = augment.spec_augment(features, tf.constant([1, 2], tf.int64)).numpy()[..., 0]
    assert set(np.unique(out)) <= {0.0, 1.0}
    freq_masked = np.all(out == 0, axis=2)  # [batch, mel] whole rows zero
    time_masked = np.all(out == 0, axis=1)  # [batch, frames] whole columns zero
    assert freq_masked.sum(axis=1).max() <= 12 and freq_masked.any()
    assert time_masked.sum(axis=1).max() <= 38 and time_masked.any()
    # Every zero is explained by a masked row or column.
    explained = freq_masked[:, :, None] | time_masked[:, None, :]
    np.testing.assert_array_equal(out == 0, explained)
    # Masks are contiguous bands of width < 7: no run of 7 masked rows unless
    # two masks touch; the union of two bands has at most 2 runs.
    for row in freq_masked[:50]:
        runs = np.sum(np.diff(np.r_[0, row.astype(int)]) == 1)
        assert runs <= 2


def test_noise_shorter_than_clip_is_rejected():
    short = augment.NoiseBank([np.zeros(1000, np.float32)], ["short"])
    waves, labels = _batch(4)
    with pytest.raises(ValueError, match="shortest noise recording \\(1000 samples\\)"):
        augment.augment_waveforms(waves, labels, tf.constant([1, 2], tf.int64), short, mode="train")
