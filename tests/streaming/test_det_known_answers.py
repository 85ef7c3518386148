"""DET counts, the detector's rules and the stream recipes, on answers known by construction.

The posteriors are drawn by hand (bumps of set heights at set times) or come
from a tone model whose outputs are a fixed function of the log-mel band
energies, so each hit, miss and false accept is known before the code runs.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from swr_keras.data.features import mel_filterbank
from swr_keras.data.synthetic.layout import write_wav
from swr_keras.streaming.det import det_curves, operating_point
from swr_keras.streaming.detector import Detector
from swr_keras.streaming.long_audio import Occurrence

CLASSES = ["_silence_", "_unknown_", "yes", "no"]
HOP = 0.1
STREAM_SECONDS = 360.0  # 0.1 h: each false accept is 10 per hour


def _posteriors(seconds, bumps):
    """Silence, and `(keyword, start, end, height)` bumps; row i ends at (i + 1) * HOP."""
    rows = np.zeros((int(round(seconds / HOP)), len(CLASSES)), np.float32)
    rows[:, 0] = 1.0
    for keyword, start, end, height in bumps:
        span = slice(int(round(start / HOP)), int(round(end / HOP)))
        rows[span, 0] = 1.0 - height
        rows[span, CLASSES.index(keyword)] = height
    return rows


# Three "yes" spoken (and one "bed", a distractor), six bumps of "yes": three on the
# words, of heights 0.9, 0.6 and 0.4; one of 0.7 that opens 0.9 s BEFORE the third word
# (a false accept, though within the 1 s tolerance of the word's start); one of 0.35 on
# the distractor; one of 0.95 on silence.
TRUTH = [
    Occurrence("yes", 10.0, 11.0),
    Occurrence("yes", 50.0, 51.0),
    Occurrence("yes", 100.0, 101.0),
    Occurrence("bed", 150.0, 151.0),
]
BUMPS = [
    ("yes", 10.2, 10.8, 0.9),
    ("yes", 50.2, 50.8, 0.6),
    ("yes", 100.2, 100.8, 0.4),
    ("yes", 99.0, 99.4, 0.7),
    ("yes", 150.2, 150.6, 0.35),
    ("yes", 200.0, 200.5, 0.95),
]
# threshold: (hits of 3, false accepts), counted off the list above.
EXPECTED = {0.3: (3, 3), 0.5: (2, 2), 0.8: (1, 1), 0.99: (0, 0)}


def test_det_counts_hits_misses_and_false_accepts_per_hour():
    posteriors = _posteriors(STREAM_SECONDS, BUMPS)
    curve = det_curves(
        posteriors,
        CLASSES,
        HOP,
        TRUTH,
        ["yes", "no"],
        thresholds=tuple(EXPECTED),
        smoothing_seconds=0.0,
        refractory_seconds=0.0,
        tolerance_seconds=1.0,
    )
    assert set(curve) == {"yes"}  # "no" never occurs: no miss rate to tell
    hours = STREAM_SECONDS / 3600
    expected = [(t, 1 - hits / 3, fa / hours) for t, (hits, fa) in EXPECTED.items()]
    np.testing.assert_allclose(curve["yes"], expected)
    # The lowest miss rate at <= 25 false accepts per hour is 0.5's, not 0.3's (30 per hour).
    assert operating_point(curve["yes"], 25.0) == pytest.approx((0.5, 1 / 3, 20.0))
    assert operating_point(curve["yes"], 0.0) == pytest.approx((0.99, 1.0, 0.0))


def test_refractory_period_is_exactly_its_length():
    # Starts 1.0 s apart (10 hops): the second is outside a 1.0 s refractory period.
    apart = _posteriors(8, [("yes", 2.0, 2.5, 0.9), ("no", 3.0, 3.5, 0.9)])
    events = Detector(CLASSES, HOP, smoothing_seconds=0.0, refractory_seconds=1.0).detect(apart)
    assert [(e.keyword, e.start) for e in events] == [("yes", 2.1), ("no", 3.1)]
    # 0.9 s apart: inside it, suppressed.
    close = _posteriors(8, [("yes", 2.0, 2.5, 0.9), ("no", 2.9, 3.5, 0.9)])
    events = Detector(CLASSES, HOP, smoothing_seconds=0.0, refractory_seconds=1.0).detect(close)
    assert [(e.keyword, e.start) for e in events] == [("yes", 2.1)]


def test_of_two_keywords_rising_on_one_hop_the_larger_margin_wins():
    rows = _posteriors(4, [])
    rows[10:15] = [0.05, 0.0, 0.35, 0.6]  # "yes" 0.05 above its threshold, "no" 0.3
    events = Detector(CLASSES, HOP, thresholds=0.3, smoothing_seconds=0.0).detect(rows)
    assert [(e.keyword, e.start) for e in events] == [("no", 1.1)]
    # Margins, not scores: with "no" at a higher threshold, "yes" is further above its own.
    thresholds = {"yes": 0.3, "no": 0.58}
    events = Detector(CLASSES, HOP, thresholds=thresholds, smoothing_seconds=0.0).detect(rows)
    assert [e.keyword for e in events] == ["yes"]


# -- the recipes end to end, with a tone model -----------------------------------------------
SAMPLE_RATE = 16000
TONE_CLASSES = ["_silence_", "_unknown_", "beep", "buzz"]
RECIPES = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")


def _band(frequency):
    return int(np.argmax(mel_filterbank()[int(frequency * 512 // SAMPLE_RATE)]))


def tone_model():
    """Logits that are a fixed function of the window's mean log-mel: "beep" is the energy
    of the 1 kHz band above the mean band, "buzz" that of the 3 kHz band (measured with
    `sliding_window_posteriors`, 0.51 s window: 1.00 while a 0.5 s tone at 0.3 fills the
    window, at most 0.06 in noise at 0.01)."""
    inputs = keras.Input((40, None, 1))
    conv = keras.layers.Conv2D(4, (40, 1))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    kernel = np.zeros((40, 1, 1, 4), np.float32)
    bias = np.array([0.0, -10.0, -4.0, -4.0], np.float32)
    for column, frequency in ((2, 1000), (3, 3000)):
        kernel[:, 0, 0, column] = -2.0 / 40
        kernel[_band(frequency), 0, 0, column] += 2.0
    conv.set_weights([kernel, bias])
    return model


def _clip(frequency, seconds=1.0, at=0.25, rng=None):
    """`seconds` of faint noise with a 0.5 s tone at 0.3 from `at`."""
    rng = rng or np.random.default_rng(0)
    audio = 0.01 * rng.normal(size=int(seconds * SAMPLE_RATE))
    start = int(at * SAMPLE_RATE)
    time = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    audio[start : start + time.size] += 0.3 * np.sin(2 * np.pi * frequency * time)
    return audio.astype("float32")


@pytest.fixture(scope="module")
def tone_model_path(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tone_model")
    tone_model().save(str(directory / "model.keras"))
    (directory / "manifest.json").write_text(json.dumps({"class_names": TONE_CLASSES}))
    return str(directory / "model.keras")


def _run(recipe, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(RECIPES, recipe), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_detect_truth_counts_every_false_accept(tone_model_path, tmp_path):
    # 20 s: "beep" (1 kHz) at 2, 8 and 14 s; "hiss" (3 kHz, which the model calls "buzz")
    # at 5 and 11 s; "boop" (1 kHz, which the model calls "beep") at 17 s. The truth lists
    # "beep" only: 3 hits; the two "buzz" and the "boop" are false accepts.
    rng = np.random.default_rng(1)
    audio = (0.01 * rng.normal(size=20 * SAMPLE_RATE)).astype("float32")
    words = [("beep", 2, 1000), ("hiss", 5, 3000), ("beep", 8, 1000), ("hiss", 11, 3000)]
    words += [("beep", 14, 1000), ("boop", 17, 1000)]
    occurrences = []
    for word, start, frequency in words:
        audio[start * SAMPLE_RATE : (start + 1) * SAMPLE_RATE] = _clip(frequency, at=0.0, rng=rng)
        occurrences.append({"word": word, "start": start, "end": start + 0.5})
    write_wav(str(tmp_path / "long.wav"), audio, SAMPLE_RATE)
    truth = {"keywords": ["beep"], "occurrences": occurrences}
    (tmp_path / "long.json").write_text(json.dumps(truth))
    result = _run(
        "detect.py",
        f"--model={tone_model_path}",
        f"--wav={tmp_path / 'long.wav'}",
        f"--truth={tmp_path / 'long.json'}",
        "--hop_ms=100",
        "--window_seconds=0.5",
        "--smoothing_ms=100",
        "--json",
    )
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["keyword"], int(e["start"])) for e in events] == [
        ("beep", 2),
        ("buzz", 5),
        ("beep", 8),
        ("buzz", 11),
        ("beep", 14),
        ("beep", 17),
    ]
    # 3 false accepts in 20 s = 540 per hour.
    assert result.stderr.strip().splitlines()[-1] == (
        "3/3 keywords detected: miss rate 0.0 %, 3 false accepts in 0.3 min = 540.0 per hour"
    )


def test_evaluate_stream_reports_a_perfect_detector_and_its_false_accepts(
    tone_model_path, tmp_path
):
    # A GSC2 tree whose only keyword the model knows is "beep"; "boop" is a distractor the
    # model calls "beep" too: at every threshold the tones clear, no beep is missed and
    # every boop is a false accept.
    root = tmp_path / "corpus"
    rng = np.random.default_rng(2)
    listed = []
    for word, frequency in (("beep", 1000), ("boop", 1000)):
        os.makedirs(root / word)
        for index in range(3):
            write_wav(str(root / word / f"s{index}.wav"), _clip(frequency, rng=rng), SAMPLE_RATE)
            listed.append(f"{word}/s{index}.wav")
    (root / "testing_list.txt").write_text("\n".join(listed) + "\n")
    os.makedirs(root / "_background_noise_")
    noise = (0.01 * rng.normal(size=12 * SAMPLE_RATE)).astype("float32")
    write_wav(str(root / "_background_noise_" / "noise.wav"), noise, SAMPLE_RATE)
    output = tmp_path / "det"
    _run(
        "evaluate_stream.py",
        f"--model={tone_model_path}",
        f"--data_dir={root}",
        "--stream_seconds=90",
        "--hop_ms=100",
        "--window_seconds=0.5",
        "--smoothing_ms=100",
        f"--output_dir={output}",
    )
    report = json.loads((output / "det.json").read_text())
    beeps, boops = report["occurrences"]["beep"], report["distractors"]
    assert set(report["occurrences"]) == {"beep"} and beeps >= 3 and boops >= 2
    per_hour = boops / (90 / 3600)
    points = [p for p in report["curves"]["beep"] if p[0] <= 0.9]
    assert len(points) >= 10
    np.testing.assert_allclose(points, [[p[0], 0.0, per_hour] for p in points])
    assert (output / "det.png").stat().st_size > 0
