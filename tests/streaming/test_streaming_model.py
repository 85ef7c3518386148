"""The streaming model equals its definition at every hop; state and reset."""

import keras
import numpy as np
import pytest

from swr_keras.streaming import (
    reset_states,
    stream_state_variables,
    to_streaming,
    windowed_reference,
)
from tests.streaming.conftest import random_causal_model

WINDOW = 20


def _stream(streaming, x, hop_frames):
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(streaming(x[:, :, start : start + hop_frames]))
            for start in range(0, x.shape[2], hop_frames)
        ]
    )


@pytest.mark.parametrize("hop_frames", [2, 5])
def test_streaming_equals_the_causal_model_at_every_hop(causal_model, hop_frames):
    x = np.random.default_rng(3).normal(size=(1, 40, 30, 1)).astype("float32")
    streaming = to_streaming(causal_model, window_frames=WINDOW)
    outputs = _stream(streaming, x, hop_frames)
    np.testing.assert_allclose(
        outputs, windowed_reference(causal_model, x, hop_frames, WINDOW), atol=1e-5
    )


def test_while_the_window_covers_the_stream_it_is_the_clip_model_times_its_share():
    """Before the window fills, the pool divides the prefix's sum by the window."""
    model = random_causal_model(seed=4)
    x = np.random.default_rng(4).normal(size=(1, 40, 24, 1)).astype("float32")
    streaming = to_streaming(model, window_frames=24)
    outputs = _stream(streaming, x, 6)
    # At the last hop the window holds exactly the 24 frames: the clip model's output.
    np.testing.assert_allclose(outputs[-1], keras.ops.convert_to_numpy(model(x))[0], atol=1e-5)


@pytest.mark.slow  # two eager training steps of BC-ResNet-1: about 15 s on 2 cores
def test_a_trained_model_streams_exactly(tmp_path):
    model = random_causal_model(seed=5)
    rng = np.random.default_rng(5)
    before = [w.numpy().copy() for w in model.weights]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # two steps: tracing a graph would cost more than it saves
    )
    for _ in range(2):
        model.train_on_batch(
            rng.normal(size=(4, 40, 20, 1)).astype("float32"), rng.integers(0, 5, 4)
        )
    assert all(np.abs(w.numpy() - b).max() > 0 for w, b in zip(model.weights, before))
    x = rng.normal(size=(1, 40, 30, 1)).astype("float32")
    streaming = to_streaming(model, window_frames=WINDOW)
    np.testing.assert_allclose(
        _stream(streaming, x, 5), windowed_reference(model, x, 5, WINDOW), atol=1e-5
    )


def test_state_carries_across_calls_and_reset_restarts(causal_model):
    x = np.random.default_rng(6).normal(size=(1, 40, 4, 1)).astype("float32")
    streaming = to_streaming(causal_model, window_frames=WINDOW)
    first = keras.ops.convert_to_numpy(streaming(x))
    states = [keras.ops.convert_to_numpy(v) for v in stream_state_variables(streaming)]
    assert len(states) == 15 and all(np.abs(s).max() > 0 for s in states)
    second = keras.ops.convert_to_numpy(streaming(x))
    assert np.abs(first - second).max() > 1e-6  # the same frames, later in the stream
    reset_states(streaming)
    assert all(not np.any(keras.ops.convert_to_numpy(v)) for v in stream_state_variables(streaming))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(streaming(x)), first)


def test_streaming_model_trains_nothing_and_keeps_the_weights(causal_model):
    streaming = to_streaming(causal_model)
    assert len(streaming.trainable_weights) == len(causal_model.trainable_weights)
    for source, clone in zip(causal_model.trainable_weights, streaming.trainable_weights):
        np.testing.assert_array_equal(source.numpy(), clone.numpy())


def test_bad_arguments_are_refused(causal_model):
    with pytest.raises(ValueError, match="not causal"):
        to_streaming(random_causal_model(causal=False))
    with pytest.raises(ValueError, match="window_frames"):
        to_streaming(causal_model, window_frames=0)


@pytest.mark.slow  # writes and loads a SavedModel: about 15 s on a quiet 2-core machine
def test_savedmodel_keeps_the_state_in_its_variables(causal_model, tmp_path):
    import tensorflow as tf

    from swr_keras.streaming.savedmodel_stream import export_streaming_savedmodel

    x = np.random.default_rng(11).normal(size=(1, 40, 12, 1)).astype("float32")
    streaming = to_streaming(causal_model, window_frames=WINDOW)
    expected = _stream(streaming, x, 4)
    reset_states(streaming)
    loaded = tf.saved_model.load(
        export_streaming_savedmodel(streaming, str(tmp_path / "s"), hop_frames=4)
    )
    outputs = np.concatenate([loaded.step(x[:, :, i : i + 4]).numpy() for i in range(0, 12, 4)])
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    loaded.reset()
    np.testing.assert_allclose(loaded.step(x[:, :, :4]).numpy(), expected[:1], atol=1e-5)
