"""Synthetic multi-lingual keyword-spotting corpus spoken by eSpeak NG.

Google Speech Commands v2 (GSC2, English) and MC-KWS (Mandarin) cannot be
downloaded everywhere, so this module synthesises stand-ins in exactly their
on-disk formats; they are also the project's default data.

Speakers. A speaker is an eSpeak NG voice variant (m1-m8, f1-f5 and 37 named
variants) with its own base pitch, intonation range, speaking rate and
loudness. Each utterance jitters rate and pitch around the speaker's values.

Clips. The trimmed utterance is resampled to the corpus rate with a random
spectral tilt (microphone colour), placed at a random time offset and mixed
with noise (white, pink, brown or babble) at a random signal-to-noise ratio,
then scaled to a random peak level. Babble is several overlapping talkers
made of time-reversed synthetic speech, so it sounds like speech but never
contains a keyword.

GSC2 tree (16 kHz, 1 s, 16-bit mono WAVs):

    <root>/<word>/<speaker_id>_nohash_<n>.wav
    <root>/validation_list.txt
    <root>/testing_list.txt
    <root>/_background_noise_/{white,pink,brown}_noise.wav, babble.wav

`speaker_id` is 8 hex digits. As in GSC, a speaker's split is a function of
the SHA-1 of its id (percentage buckets), so every speaker is in exactly one
split; the ids are drawn so that the split sizes match the percentages.

MC-KWS tree (48 kHz, 1.3-6.2 s, 16-bit mono WAVs; MagicHub layout):

    <root>/WAV/<SPEAKER_ID>/<UTTRANS_ID>
    <root>/UTTRANSINFO.txt   SPEAKER_ID, UTTRANS_ID, PROMPT, TRANSCRIPTION
    <root>/SPKINFO.txt       SPEAKER_ID, AGE, GENDER, VOICE, PITCH, RATE

Both metadata files are tab-separated with a header line. The whole keyword
lies inside the first `speech_within_seconds` (default 2.24 s, the paper's
MC-KWS clip length) of every clip, so cropping clips to that length keeps it.
The 20 default keywords are 7 near-homophone pairs, 4 unpaired Mandarin
keywords and 2 English keywords; `mc_kws_mapping.json` holds the paper's
12-class mapping.

Any words in any eSpeak NG language work, e.g.
`make_gsc_corpus("/tmp/kws_de", words=["ja", "nein", "stopp"], language="de")`.

The default corpus (`ensure_default_corpus`) has 100 GSC speakers x 20 words
x 2 clips (4,000 clips, about 130 MB) and 37 MC-KWS speakers x 20 keywords
x 4 clips (2,960 clips, about 580 MB); it takes about 20-40 s on 2 CPU cores.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import typing
import wave

import numpy as np

from swr_keras.data import espeak

GSC_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
GSC_UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
)
MC_KWS_KEYWORD_PAIRS = (
    ("打开", "打卡"),
    ("返回", "反悔"),
    ("充电", "冲淡"),
    ("唤醒", "换新"),
    ("开始", "开市"),
    ("停止", "停职"),
    ("音量", "阴凉"),
)
MC_KWS_UNPAIRED_KEYWORDS = ("关灯", "暂停", "拍照", "导航")
MC_KWS_ENGLISH_KEYWORDS = ("hello", "okay")
MC_KWS_KEYWORDS = (
    tuple(word for pair in MC_KWS_KEYWORD_PAIRS for word in pair)
    + MC_KWS_UNPAIRED_KEYWORDS
    + MC_KWS_ENGLISH_KEYWORDS
)
MC_KWS_MAPPING_PATH = os.path.join(os.path.dirname(__file__), "mc_kws_mapping.json")

DEFAULT_CORPUS_NAME = "synthetic_kws_v1"

# Variants that sound like people; robot, whisper and croak variants are left
# out because no real corpus speaker sounds like them.
_HUMAN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Alicia", "Andrea", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
    "Michael", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "ed", "edward", "grandma", "grandpa", "ian", "iven", "john", "linda",
    "max", "michel", "norbert", "paul", "pedro", "quincy", "rob", "robert",
    "steph", "travis", "victor", "zac",
)
_NOISE_TYPES = ("white", "pink", "brown", "babble")
_NOISE_TRACK_SECONDS = 30.0
_BABBLE_TALKERS = 5
_BABBLE_UTTERANCES = 60


class CorpusPaths(typing.NamedTuple):
    """Roots of the two synthetic corpora.

    Args:
        gsc2: root of the GSC2-format tree.
        mc_kws: root of the MC-KWS-format tree.
    """

    gsc2: str
    mc_kws: str


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak NG variant and its prosody.

    Args:
        speaker_id: id used in file names.
        variant: eSpeak NG voice variant, e.g. `"f3"`.
        gender: `"M"`, `"F"` or `""` (variants that declare none).
        age: age written to `SPKINFO.txt`; drawn at random, not a property of
            the voice.
        pitch: base pitch in [0, 99].
        pitch_range: intonation range in [0, 99].
        rate: speaking rate in words per minute.
        amplitude: eSpeak volume in [0, 200].
    """

    speaker_id: str
    variant: str
    gender: str
    age: int
    pitch: int
    pitch_range: int
    rate: int
    amplitude: int


def load_mc_kws_mapping():
    """Returns the default MC-KWS class mapping.

    Returns:
        A dict with keys `"known"` (10 keywords in class order), `"unknown"`
        (keywords of the "unknown words" class), `"excluded"` (keywords
        dropped) and `"clip_seconds"` (2.24).
    """
    with open(MC_KWS_MAPPING_PATH, encoding="utf-8") as file:
        return json.load(file)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def _check_words(words, name):
    if isinstance(words, str):
        raise ValueError(
            f"`{name}` must be a list of words, not one string. Received: "
            f"{name}={words!r}. Pass e.g. [{words!r}]."
        )
    words = list(words)
    if not words:
        raise ValueError(
            f"`{name}` must contain at least one word. Received: {name}={words!r}"
        )
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


def _check_snr_range(snr_db_range):
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
    _check_positive_int("sample_rate", sample_rate)
    if sample_rate < 8000:
        raise ValueError(
            f"`sample_rate` must be at least 8000 Hz. Received: sample_rate={sample_rate}"
        )


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative integer. Received: seed={seed!r}"
        )


def _check_common(language, num_speakers, clips_per_word, sample_rate, seed,
                  num_workers):
    _check_language(language)
    _check_positive_int("num_speakers", num_speakers)
    _check_positive_int("clips_per_word", clips_per_word)
    _check_sample_rate(sample_rate)
    _check_seed(seed)
    _check_positive_int("num_workers", num_workers)


def _corpus_rngs(seed, corpus_index):
    """Independent generators for speakers, utterances, noise and clips.

    Separate streams keep, e.g., the noise unchanged when only the number of
    speakers or clips changes, and the two corpora independent of each other.
    """
    children = np.random.SeedSequence([seed, corpus_index]).spawn(4)
    return tuple(np.random.default_rng(child) for child in children)


def _split_of(speaker_id, validation_percentage, testing_percentage):
    """GSC-style split: hash of the speaker id into a percentage bucket."""
    digest = int(hashlib.sha1(speaker_id.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % 2**27) * (100.0 / 2**27)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def _gsc_speaker_ids(rng, num_speakers, validation_percentage, testing_percentage):
    """Draws hex ids whose hash splits match the requested percentages."""
    quota = {
        "validation": round(num_speakers * validation_percentage / 100.0),
        "testing": round(num_speakers * testing_percentage / 100.0),
    }
    quota["training"] = num_speakers - quota["validation"] - quota["testing"]
    ids, seen = [], set()
    while len(ids) < num_speakers:
        speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        split = _split_of(speaker_id, validation_percentage, testing_percentage)
        if speaker_id in seen or quota[split] == 0:
            continue
        seen.add(speaker_id)
        quota[split] -= 1
        ids.append(speaker_id)
    return ids


def _make_speakers(rng, speaker_ids):
    variants = [name for name in _HUMAN_VARIANTS if name in espeak.available_variants()]
    speakers = []
    for speaker_id in speaker_ids:
        variant = variants[int(rng.integers(len(variants)))]
        speakers.append(Speaker(
            speaker_id=speaker_id,
            variant=variant,
            gender=espeak.variant_gender(variant),
            age=int(rng.integers(18, 66)),
            pitch=int(rng.integers(15, 86)),
            pitch_range=int(rng.integers(25, 91)),
            rate=int(rng.integers(135, 206)),
            amplitude=int(rng.integers(70, 131)),
        ))
    return speakers


def _utterance_request(rng, speaker, text, language):
    """eSpeak arguments for one utterance, jittered around the speaker."""
    rate = speaker.rate * rng.uniform(0.9, 1.1)
    return dict(
        text=text,
        voice=f"{language}+{speaker.variant}",
        rate=int(np.clip(rate, *espeak.RATE_RANGE)),
        pitch=int(np.clip(speaker.pitch + rng.integers(-5, 6), 0, 99)),
        pitch_range=int(np.clip(speaker.pitch_range + rng.integers(-8, 9), 0, 99)),
        amplitude=speaker.amplitude,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _trim(waveform, threshold=0.01):
    """Drops eSpeak's leading and trailing silence."""
    active = np.nonzero(np.abs(waveform) > threshold * max(np.abs(waveform).max(), 1e-9))[0]
    if active.size == 0:
        return waveform
    return waveform[active[0]:active[-1] + 1]


def _smooth_size(minimum):
    """Smallest 2^a * 3^b * 5^c >= minimum: a fast FFT length."""
    best = 1 << max(int(minimum) - 1, 0).bit_length()
    power3 = 1
    while power3 < best:
        power5 = power3
        while power5 < best:
            size = power5
            while size < minimum:
                size *= 2
            best = min(best, size)
            power5 *= 5
        power3 *= 3
    return best


def _resample(waveform, source_rate, target_rate, tilt_db_per_octave=0.0):
    """Band-limited resampling in the frequency domain, with a spectral tilt.

    The signal is zero-padded to `down * m` samples (`m` FFT-friendly), so the
    output has exactly `up * m` samples and both transforms are fast; the
    padding also keeps the FFT's circular wrap-around in silence. The tilt,
    in dB per octave around 1 kHz, stands in for microphone colour and costs
    nothing in this domain.
    """
    divisor = np.gcd(int(source_rate), int(target_rate))
    up, down = target_rate // divisor, source_rate // divisor
    pad = source_rate // 50
    blocks = _smooth_size(-(-(len(waveform) + 2 * pad) // down))
    padded = np.zeros(blocks * down)
    padded[pad:pad + len(waveform)] = waveform
    num_out = blocks * up
    spectrum = np.fft.rfft(padded)
    bins = num_out // 2 + 1
    if bins <= len(spectrum):
        spectrum = spectrum[:bins]
    else:
        spectrum = np.pad(spectrum, (0, bins - len(spectrum)))
    if tilt_db_per_octave:
        freqs = np.fft.rfftfreq(num_out, 1.0 / target_rate)
        gain_db = tilt_db_per_octave * np.log2((freqs + 100.0) / 1000.0)
        spectrum = spectrum * 10.0 ** (np.clip(gain_db, -12.0, 12.0) / 20.0)
    resampled = np.fft.irfft(spectrum, num_out) * (up / down)
    start = pad * up // down
    return resampled[start:start + len(waveform) * up // down]


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


def _noise_tracks(rng, babble_utterances, sample_rate, seconds):
    """One long unit-RMS track per noise type, at `sample_rate`."""
    num_samples = int(seconds * sample_rate)
    tracks = {colour: _coloured_noise(rng, num_samples, colour)
              for colour in ("white", "pink", "brown")}
    source_rate = espeak.sample_rate()
    babble = _babble(rng, babble_utterances, int(seconds * source_rate) + 1)
    babble = _resample(babble, source_rate, sample_rate)[:num_samples]
    tracks["babble"] = babble / max(np.sqrt(np.mean(babble**2)), 1e-12)
    return tracks


def _mix_clip(rng, speech, num_samples, onset_range, tracks, snr_db_range):
    """Speech at a random onset over a random slice of a random noise track."""
    speech = speech[:num_samples]
    low = int(onset_range[0])
    high = max(low, int(onset_range[1]) - len(speech))
    onset = min(int(rng.integers(low, high + 1)), num_samples - len(speech))
    clip = np.zeros(num_samples)
    clip[onset:onset + len(speech)] = speech / max(np.sqrt(np.mean(speech**2)), 1e-12)
    track = tracks[_NOISE_TYPES[int(rng.integers(len(_NOISE_TYPES)))]]
    start = int(rng.integers(0, len(track) - num_samples + 1))
    snr_db = rng.uniform(*snr_db_range)
    clip += track[start:start + num_samples] * 10.0 ** (-snr_db / 20.0)
    peak_db = rng.uniform(-20.0, -1.0)
    return clip * (10.0 ** (peak_db / 20.0) / max(np.abs(clip).max(), 1e-12))


def _write_wav(path, waveform, sample_rate):
    samples = np.clip(np.round(waveform * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(samples.tobytes())


def _synthesize_all(noise_rng, requests, babble_texts, language, num_workers):
    """Synthesises utterances and babble material in one batch.

    Babble talkers are speakers of their own, so no corpus speaker's voice
    leaks into another split through the noise.
    """
    babble_speakers = _make_speakers(noise_rng, ["babble"] * _BABBLE_TALKERS * 2)
    babble_requests = []
    for _ in range(_BABBLE_UTTERANCES):
        speaker = babble_speakers[int(noise_rng.integers(len(babble_speakers)))]
        text = babble_texts[int(noise_rng.integers(len(babble_texts)))]
        babble_requests.append(_utterance_request(noise_rng, speaker, text, language))
    waveforms = espeak.synthesize_batch(requests + babble_requests, num_workers)
    waveforms = [_trim(waveform) for waveform in waveforms]
    return waveforms[:len(requests)], waveforms[len(requests):]


def _render(rng, waveform, sample_rate):
    tilt = rng.uniform(-3.0, 3.0)
    return _resample(waveform, espeak.sample_rate(), sample_rate, tilt)


def _prepare_output_dir(output_dir):
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and os.listdir(output_dir):
        raise ValueError(
            "`output_dir` must be empty or absent, so that no stale files mix "
            f"into the corpus. Received: output_dir={output_dir!r}. Delete it "
            "or choose another directory."
        )
    os.makedirs(output_dir, exist_ok=True)
    return output_dir


def make_gsc_corpus(output_dir, words=GSC_KEYWORDS + GSC_UNKNOWN_WORDS,
                    language="en", num_speakers=100, clips_per_word=2,
                    validation_percentage=10.0, testing_percentage=10.0,
                    snr_db_range=(5.0, 30.0), sample_rate=16000,
                    clip_seconds=1.0, background_noise_seconds=30.0, seed=0,
                    num_workers=2):
    """Writes a synthetic corpus in the Google Speech Commands v2 layout.

    Every speaker says every word `clips_per_word` times. Any words of any
    eSpeak NG language work: the words become the folder names.

    Args:
        output_dir: root to create; must be absent or empty.
        words: words to speak; GSC's 10 keywords and 10 "unknown" words by
            default.
        language: eSpeak NG language, e.g. `"en"`, `"de"`, `"cmn"`.
        num_speakers: number of synthetic speakers.
        clips_per_word: utterances of each word by each speaker.
        validation_percentage: share of speakers in `validation_list.txt`.
        testing_percentage: share of speakers in `testing_list.txt`.
        snr_db_range: `(low, high)` speech-to-noise ratio in dB, drawn per
            clip; lower is harder.
        sample_rate: output rate in Hz.
        clip_seconds: length of every clip; utterances are cut to it.
        background_noise_seconds: length of each `_background_noise_` file.
        seed: seed of everything random; equal arguments give identical files.
        num_workers: parallel eSpeak processes; does not change the output.

    Returns:
        `output_dir`.

    Raises:
        ValueError: for an unknown language, empty or invalid words,
            non-positive counts or an out-of-range setting.

    Example:

    >>> make_gsc_corpus("/tmp/kws_en", words=["lights", "music"],
    ...                 num_speakers=20)  # doctest: +SKIP
    """
    words = _check_words(words, "words")
    _check_common(language, num_speakers, clips_per_word, sample_rate, seed,
                  num_workers)
    if not (0 <= validation_percentage and 0 <= testing_percentage
            and validation_percentage + testing_percentage < 100):
        raise ValueError(
            "`validation_percentage` and `testing_percentage` must be >= 0 "
            "and sum to less than 100. Received: validation_percentage="
            f"{validation_percentage}, testing_percentage={testing_percentage}"
        )
    if not 0.1 <= clip_seconds <= 60 or not 1 <= background_noise_seconds <= 3600:
        raise ValueError(
            "`clip_seconds` must be in [0.1, 60] and `background_noise_seconds` "
            f"in [1, 3600]. Received: clip_seconds={clip_seconds}, "
            f"background_noise_seconds={background_noise_seconds}"
        )
    snr_db_range = _check_snr_range(snr_db_range)
    output_dir = _prepare_output_dir(output_dir)

    speaker_rng, utterance_rng, noise_rng, clip_rng = _corpus_rngs(seed, 0)
    speaker_ids = _gsc_speaker_ids(
        speaker_rng, num_speakers, validation_percentage, testing_percentage)
    speakers = _make_speakers(speaker_rng, speaker_ids)
    entries, requests = [], []
    for word in words:
        for speaker in speakers:
            for index in range(clips_per_word):
                entries.append((word, f"{speaker.speaker_id}_nohash_{index}.wav",
                                speaker.speaker_id))
                requests.append(_utterance_request(utterance_rng, speaker, word, language))
    utterances, babble = _synthesize_all(
        noise_rng, requests, words, language, num_workers)

    track_seconds = max(background_noise_seconds, _NOISE_TRACK_SECONDS)
    tracks = _noise_tracks(noise_rng, babble, sample_rate, track_seconds)
    _write_background_noise(output_dir, tracks, sample_rate, background_noise_seconds)

    for word in words:
        os.makedirs(os.path.join(output_dir, word))
    num_samples = int(round(clip_seconds * sample_rate))
    lists = {"validation": [], "testing": [], "training": []}
    for (word, name, speaker_id), utterance in zip(entries, utterances):
        speech = _render(clip_rng, utterance, sample_rate)
        clip = _mix_clip(clip_rng, speech, num_samples, (0, num_samples),
                         tracks, snr_db_range)
        _write_wav(os.path.join(output_dir, word, name), clip, sample_rate)
        split = _split_of(speaker_id, validation_percentage, testing_percentage)
        lists[split].append(f"{word}/{name}")
    _write_split_lists(output_dir, lists)
    return output_dir


def _write_split_lists(output_dir, lists):
    for split in ("validation", "testing"):
        with open(os.path.join(output_dir, f"{split}_list.txt"), "w",
                  encoding="utf-8") as file:
            file.writelines(f"{path}\n" for path in sorted(lists[split]))


def _write_background_noise(output_dir, tracks, sample_rate, seconds):
    folder = os.path.join(output_dir, "_background_noise_")
    os.makedirs(folder)
    num_samples = int(seconds * sample_rate)
    for noise_type, track in tracks.items():
        name = "babble.wav" if noise_type == "babble" else f"{noise_type}_noise.wav"
        # Peak-normalised to -6 dBFS like the loud GSC noise files.
        segment = track[:num_samples]
        segment = segment * (0.5 / max(np.abs(segment).max(), 1e-12))
        _write_wav(os.path.join(folder, name), segment, sample_rate)


def _clip_lengths(rng, count, clip_seconds_range):
    """Clip lengths skewed to the short end, like scripted-speech prompts."""
    low, high = clip_seconds_range
    return low + (high - low) * rng.uniform(size=count) ** 5


def make_mc_kws_corpus(output_dir, keywords=MC_KWS_KEYWORDS, language="cmn",
                       num_speakers=37, clips_per_word=4,
                       snr_db_range=(5.0, 30.0), sample_rate=48000,
                       clip_seconds_range=(1.3, 6.2),
                       speech_within_seconds=2.24, seed=0, num_workers=2):
    """Writes a synthetic corpus in the MC-KWS (MagicHub) layout.

    Every speaker says every keyword `clips_per_word` times. Latin-script
    keywords ("hello") are read as English by the Mandarin voice.

    Args:
        output_dir: root to create; must be absent or empty.
        keywords: keywords to speak; the 20 MC-KWS stand-ins by default.
        language: eSpeak NG language, e.g. `"cmn"`.
        num_speakers: number of synthetic speakers.
        clips_per_word: utterances of each keyword by each speaker.
        snr_db_range: `(low, high)` speech-to-noise ratio in dB, drawn per
            clip; lower is harder.
        sample_rate: output rate in Hz.
        clip_seconds_range: `(shortest, longest)` clip length in seconds.
        speech_within_seconds: the keyword always ends before this time.
        seed: seed of everything random; equal arguments give identical files.
        num_workers: parallel eSpeak processes; does not change the output.

    Returns:
        `output_dir`.

    Raises:
        ValueError: for an unknown language, empty or invalid keywords,
            non-positive counts or an out-of-range setting.
    """
    keywords = _check_words(keywords, "keywords")
    _check_common(language, num_speakers, clips_per_word, sample_rate, seed,
                  num_workers)
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
    snr_db_range = _check_snr_range(snr_db_range)
    output_dir = _prepare_output_dir(output_dir)

    speaker_rng, utterance_rng, noise_rng, clip_rng = _corpus_rngs(seed, 1)
    speaker_ids = [f"S{index + 1:04d}" for index in range(num_speakers)]
    speakers = _make_speakers(speaker_rng, speaker_ids)
    entries, requests = [], []
    for speaker in speakers:
        for keyword_index, keyword in enumerate(keywords):
            for index in range(clips_per_word):
                name = f"{speaker.speaker_id}_W{keyword_index:03d}_{index:02d}.wav"
                entries.append((speaker, keyword, name))
                requests.append(_utterance_request(utterance_rng, speaker, keyword, language))
    utterances, babble = _synthesize_all(
        noise_rng, requests, keywords, language, num_workers)
    tracks = _noise_tracks(noise_rng, babble, sample_rate,
                           max(high + 1.0, _NOISE_TRACK_SECONDS))

    lengths = _clip_lengths(clip_rng, len(entries), (low, high))
    for speaker in speakers:
        os.makedirs(os.path.join(output_dir, "WAV", speaker.speaker_id))
    for (speaker, keyword, name), utterance, length in zip(entries, utterances, lengths):
        num_samples = int(round(length * sample_rate))
        speech = _render(clip_rng, utterance, sample_rate)
        window = min(num_samples, int(speech_within_seconds * sample_rate))
        onset_range = (min(int(0.1 * sample_rate), window // 10), window)
        clip = _mix_clip(clip_rng, speech, num_samples, onset_range, tracks, snr_db_range)
        _write_wav(os.path.join(output_dir, "WAV", speaker.speaker_id, name),
                   clip, sample_rate)
    _write_mc_kws_metadata(output_dir, entries, speakers, language)
    return output_dir


def _write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as file:
        for row in [header, *rows]:
            file.write("\t".join(str(field) for field in row) + "\n")


def _write_mc_kws_metadata(output_dir, entries, speakers, language):
    _write_tsv(
        os.path.join(output_dir, "UTTRANSINFO.txt"),
        ("SPEAKER_ID", "UTTRANS_ID", "PROMPT", "TRANSCRIPTION"),
        [(speaker.speaker_id, name, keyword, keyword)
         for speaker, keyword, name in entries],
    )
    _write_tsv(
        os.path.join(output_dir, "SPKINFO.txt"),
        ("SPEAKER_ID", "AGE", "GENDER", "VOICE", "PITCH", "RATE"),
        [(speaker.speaker_id, speaker.age, speaker.gender,
          f"{language}+{speaker.variant}", speaker.pitch, speaker.rate)
         for speaker in speakers],
    )


def _remove_abandoned_temp_dirs(cache_dir):
    """Deletes temp trees whose generating process no longer runs."""
    prefix = f".{DEFAULT_CORPUS_NAME}.tmp-"
    for name in os.listdir(cache_dir):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(os.path.join(cache_dir, name), ignore_errors=True)
        except PermissionError:
            pass


def ensure_default_corpus(cache_dir, num_workers=2):
    """Generates the default corpora under `cache_dir` unless already there.

    The trees are written into a temporary directory that is renamed into
    place only when complete, so a killed run never leaves a corpus that looks
    finished; leftovers of killed runs are removed on the next call.

    Args:
        cache_dir: directory for `synthetic_kws_v1/{gsc2,mc_kws}`.
        num_workers: parallel eSpeak processes; does not change the output.

    Returns:
        A `CorpusPaths(gsc2=..., mc_kws=...)`.
    """
    cache_dir = os.path.abspath(os.fspath(cache_dir))
    final_dir = os.path.join(cache_dir, DEFAULT_CORPUS_NAME)
    paths = CorpusPaths(gsc2=os.path.join(final_dir, "gsc2"),
                        mc_kws=os.path.join(final_dir, "mc_kws"))
    if os.path.isdir(final_dir):
        return paths
    os.makedirs(cache_dir, exist_ok=True)
    _remove_abandoned_temp_dirs(cache_dir)
    temp_dir = tempfile.mkdtemp(
        prefix=f".{DEFAULT_CORPUS_NAME}.tmp-{os.getpid()}-", dir=cache_dir)
    try:
        make_gsc_corpus(os.path.join(temp_dir, "gsc2"), num_workers=num_workers)
        make_mc_kws_corpus(os.path.join(temp_dir, "mc_kws"), num_workers=num_workers)
        try:
            os.rename(temp_dir, final_dir)
        except OSError:
            # Another process finished first; its corpus is identical.
            if not os.path.isdir(final_dir):
                raise
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return paths
