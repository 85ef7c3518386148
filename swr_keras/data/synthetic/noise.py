"""Background noise of the synthetic corpora and mixing at a random SNR.

Noise is white, pink, brown or babble. Babble is several overlapping talkers
made of time-reversed synthetic speech, so it sounds like speech but never
contains a keyword. Each corpus draws its clips' noise from one long track
per type.
"""

import numpy as np

from swr_keras.data.synthetic import espeak, render, voices

MIN_NOISE_TRACK_SECONDS = 30.0
_NOISE_TYPES = ("white", "pink", "brown", "babble")
_BABBLE_TALKERS = 5
_BABBLE_UTTERANCES = 60


def babble_requests(rng, texts, language):
    """eSpeak requests for the babble material, speaking `texts`.

    Babble talkers are speakers of their own, so no corpus speaker's voice
    leaks into another split through the noise.
    """
    speakers = voices.make_speakers(rng, ["babble"] * _BABBLE_TALKERS * 2)
    requests = []
    for _ in range(_BABBLE_UTTERANCES):
        speaker = speakers[int(rng.integers(len(speakers)))]
        text = texts[int(rng.integers(len(texts)))]
        requests.append(voices.utterance_request(rng, speaker, text, language))
    return requests


def _coloured_noise(rng, num_samples, colour):
    """Unit-RMS white, pink (1/f power) or brown (1/f^2 power) noise."""
    white = rng.standard_normal(num_samples)
    if colour != "white":
        exponent = {"pink": 0.5, "brown": 1.0}[colour]
        spectrum = np.fft.rfft(white)
        freqs = np.arange(len(spectrum), dtype=np.float64)
        freqs[0] = 1.0
        spectrum = spectrum / freqs**exponent
        spectrum[0] = 0.0
        white = np.fft.irfft(spectrum, num_samples)
    return white / max(np.sqrt(np.mean(white**2)), 1e-12)


def _babble(rng, utterances, num_samples):
    """Overlapping talkers of time-reversed speech, unit RMS, source rate."""
    mix = np.zeros(num_samples)
    for _ in range(_BABBLE_TALKERS):
        talker = []
        length = int(rng.integers(0, num_samples // 10))
        talker.append(np.zeros(length))
        while length < num_samples:
            utterance = utterances[int(rng.integers(len(utterances)))][::-1]
            gap = np.zeros(int(rng.integers(0, len(utterance) // 2 + 1)))
            talker.extend([utterance, gap])
            length += len(utterance) + len(gap)
        talker = np.concatenate(talker)[:num_samples]
        mix += talker / max(np.sqrt(np.mean(talker**2)), 1e-12)
    return mix / max(np.sqrt(np.mean(mix**2)), 1e-12)


def noise_tracks(rng, babble_utterances, sample_rate, seconds):
    """One long unit-RMS track per noise type, at `sample_rate`.

    Args:
        rng: NumPy generator.
        babble_utterances: trimmed eSpeak waveforms (at eSpeak's rate) of
            the `babble_requests`.
        sample_rate: rate of the tracks in Hz.
        seconds: length of every track.

    Returns:
        A dict from noise type (`"white"`, `"pink"`, `"brown"`, `"babble"`)
        to its track.
    """
    num_samples = int(seconds * sample_rate)
    tracks = {
        colour: _coloured_noise(rng, num_samples, colour) for colour in ("white", "pink", "brown")
    }
    source_rate = espeak.sample_rate()
    babble = _babble(rng, babble_utterances, int(seconds * source_rate) + 1)
    babble = render.resample(babble, source_rate, sample_rate)[:num_samples]
    tracks["babble"] = babble / max(np.sqrt(np.mean(babble**2)), 1e-12)
    return tracks


def mix_clip(rng, speech, num_samples, onset_range, tracks, snr_db_range):
    """Speech at a random onset over a random slice of a random noise track."""
    speech = speech[:num_samples]
    low = int(onset_range[0])
    high = max(low, int(onset_range[1]) - len(speech))
    onset = min(int(rng.integers(low, high + 1)), num_samples - len(speech))
    clip = np.zeros(num_samples)
    clip[onset : onset + len(speech)] = speech / max(np.sqrt(np.mean(speech**2)), 1e-12)
    track = tracks[_NOISE_TYPES[int(rng.integers(len(_NOISE_TYPES)))]]
    start = int(rng.integers(0, len(track) - num_samples + 1))
    snr_db = rng.uniform(*snr_db_range)
    clip += track[start : start + num_samples] * 10.0 ** (-snr_db / 20.0)
    peak_db = rng.uniform(-20.0, -1.0)
    return clip * (10.0 ** (peak_db / 20.0) / max(np.abs(clip).max(), 1e-12))
