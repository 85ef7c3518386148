"""The detector on posteriors and on a generated stream with known keyword times."""

import numpy as np
import pytest

from swr_keras.data.features import mel_filterbank
from swr_keras.streaming.det import det_curves, match_events, operating_point
from swr_keras.streaming.detector import Detector, Event
from swr_keras.streaming.long_audio import Occurrence, make_long_audio
from swr_keras.streaming.spotters import SlidingWindowSpotter, sliding_window_posteriors

CLASSES = ["_silence_", "_unknown_", "yes", "no"]
HOP = 0.1


def _posteriors(seconds, bumps):
    """Silence everywhere, and `{(keyword, start, end)}` at 0.9 between the times."""
    rows = np.zeros((int(round(seconds / HOP)), len(CLASSES)), np.float32)
    rows[:, 0] = 1.0
    for keyword, start, end in bumps:
        span = slice(int(round(start / HOP)), int(round(end / HOP)))
        rows[span] = 0.05
        rows[span, CLASSES.index(keyword)] = 0.9
    return rows


def test_events_land_on_the_keywords_with_their_scores():
    posteriors = _posteriors(10, [("yes", 2.0, 3.0), ("no", 6.0, 6.5)])
    events = Detector(CLASSES, HOP, smoothing_seconds=0.0).detect(posteriors)
    assert [e.keyword for e in events] == ["yes", "no"]
    # Row i covers the hop ending at (i + 1) * HOP.
    assert events[0].start == pytest.approx(2.1) and events[0].end == pytest.approx(3.0)
    assert events[1].start == pytest.approx(6.1) and events[0].score == pytest.approx(0.9)


def test_smoothing_delays_the_event_and_a_high_threshold_rejects_it():
    posteriors = _posteriors(6, [("yes", 2.0, 3.0)])
    (event,) = Detector(CLASSES, HOP, smoothing_seconds=0.4).detect(posteriors)
    assert event.start == pytest.approx(2.3)  # 2 of the 4 smoothed rows at 0.9 reach 0.5
    assert not Detector(CLASSES, HOP, thresholds={"yes": 0.95}).detect(posteriors)


def test_refractory_period_suppresses_duplicates():
    flicker = _posteriors(8, [("yes", 2.0, 2.5), ("yes", 2.7, 3.2), ("yes", 5.0, 5.5)])
    without = Detector(CLASSES, HOP, smoothing_seconds=0.0, refractory_seconds=0.0)
    assert len(without.detect(flicker)) == 3
    events = Detector(CLASSES, HOP, smoothing_seconds=0.0, refractory_seconds=1.0).detect(flicker)
    assert [e.start for e in events] == pytest.approx([2.1, 5.1])


def test_no_events_on_silence_and_streamed_rows_equal_one_pass():
    assert Detector(CLASSES, HOP).detect(_posteriors(30, [])) == []
    posteriors = _posteriors(10, [("yes", 2.0, 3.0), ("no", 6.0, 9.0)])
    detector = Detector(CLASSES, HOP)
    streamed = []
    for start in range(0, len(posteriors), 7):
        streamed += detector.update(posteriors[start : start + 7])
    streamed += detector.flush()
    assert streamed == Detector(CLASSES, HOP).detect(posteriors)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="keywords"):
        Detector(CLASSES, HOP, keywords=["maybe"])
    with pytest.raises(ValueError, match="thresholds"):
        Detector(CLASSES, HOP, thresholds=1.5)
    with pytest.raises(ValueError, match="not keywords"):
        Detector(CLASSES, HOP, thresholds={"_silence_": 0.5})


def test_matching_counts_hits_once_and_the_rest_as_false_accepts():
    truth = [Occurrence("yes", 1.0, 2.0), Occurrence("no", 5.0, 6.0), Occurrence("bed", 8.0, 9.0)]
    events = [
        Event("yes", 1.5, 2.0, 0.9),
        Event("yes", 1.9, 2.4, 0.8),  # the same occurrence again
        Event("no", 7.5, 8.0, 0.9),  # too late for a tolerance of 1 s
        Event("no", 8.2, 8.5, 0.9),  # on a distractor
    ]
    assert match_events(events, truth, 1.0) == {"yes": (1, 1), "no": (0, 2)}
    assert match_events(events, truth, 2.0) == {"yes": (1, 1), "no": (1, 1)}


# A generated stream: a 1 kHz tone burst is the keyword "beep", in noise.
SAMPLE_RATE = 16000


def _tone_spotter_predict(log_mel):
    """Posteriors of a toy 'beep' model: the energy of the mel band at 1 kHz."""
    band = int(np.argmax(mel_filterbank()[1000 * 512 // SAMPLE_RATE]))
    energy = log_mel[:, band, -20:, 0].mean(axis=1) - log_mel[:, :, -20:, 0].mean(axis=(1, 2))
    beep = 1 / (1 + np.exp(-(energy - 4.0)))
    return np.stack([1 - beep, np.zeros_like(beep), beep], axis=1)


def test_detector_finds_the_keywords_of_a_generated_stream():
    rng = np.random.default_rng(0)
    time = np.arange(int(0.5 * SAMPLE_RATE)) / SAMPLE_RATE
    beeps = [(0.3 * np.sin(2 * np.pi * 1000 * time)).astype("float32")]
    words = [(0.3 * rng.normal(size=8000) * np.hanning(8000)).astype("float32")]
    noise = [(0.01 * rng.normal(size=SAMPLE_RATE * 12)).astype("float32")]
    audio, truth = make_long_audio(
        {"beep": beeps}, noise, 40, distractor_clips={"hiss": words}, seed=1
    )
    beeps_true = [o for o in truth if o.word == "beep"]
    assert beeps_true and len(beeps_true) < len(truth)
    classes = ["_silence_", "_unknown_", "beep"]
    posteriors = sliding_window_posteriors(
        _tone_spotter_predict, audio, 40, hop_frames=5, outputs_probabilities=True
    )
    spotter = SlidingWindowSpotter(_tone_spotter_predict, 3, 40, 5, outputs_probabilities=True)
    streamed = spotter.process(audio[: audio.size - audio.size % 800])
    np.testing.assert_allclose(streamed, posteriors, atol=1e-6)
    events = Detector(classes, 0.05, refractory_seconds=1.0).detect(posteriors)
    assert match_events(events, truth, 0.5) == {"beep": (len(beeps_true), 0)}
    for event, occurrence in zip(events, beeps_true):
        assert occurrence.start <= event.start <= occurrence.end + 0.2
    curve = det_curves(posteriors, classes, 0.05, truth, ["beep"], tolerance_seconds=0.5)["beep"]
    # At the detector's own settings (threshold 0.5) every beep is found, none falsely.
    assert dict((p[0], p[1:]) for p in curve)[0.5] == (0.0, 0.0)
    assert operating_point(curve, 0.0)[1] == 0.0
