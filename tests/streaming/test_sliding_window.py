"""The sliding-window mode for symmetric models, and loading models for detection."""

import json

import keras
import numpy as np
import pytest

from swr_keras.kws.serving_export import export_serving
from swr_keras.streaming.front_end import HostLogMel
from swr_keras.streaming.loading import load_keyword_model
from swr_keras.streaming.spotters import (
    SlidingWindowSpotter,
    StreamingSpotter,
    keras_predict,
    sliding_window_posteriors,
)
from tests.streaming.conftest import NUM_CLASSES, random_causal_model

WINDOW, HOP = 30, 4
CLASSES = ["_silence_", "_unknown_", "yes", "no", "up"]


@pytest.fixture(scope="module")
def symmetric_model():
    return random_causal_model(seed=9, causal=False)


@pytest.fixture(scope="module")
def audio():
    return (0.1 * np.random.default_rng(9).normal(size=HOP * 160 * 12)).astype("float32")


def test_each_hop_runs_the_model_on_the_last_window_of_frames(symmetric_model, audio):
    spotter = SlidingWindowSpotter(keras_predict(symmetric_model), NUM_CLASSES, WINDOW, HOP)
    rows = spotter.process(audio)
    frames = HostLogMel()(audio)
    frames = np.concatenate([np.full((40, WINDOW), np.log(1e-6), np.float32), frames], axis=1)
    for hop in (0, 5, 11):
        end = WINDOW + (hop + 1) * HOP
        logits = keras.ops.convert_to_numpy(
            symmetric_model(frames[np.newaxis, :, end - WINDOW : end, np.newaxis])
        )[0]
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(rows[hop], expected, atol=1e-5)
    batched = sliding_window_posteriors(
        keras_predict(symmetric_model), audio, WINDOW, HOP, batch_size=5
    )
    np.testing.assert_allclose(batched, rows, atol=1e-5)
    spotter.reset()
    np.testing.assert_allclose(spotter.process(audio[: HOP * 160]), rows[:1], atol=1e-6)


@pytest.mark.slow  # saves and loads two models: about 15 s on a quiet 2-core machine
def test_keras_file_with_manifest_loads_and_picks_the_mode(symmetric_model, tmp_path):
    symmetric_model.save(str(tmp_path / "model.keras"))
    random_causal_model(seed=10).save(str(tmp_path / "causal.keras"))
    (tmp_path / "manifest.json").write_text(json.dumps({"class_names": CLASSES}))
    loaded = load_keyword_model(str(tmp_path / "model.keras"))
    assert loaded.class_names == CLASSES and not loaded.causal
    assert isinstance(loaded.spotter(HOP, WINDOW), SlidingWindowSpotter)
    causal = load_keyword_model(str(tmp_path / "causal.keras"))
    assert causal.causal and isinstance(causal.spotter(HOP, WINDOW), StreamingSpotter)
    with pytest.raises(ValueError, match="class names for a model with 5 outputs"):
        load_keyword_model(str(tmp_path / "model.keras"), labels=["a", "b"])
    with pytest.raises(ValueError, match="--model must be a .keras file"):
        load_keyword_model(str(tmp_path / "missing.keras"))


@pytest.mark.slow  # writes a SavedModel: about 15 s on 2 cores
def test_savedmodel_version_runs_in_the_sliding_window(symmetric_model, audio, tmp_path):
    version = export_serving(symmetric_model, CLASSES, str(tmp_path / "kws"), clip_samples=4800)
    loaded = load_keyword_model(version)
    assert loaded.class_names == CLASSES and loaded.frames == 31 and loaded.outputs_probabilities
    rows = loaded.spotter(HOP, WINDOW).process(audio)
    expected = sliding_window_posteriors(keras_predict(symmetric_model), audio, 31, HOP)
    np.testing.assert_allclose(rows, expected, atol=1e-5)
