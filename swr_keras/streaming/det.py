"""Detection error trade-off (DET): false accepts per hour vs miss rate.

An event of keyword `k` is a hit when it opens (its `start`) inside an
unmatched occurrence of `k`, from the occurrence's start to `tolerance`
seconds after its end (a model needs some of the word before it can fire);
each occurrence counts once. Every other event is a false accept. For each
keyword the detector runs alone on that keyword's posterior, once per
threshold, which gives its DET curve: miss rate (missed occurrences over
occurrences) against false accepts per hour of stream.
"""

import numpy as np

from swr_keras.kws.report import _new_figure, _save_png
from swr_keras.streaming.detector import Detector

DEFAULT_THRESHOLDS = tuple(
    np.round(np.concatenate([np.arange(0.05, 0.95, 0.05), [0.95, 0.98, 0.99]]), 3)
)


def match_events(events, occurrences, tolerance_seconds):
    """Counts `(hits, false_accepts, occurrences)` per keyword.

    Args:
        events: `Event`s of a stream.
        occurrences: ground-truth `Occurrence`s of the stream (distractors
            included: they are simply never a keyword's occurrence).
        tolerance_seconds: how long after an occurrence's end an event still
            counts.

    Returns:
        `{keyword: (hits, false_accepts)}` for every keyword with an event
        or an occurrence.
    """
    free = sorted(occurrences, key=lambda o: o.start)
    used = set()
    counts = {}
    for event in sorted(events, key=lambda e: e.start):
        hit = next(
            (
                index
                for index, o in enumerate(free)
                if index not in used
                and o.word == event.keyword
                and o.start <= event.start <= o.end + tolerance_seconds
            ),
            None,
        )
        hits, false_accepts = counts.get(event.keyword, (0, 0))
        if hit is None:
            counts[event.keyword] = (hits, false_accepts + 1)
        else:
            used.add(hit)
            counts[event.keyword] = (hits + 1, false_accepts)
    return counts


def det_curves(
    posteriors,
    class_names,
    hop_seconds,
    occurrences,
    keywords,
    *,
    thresholds=DEFAULT_THRESHOLDS,
    smoothing_seconds=0.2,
    refractory_seconds=1.0,
    tolerance_seconds=1.0,
):
    """The DET curve of each keyword over one stream's posteriors.

    Returns:
        `{keyword: [(threshold, miss_rate, false_accepts_per_hour), ...]}`,
        thresholds ascending, for every keyword that occurs in the stream.
    """
    hours = len(posteriors) * hop_seconds / 3600.0
    curves = {}
    for keyword in keywords:
        total = sum(1 for o in occurrences if o.word == keyword)
        if not total:
            continue  # no miss rate without occurrences (a short stream)
        points = []
        for threshold in sorted(thresholds):
            detector = Detector(
                class_names,
                hop_seconds,
                thresholds=threshold,
                smoothing_seconds=smoothing_seconds,
                refractory_seconds=refractory_seconds,
                keywords=[keyword],
            )
            hits, false_accepts = match_events(
                detector.detect(posteriors), occurrences, tolerance_seconds
            ).get(keyword, (0, 0))
            points.append((float(threshold), 1.0 - hits / total, false_accepts / hours))
        curves[keyword] = points
    return curves


def operating_point(curve, max_false_accepts_per_hour):
    """The point of lowest miss rate with at most that many false accepts per hour.

    Returns:
        `(threshold, miss_rate, false_accepts_per_hour)`, or `None` if no
        threshold gets that low.
    """
    allowed = [p for p in curve if p[2] <= max_false_accepts_per_hour]
    return min(allowed, key=lambda p: (p[1], -p[0])) if allowed else None


def plot_det(curves, path, title="DET"):
    """Writes the DET curves as a PNG: false accepts per hour vs miss rate."""
    figure = _new_figure(6.5, 4.5)
    axes = figure.add_subplot()
    for keyword, points in sorted(curves.items()):
        false_accepts = [max(p[2], 0.1) for p in points]
        axes.plot(false_accepts, [100 * p[1] for p in points], marker=".", label=keyword)
    axes.set_xscale("log")
    axes.set_xlabel("false accepts per hour (0 drawn at 0.1)")
    axes.set_ylabel("miss rate (%)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    return _save_png(figure, path)
