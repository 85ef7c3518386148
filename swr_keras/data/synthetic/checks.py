"""Argument checks of the synthetic corpus generators.

`make_gsc_corpus` and `make_mc_kws_corpus` call these before writing
anything, so a bad setting fails with a message naming the value received
and the fix instead of leaving a half-written corpus behind.
"""

import numpy as np

from swr_keras.data.synthetic import espeak
from swr_keras.validation import check_positive_int


def check_words(words, name):
    """Returns `words` as a list after checking they can be folder names."""
    if isinstance(words, str):
        raise ValueError(
            f"`{name}` must be a list of words, not one string. Received: "
            f"{name}={words!r}. Pass e.g. [{words!r}]."
        )
    words = list(words)
    if not words:
        raise ValueError(f"`{name}` must contain at least one word. Received: {name}={words!r}")
    for word in words:
        if not isinstance(word, str) or not word.strip():
            raise ValueError(
                f"Every entry of `{name}` must be a non-empty string. "
                f"Received: {word!r} in {name}={words!r}"
            )
        if word != word.strip() or "/" in word or "\\" in word or word[0] in "._":
            raise ValueError(
                "Words are used as folder names: no leading/trailing spaces, "
                "no slashes, and no leading '.' or '_' (reserved for "
                f"`_background_noise_`). Received: {word!r} in {name}"
            )
    if len(set(words)) != len(words):
        raise ValueError(f"`{name}` has duplicates. Received: {name}={words!r}")
    return words


def _check_language(language):
    if not isinstance(language, str) or "+" in language:
        raise ValueError(
            "`language` must be an eSpeak NG language such as 'en' or 'cmn', "
            f"without a '+variant'. Received: language={language!r}"
        )
    espeak.check_voice(language, name="language")


def check_snr_range(snr_db_range):
    """Returns `snr_db_range` as a `(low, high)` pair of floats."""
    try:
        low, high = (float(value) for value in snr_db_range)
    except (TypeError, ValueError):
        low, high = np.nan, np.nan
    if not -20.0 <= low <= high:
        raise ValueError(
            "`snr_db_range` must be (low, high) with -20 <= low <= high "
            f"(dB). Received: snr_db_range={snr_db_range!r}"
        )
    return low, high


def _check_sample_rate(sample_rate):
    check_positive_int("sample_rate", sample_rate)
    if sample_rate < 8000:
        raise ValueError(
            f"`sample_rate` must be at least 8000 Hz. Received: sample_rate={sample_rate}"
        )


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")


def check_common(language, num_speakers, clips_per_word, sample_rate, seed, num_workers):
    """Checks the arguments that both corpus generators take."""
    _check_language(language)
    check_positive_int("num_speakers", num_speakers)
    check_positive_int("clips_per_word", clips_per_word)
    _check_sample_rate(sample_rate)
    _check_seed(seed)
    check_positive_int("num_workers", num_workers)


def check_split_percentages(validation_percentage, testing_percentage):
    if not (
        0 <= validation_percentage
        and 0 <= testing_percentage
        and validation_percentage + testing_percentage < 100
    ):
        raise ValueError(
            "`validation_percentage` and `testing_percentage` must be >= 0 "
            "and sum to less than 100. Received: validation_percentage="
            f"{validation_percentage}, testing_percentage={testing_percentage}"
        )


def check_speaker_split(speaker_split, num_speakers, heldout_voices):
    """Checks MC-KWS's fixed `(train, valid, test)` speaker counts."""
    if speaker_split is None:
        if heldout_voices:
            raise ValueError(
                "`heldout_voices=True` needs a fixed `speaker_split=(train, valid, test)`, "
                "so that the validation and test speakers are known when voices are drawn."
            )
        return
    try:
        counts = tuple(speaker_split)
    except TypeError:
        counts = ()
    if (
        len(counts) != 3
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in counts)
        or min(counts) < 1
        or sum(counts) != num_speakers
    ):
        raise ValueError(
            "`speaker_split` must be 3 positive ints (train, valid, test) summing to "
            f"`num_speakers`={num_speakers}. Received: speaker_split={speaker_split}"
        )


def check_gsc_durations(clip_seconds, background_noise_seconds):
    if not 0.1 <= clip_seconds <= 60 or not 1 <= background_noise_seconds <= 3600:
        raise ValueError(
            "`clip_seconds` must be in [0.1, 60] and `background_noise_seconds` "
            f"in [1, 3600]. Received: clip_seconds={clip_seconds}, "
            f"background_noise_seconds={background_noise_seconds}"
        )


def check_mc_kws_durations(clip_seconds_range, speech_within_seconds):
    """Returns `clip_seconds_range` as a `(low, high)` pair of floats."""
    try:
        low, high = (float(value) for value in clip_seconds_range)
    except (TypeError, ValueError):
        low, high = np.nan, np.nan
    if not 0.5 <= low <= high <= 60 or not 0.5 <= speech_within_seconds:
        raise ValueError(
            "`clip_seconds_range` must be (low, high) with 0.5 <= low <= high "
            "<= 60 and `speech_within_seconds` at least 0.5. Received: "
            f"clip_seconds_range={clip_seconds_range!r}, "
            f"speech_within_seconds={speech_within_seconds}"
        )
    return low, high
