"""WAV validation and in-graph length fitting."""

import os
import wave

import numpy as np
import pytest

from swr_keras.data import audio
from tests.data.conftest import tone, write_wav


def test_valid_file_reports_header(tmp_path):
    path = str(tmp_path / "ok.wav")
    write_wav(path, tone(440, 0.5, 16000))
    info = audio.validate_wav(path, sample_rate=16000, max_frames=16000)
    assert (info.sample_rate, info.num_frames) == (16000, 8000)
    assert info.seconds == pytest.approx(0.5)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        audio.validate_wav(str(tmp_path / "nope.wav"))


def test_corrupt_file(tmp_path):
    path = str(tmp_path / "corrupt.wav")
    with open(path, "wb") as f:
        f.write(b"this is not a RIFF file at all" * 10)
    with pytest.raises(ValueError, match="corrupt.wav.*not a readable PCM WAV"):
        audio.validate_wav(path)


def test_truncated_file(tmp_path):
    path = str(tmp_path / "cut.wav")
    write_wav(path, tone(440, 1.0, 16000))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1000)
    with pytest.raises(ValueError, match="cut.wav is truncated"):
        audio.validate_wav(path)


def test_truncated_header(tmp_path):
    path = str(tmp_path / "stub.wav")
    write_wav(path, tone(440, 1.0, 16000))
    with open(path, "r+b") as f:
        f.truncate(20)
    with pytest.raises(ValueError, match="stub.wav"):
        audio.validate_wav(path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=2), "2 channels; only mono"),
        (dict(width=1), "8-bit samples; only 16-bit"),
    ],
)
def test_unsupported_formats(tmp_path, kwargs, message):
    path = str(tmp_path / "bad.wav")
    write_wav(path, tone(440, 0.2, 16000), **kwargs)
    with pytest.raises(ValueError, match=f"bad.wav has {message}"):
        audio.validate_wav(path)


def test_unexpected_rate(tmp_path):
    path = str(tmp_path / "rate.wav")
    write_wav(path, tone(440, 0.2, 44100), 44100)
    with pytest.raises(ValueError, match="rate.wav is sampled at 44100 Hz.*16000"):
        audio.validate_wav(path, sample_rate=16000)


def test_too_long(tmp_path):
    path = str(tmp_path / "long.wav")
    write_wav(path, tone(440, 1.5, 16000))
    with pytest.raises(ValueError, match="long.wav has 24000 samples"):
        audio.validate_wav(path, max_frames=16000)


def test_empty_file(tmp_path):
    path = str(tmp_path / "empty.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(ValueError, match="empty.wav contains no audio"):
        audio.validate_wav(path)


def test_decode_matches_read(tmp_path):
    path = str(tmp_path / "x.wav")
    write_wav(path, np.random.default_rng(0).uniform(-1, 1, 1234))
    np.testing.assert_array_equal(audio.decode_wav_file(path).numpy(), audio.read_wav(path))


def test_fit_length_pads_at_end():
    out = audio.fit_length(np.ones(100, np.float32), 160).numpy()
    np.testing.assert_array_equal(out, np.r_[np.ones(100), np.zeros(60)])


def test_fit_length_keeps_loudest_window():
    signal = np.full(3000, 0.01, np.float32)
    signal[2000:2300] = 0.9  # the "keyword" sits late in the recording
    out = audio.fit_length(signal, 1000).numpy()
    assert out.shape == (1000,)
    assert np.sum(out == np.float32(0.9)) == 300
    # A plain centre crop (samples 1000-2000) would have missed it.
    assert np.sum(signal[1000:2000] == np.float32(0.9)) == 0


def test_fit_length_start_crop_and_bad_mode():
    signal = np.arange(3000, dtype=np.float32)
    np.testing.assert_array_equal(audio.fit_length(signal, 1000, crop="start"), signal[:1000])
    with pytest.raises(ValueError, match="crop='middle'"):
        audio.fit_length(signal, 1000, crop="middle")
