"""LogMel against a NumPy reference implementation."""

import keras
import numpy as np
import pytest

from swr_keras.data import features


def numpy_log_mel(waveform, n_fft=512, window_length=480, hop=160, n_mels=40):
    """torchaudio-style centred STFT written independently with NumPy."""
    padded = np.pad(waveform.astype(np.float64), n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    left = (n_fft - window_length) // 2
    window[left : left + window_length] = np.hanning(window_length + 1)[:-1]
    num_frames = 1 + len(waveform) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(num_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = power @ features.mel_filterbank(16000, n_fft, n_mels).astype(np.float64)
    return np.log(mel + 1e-6).T  # [mel, frames]


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    batch = np.stack(
        [
            0.3 * np.sin(2 * np.pi * 700 * t) + 0.05 * rng.normal(size=16000),
            rng.uniform(-1, 1, 16000),
        ]
    ).astype(np.float32)
    out = np.asarray(features.LogMel()(batch))
    assert out.shape == (2, 40, 101, 1)
    for i in range(2):
        np.testing.assert_allclose(out[i, ..., 0], numpy_log_mel(batch[i]), atol=2e-3, rtol=1e-4)


def test_frame_count_for_mc_kws_clips():
    out = features.LogMel()(np.zeros((1, 35840), np.float32))
    assert out.shape == (1, 40, 225, 1)
    assert features.LogMel().compute_output_shape((None, 35840)) == (None, 40, 225, 1)


def test_tone_lands_in_the_nearest_mel_band():
    frequency = 1000.0
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)[None]
    out = np.asarray(features.LogMel()(x))[0, :, 50, 0]
    edges = features.mel_to_hz(np.linspace(0, features.hz_to_mel(8000), 42))
    assert np.argmax(out) == np.argmin(np.abs(edges[1:-1] - frequency))


def test_filterbank_is_htk_triangles_in_hz():
    bank = features.mel_filterbank()
    assert bank.shape == (257, 40)
    edges = features.mel_to_hz(np.linspace(0, features.hz_to_mel(8000), 42))
    bins = np.linspace(0, 8000, 257)
    # Band 10 rises linearly (in Hz) from edge 10 to edge 11.
    inside = (bins > edges[10]) & (bins < edges[11])
    np.testing.assert_allclose(
        bank[inside, 10], (bins[inside] - edges[10]) / (edges[11] - edges[10]), rtol=1e-5
    )
    assert features.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)


def test_serialization_and_no_weights(tmp_path):
    layer = features.LogMel(num_mel_bins=32, hop_length=128)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input((16000,))
    model = keras.Model(inputs, features.LogMel()(inputs))
    assert model.count_params() == 0
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16000)).astype(np.float32)
    np.testing.assert_allclose(keras.models.load_model(path)(x), model(x), atol=1e-6)


def test_accepts_trailing_channel():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16000)).astype(np.float32)
    np.testing.assert_allclose(features.LogMel()(x[..., None]), features.LogMel()(x))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="window_length=600"):
        features.LogMel(window_length=600)
    with pytest.raises(ValueError, match="hop_length=0"):
        features.LogMel(hop_length=0)
