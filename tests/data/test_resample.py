"""The in-graph polyphase resampler against scipy.signal."""

import numpy as np
import pytest
from scipy import signal

from swr_keras.data import resample


def _interior(x, margin):
    return x[margin:-margin]


@pytest.mark.parametrize("source, target", [(48000, 16000), (44100, 16000), (16000, 48000)])
def test_identical_to_scipy_with_the_same_filter(source, target):
    """Same FIR in scipy.resample_poly: checks the polyphase indexing/alignment."""
    up, down, taps = resample.design_resampling_filter(source, target)
    x = np.random.default_rng(1).uniform(-1, 1, source // 4)
    expected = signal.resample_poly(x, up, down, window=taps / up)
    actual = resample.resample(x.astype(np.float32), source, target).numpy()
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=5e-6)


@pytest.mark.parametrize("frequency", [200.0, 1000.0, 3000.0, 6000.0])
def test_tones_match_scipy_default(frequency):
    """Passband tones agree with scipy's own design to within 2e-3 (its
    Kaiser beta=5 filter has ~1e-3 ripple; ours < 1e-4)."""
    t = np.arange(48000) / 48000.0
    x = 0.5 * np.sin(2 * np.pi * frequency * t)
    expected = signal.resample_poly(x, 1, 3)
    actual = resample.resample(x.astype(np.float32), 48000, 16000).numpy()
    np.testing.assert_allclose(_interior(actual, 400), _interior(expected, 400), atol=2e-3)


@pytest.mark.parametrize("frequency", [8100.0, 10000.0, 15000.0, 23000.0])
def test_rejects_tones_above_new_nyquist(frequency):
    t = np.arange(48000) / 48000.0
    x = np.sin(2 * np.pi * frequency * t).astype(np.float32)
    y = _interior(resample.resample(x, 48000, 16000).numpy(), 400)
    rms_db = 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(0.5))
    assert rms_db < -80.0, f"{frequency} Hz aliases at {rms_db:.1f} dB"


@pytest.mark.parametrize("source, target", [(48000, 16000), (44100, 16000)])
def test_filter_stopband_exceeds_80_db(source, target):
    up, down, taps = resample.design_resampling_filter(source, target)
    frequencies, response = signal.freqz(taps / up, worN=1 << 17, fs=up * source)
    stop = np.abs(response[frequencies >= min(source, target) / 2])
    passband = np.abs(response[frequencies <= 0.9 * min(source, target) / 2])
    assert 20 * np.log10(stop.max()) < -80.0
    assert np.abs(passband - 1).max() < 1e-3


def test_batched_shapes_and_identity():
    x = np.random.default_rng(0).normal(size=(3, 4801)).astype(np.float32)
    y = resample.resample(x, 48000, 16000)
    assert y.shape == (3, 1601)  # ceil(4801 / 3), like scipy
    single = resample.resample(x[1], 48000, 16000).numpy()
    np.testing.assert_allclose(y.numpy()[1], single, atol=1e-6)
    np.testing.assert_array_equal(resample.resample(x, 16000, 16000).numpy(), x)


def test_invalid_rate():
    with pytest.raises(ValueError, match="source_rate=0"):
        resample.design_resampling_filter(0, 16000)
