"""The streaming TFLite files against the Keras streaming model, hop by hop."""

import keras
import numpy as np
import pytest

from swr_keras.streaming import reset_states, to_streaming
from swr_keras.streaming.tflite_stream import TFLiteStreamingSpotter, export_streaming_tflite

WINDOW, HOP = 16, 2


def _keras_logits(streaming, x):
    reset_states(streaming)
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(streaming(x[:, :, i : i + HOP]))
            for i in range(0, x.shape[2], HOP)
        ]
    )


def _tflite_logits(path, x):
    spotter = TFLiteStreamingSpotter(path)
    return np.stack([spotter.logits(x[:, :, i : i + HOP]) for i in range(0, x.shape[2], HOP)])


@pytest.fixture(scope="module")
def streams():
    return np.random.default_rng(7).normal(size=(2, 40, 24, 1)).astype("float32")


def test_float_file_equals_keras_streaming_at_every_hop(causal_model, streams, tmp_path):
    streaming = to_streaming(causal_model, window_frames=WINDOW)
    files = export_streaming_tflite(streaming, tmp_path, streams, hop_frames=HOP, kinds=("float",))
    expected = _keras_logits(streaming, streams[:1])
    np.testing.assert_allclose(_tflite_logits(files["float"], streams[:1]), expected, atol=1e-4)
    # The state flows through the file: one reused frame chunk gives new outputs.
    spotter = TFLiteStreamingSpotter(files["float"])
    chunk = streams[:1, :, :HOP]
    assert np.abs(spotter.logits(chunk) - spotter.logits(chunk)).max() > 1e-6
    spotter.reset()
    np.testing.assert_allclose(spotter.logits(chunk), expected[0], atol=1e-4)


@pytest.mark.slow  # int8 calibration and conversion: about 20 s on 2 cores
def test_int8_file_follows_keras_streaming(causal_model, streams, tmp_path):
    streaming = to_streaming(causal_model, window_frames=WINDOW)
    files = export_streaming_tflite(streaming, tmp_path, streams, hop_frames=HOP, kinds=("int8",))
    expected = _keras_logits(streaming, streams[:1])
    error = np.abs(_tflite_logits(files["int8"], streams[:1]) - expected).max()
    assert error < 0.05 * np.abs(expected).max()


def test_bad_kinds_are_refused(causal_model, streams, tmp_path):
    with pytest.raises(ValueError, match="kinds"):
        export_streaming_tflite(to_streaming(causal_model), tmp_path, streams, kinds=("fp16",))
