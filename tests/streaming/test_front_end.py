"""The streaming log-mel front end: its framing against LogMel's."""

import keras
import numpy as np
import pytest

from swr_keras.data.features import LogMel
from swr_keras.streaming.front_end import HostLogMel, StreamingLogMel, framing


@pytest.fixture(scope="module")
def audio():
    return (np.random.default_rng(0).normal(size=8000) * 0.1).astype("float32")


def _stream(layer, audio, chunk):
    parts = [layer(audio[np.newaxis, i : i + chunk]) for i in range(0, audio.size, chunk)]
    return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts], axis=2)[0, :, :, 0]


def test_framing_of_the_default_settings():
    assert framing(512, 160) == (416, 1)
    # fft 400: the centred grid sits 120 samples off the hop boundaries.
    assert framing(400, 160) == (360, 1)


def test_stream_equals_uncentred_log_mel_of_the_zero_prefixed_audio(audio):
    streamed = _stream(StreamingLogMel(), audio, 320)
    whole = np.concatenate([np.zeros(416, "float32"), audio])[np.newaxis]
    expected = keras.ops.convert_to_numpy(LogMel(center=False)(whole))[0, :, :, 0]
    assert streamed.shape == (40, 50)
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    # However the stream is cut.
    np.testing.assert_allclose(_stream(StreamingLogMel(), audio, 160 * 7), streamed, atol=1e-5)


def test_stream_frame_j_is_the_training_frame_j_minus_1(audio):
    streamed = _stream(StreamingLogMel(), audio, 320)
    centred = keras.ops.convert_to_numpy(LogMel()(audio[np.newaxis]))[0, :, :, 0]
    # LogMel frames whose window lies inside the audio (no reflect padding).
    inside = np.arange(2, (audio.size - 256) // 160 + 1)
    np.testing.assert_allclose(streamed[:, inside + 1], centred[:, inside], atol=1e-5)


def test_host_front_end_equals_the_keras_layer(audio):
    host = HostLogMel()
    streamed = np.concatenate([host(audio[i : i + 480]) for i in range(0, 7680, 480)], axis=1)
    np.testing.assert_allclose(streamed, _stream(StreamingLogMel(), audio[:7680], 480), atol=1e-4)
    host.reset()
    np.testing.assert_allclose(host(audio[:480]), streamed[:, :3], atol=1e-6)
    with pytest.raises(ValueError, match="whole hops of 160"):
        host(audio[:100])
