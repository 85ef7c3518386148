"""Wake-word detection on per-hop posteriors: smoothing, thresholds, refractory.

`Detector` turns the posteriors a spotter emits for each hop into events:

1. each keyword's posterior is averaged over the last `smoothing_seconds`
   (a causal moving average, as the spotter's rows arrive);
2. an event opens when a keyword's smoothed score crosses its threshold
   (below at the previous hop, at or above now) and no event opened in the
   last `refractory_seconds` (any keyword: a wake word fires once, not once
   per keyword that shares its sounds); a score that stays above the
   threshold through the refractory period does not fire when it ends;
3. the event closes at the first hop where that score falls below the
   threshold again; it reports the keyword, the time it opened (`start`,
   the end of the first hop at or above threshold, so the detection
   latency), the time it closed (`end`) and the highest smoothed score.

Times are seconds from the start of the stream, at the end of the hop.
"""

import dataclasses

import numpy as np

NON_KEYWORDS = ("_silence_", "_unknown_")


@dataclasses.dataclass(frozen=True)
class Event:
    """One detection.

    Attributes:
        keyword: the class name.
        start: seconds at which the smoothed score first reached the threshold.
        end: seconds at which it fell below again (or the stream ended).
        score: the highest smoothed score of the event.
    """

    keyword: str
    start: float
    end: float
    score: float


class Detector:
    """Events from a stream of posteriors, row by row.

    Args:
        class_names: the model's classes, in the order of its outputs.
        hop_seconds: seconds of audio per posterior row.
        thresholds: one float for every keyword, or `{keyword: threshold}`
            (keywords not named keep `default_threshold`).
        smoothing_seconds: length of the moving average.
        refractory_seconds: no event opens this long after one opened.
        keywords: classes that can fire; default every class but
            `_silence_` and `_unknown_`.
        default_threshold: the threshold of keywords `thresholds` leaves out.
    """

    def __init__(
        self,
        class_names,
        hop_seconds,
        thresholds=0.5,
        smoothing_seconds=0.2,
        refractory_seconds=1.0,
        keywords=None,
        default_threshold=0.5,
    ):
        self.class_names = [str(name) for name in class_names]
        if hop_seconds <= 0:
            raise ValueError(f"hop_seconds must be positive. Received: hop_seconds={hop_seconds}")
        if smoothing_seconds < 0 or refractory_seconds < 0:
            raise ValueError(
                "smoothing_seconds and refractory_seconds must be >= 0. Received: "
                f"smoothing_seconds={smoothing_seconds}, refractory_seconds={refractory_seconds}"
            )
        keywords = (
            [k for k in self.class_names if k not in NON_KEYWORDS] if keywords is None else keywords
        )
        unknown = [k for k in keywords if k not in self.class_names]
        if unknown or not keywords:
            raise ValueError(
                f"keywords must be non-empty class names of the model {self.class_names}. "
                f"Received: keywords={list(keywords)}"
            )
        self.keywords = list(keywords)
        self._columns = np.array([self.class_names.index(k) for k in self.keywords])
        if isinstance(thresholds, dict):
            extra = set(thresholds) - set(self.keywords)
            if extra:
                raise ValueError(
                    f"thresholds name classes that are not keywords: {sorted(extra)}. "
                    f"Keywords: {self.keywords}"
                )
            values = [float(thresholds.get(k, default_threshold)) for k in self.keywords]
        else:
            values = [float(thresholds)] * len(self.keywords)
        if not all(0 < v <= 1 for v in values):
            raise ValueError(f"thresholds must be in (0, 1]. Received: thresholds={thresholds!r}")
        self.thresholds = np.array(values, np.float32)
        self.hop_seconds = float(hop_seconds)
        self.smoothing_hops = max(1, int(round(smoothing_seconds / hop_seconds)))
        self.refractory_hops = int(round(refractory_seconds / hop_seconds))
        self.reset()

    def reset(self):
        self._recent = np.zeros((0, len(self.keywords)), np.float32)
        self._hop = 0
        self._last_start = None
        self._open = None  # (keyword index, start hop, best score)
        self._was_above = np.zeros(len(self.keywords), bool)

    def update(self, posteriors):
        """Feeds posterior rows `[hops, num_classes]`; returns the events closed."""
        posteriors = np.asarray(posteriors, np.float32).reshape(-1, len(self.class_names))
        events = []
        for row in posteriors[:, self._columns]:
            self._recent = np.concatenate([self._recent, row[np.newaxis]])[-self.smoothing_hops :]
            smoothed = self._recent.mean(axis=0)
            self._hop += 1
            events.extend(self._step(smoothed))
        return events

    def flush(self):
        """Closes an event still open at the end of the stream."""
        events = [] if self._open is None else [self._close(self._open, self._hop)]
        self._open = None
        return events

    def _step(self, smoothed):
        events = []
        above = smoothed >= self.thresholds
        rising = above & ~self._was_above
        self._was_above = above
        if self._open is not None:
            index, start, best = self._open
            if above[index]:
                self._open = (index, start, max(best, float(smoothed[index])))
                return events
            events.append(self._close(self._open, self._hop - 1))
            self._open = None
        refractory = (
            self._last_start is not None and self._hop - self._last_start < self.refractory_hops
        )
        if rising.any() and not refractory:
            margins = np.where(rising, smoothed - self.thresholds, -np.inf)
            index = int(np.argmax(margins))
            self._open = (index, self._hop, float(smoothed[index]))
            self._last_start = self._hop
        return events

    def _close(self, state, end_hop):
        index, start, best = state
        return Event(
            keyword=self.keywords[index],
            start=round(start * self.hop_seconds, 6),
            end=round(max(end_hop, start) * self.hop_seconds, 6),
            score=best,
        )

    def detect(self, posteriors):
        """All events of a whole stream of posteriors, from a fresh state."""
        self.reset()
        return self.update(posteriors) + self.flush()
