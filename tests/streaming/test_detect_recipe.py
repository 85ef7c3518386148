"""`recipes/detect.py` from the command line: events on a WAV and on stdin, one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from swr_keras.data.synthetic.layout import write_wav
from tests.streaming.conftest import NUM_CLASSES, random_causal_model

RECIPE = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "detect.py")
CLASSES = ["_silence_", "_unknown_", "yes", "no", "up"]


def _run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, RECIPE, *args], input=stdin, capture_output=True, timeout=600
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    assert len(CLASSES) == NUM_CLASSES
    random_causal_model(seed=8).save(str(directory / "model.keras"))
    (directory / "manifest.json").write_text(json.dumps({"class_names": CLASSES}))
    return directory


@pytest.mark.slow  # two recipe runs, each importing TensorFlow: about 30 s on 2 cores
def test_wav_and_stdin_give_the_same_events(model_dir, tmp_path):
    audio = (0.2 * np.random.default_rng(0).normal(size=16000 * 2)).astype("float32")
    wav = str(tmp_path / "noise.wav")
    write_wav(wav, audio, 16000)
    # A threshold so low that the untrained model fires: the events are the test.
    flags = [
        f"--model={model_dir / 'model.keras'}",
        "--threshold=0.05",
        "--window_seconds=0.5",
        "--hop_ms=50",
    ]
    from_wav = _run(*flags, f"--wav={wav}", "--json")
    assert from_wav.returncode == 0, from_wav.stderr.decode()[-2000:]
    events = [json.loads(line) for line in from_wav.stdout.decode().splitlines()]
    assert events and all(e["keyword"] in CLASSES[2:] and 0 <= e["start"] <= 2 for e in events)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()
    from_stdin = _run(*flags, "--stdin", "--json", stdin=pcm)
    assert from_stdin.returncode == 0, from_stdin.stderr.decode()[-2000:]
    assert [json.loads(line) for line in from_stdin.stdout.decode().splitlines()] == events


def test_bad_flags_exit_2_with_one_line(model_dir):
    result = _run(f"--model={model_dir / 'model.keras'}", "--hop_ms=15", "--stdin")
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines() == [
        "detect.py: error: --hop_ms must be a positive multiple of 10. Received: 15"
    ]
