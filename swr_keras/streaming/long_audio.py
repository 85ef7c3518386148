"""Long synthetic streams with keywords at known times, for detector evaluation.

`make_long_audio` lays a background of noise and babble (random segments of
the corpus's `_background_noise_` tracks) over the whole stream and adds
keyword clips, and clips of other words as distractors, at random times
with random gaps. The ground truth is every keyword clip's interval.
`gsc2_test_clips` reads the test split of a GSC2-layout corpus (the
synthetic one in `swr_keras.data.synthetic` or the real one).
"""

import dataclasses
import os

import numpy as np

from swr_keras.data.audio import read_wav

SAMPLE_RATE = 16000
BACKGROUND_FOLDER = "_background_noise_"


@dataclasses.dataclass(frozen=True)
class Occurrence:
    """One word placed in a stream.

    Attributes:
        word: the word (a keyword or a distractor).
        start: seconds from the start of the stream to the clip's start.
        end: seconds to the clip's end.
    """

    word: str
    start: float
    end: float


def gsc2_test_clips(root, words):
    """`{word: [waveform, ...]}` of the test split (`testing_list.txt`) of a GSC2 tree."""
    with open(os.path.join(root, "testing_list.txt"), encoding="utf-8") as file:
        names = [line.strip() for line in file if line.strip()]
    clips = {word: [] for word in words}
    for name in names:
        word = name.split("/")[0]
        if word in clips:
            clips[word].append(read_wav(os.path.join(root, name), sample_rate=SAMPLE_RATE))
    empty = [word for word, found in clips.items() if not found]
    if empty:
        raise ValueError(
            f"The test split of {root} has no clip of {empty}. Pass words that have test clips."
        )
    return clips


def background_tracks(root):
    """The `_background_noise_` tracks of a GSC2 tree, float32 waveforms."""
    folder = os.path.join(root, BACKGROUND_FOLDER)
    names = sorted(name for name in os.listdir(folder) if name.endswith(".wav"))
    if not names:
        raise ValueError(f"No background noise WAV in {folder}.")
    return [read_wav(os.path.join(folder, name), sample_rate=SAMPLE_RATE) for name in names]


def make_long_audio(
    keyword_clips,
    background,
    seconds,
    *,
    distractor_clips=None,
    distractor_share=0.3,
    gap_seconds=(1.0, 6.0),
    snr_db=(5.0, 20.0),
    seed=0,
):
    """Builds a stream of `seconds` with keywords at random times.

    Words follow one another with a uniform random gap in `gap_seconds`
    between the end of one clip and the start of the next; each is a
    distractor with probability `distractor_share`, else a keyword, drawn
    uniformly (word, then clip). The background changes track and segment
    every 10 s, its RMS drawn `snr_db` below the median RMS of the keyword
    clips; the clips keep their own level (and their own noise).

    Args:
        keyword_clips: `{keyword: [waveform, ...]}` at 16 kHz.
        background: list of noise waveforms (at least 10 s each).
        seconds: length of the stream.
        distractor_clips: optional `{word: [waveform, ...]}` of other words.
        distractor_share: probability that a placed word is a distractor.
        gap_seconds: `(min, max)` gap between words.
        snr_db: `(min, max)` of the keyword clips' median RMS over the
            background's RMS, in dB, drawn per 10 s segment.
        seed: random seed; the same seed gives the same stream.

    Returns:
        `(audio, occurrences)`: float32 `[seconds * 16000]` in [-1, 1], and
        a list of `Occurrence` of keywords and distractors in time order.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive. Received: seconds={seconds}")
    if not keyword_clips or not all(keyword_clips.values()):
        raise ValueError("keyword_clips must map at least one keyword to clips.")
    low, high = gap_seconds
    if not 0 <= low <= high:
        raise ValueError(
            f"gap_seconds must be (min, max) with 0 <= min <= max. Received: {gap_seconds}"
        )
    rng = np.random.default_rng(seed)
    total = int(round(seconds * SAMPLE_RATE))
    level = np.median(
        [np.sqrt(np.mean(c.astype(np.float64) ** 2)) for v in keyword_clips.values() for c in v]
    )
    audio = _background(
        rng, background, total, [20 * np.log10(level) - snr for snr in snr_db[::-1]]
    )
    occurrences = []
    position = int(rng.uniform(low, high) * SAMPLE_RATE)
    keywords = sorted(keyword_clips)
    distractors = sorted(distractor_clips or {})
    while True:
        if distractors and rng.uniform() < distractor_share:
            word = distractors[rng.integers(len(distractors))]
            pool = distractor_clips[word]
        else:
            word = keywords[rng.integers(len(keywords))]
            pool = keyword_clips[word]
        clip = pool[rng.integers(len(pool))]
        if position + clip.size > total:
            break
        audio[position : position + clip.size] += clip
        occurrences.append(
            Occurrence(word, position / SAMPLE_RATE, (position + clip.size) / SAMPLE_RATE)
        )
        position += clip.size + int(rng.uniform(low, high) * SAMPLE_RATE)
    return np.clip(audio, -1.0, 1.0).astype(np.float32), occurrences


def _background(rng, tracks, total, gain_db):
    segment = 10 * SAMPLE_RATE
    parts = []
    for start in range(0, total, segment):
        track = tracks[rng.integers(len(tracks))]
        length = min(segment, total - start)
        if track.size < length:
            track = np.tile(track, length // track.size + 1)
        offset = rng.integers(track.size - length + 1)
        piece = track[offset : offset + length].astype(np.float64)
        rms = np.sqrt(np.mean(piece**2)) or 1.0
        parts.append(piece / rms * 10 ** (rng.uniform(*gain_db) / 20))
    return np.concatenate(parts) if parts else np.zeros(0)
