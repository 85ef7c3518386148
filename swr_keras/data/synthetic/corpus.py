"""The synthetic corpora: GSC2 and MC-KWS stand-ins, and the two default corpora.

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

There are two default corpora (`DEFAULT_CORPORA`, `ensure_default_corpus`):
`"pretraining"` (seed 0), which the shipped backbone learnt: 100 GSC speakers
x 20 words x 2 clips (4,000 clips, about 130 MB) and 37 MC-KWS speakers x 20
keywords x 4 clips (2,960 clips, about 580 MB); and `"transfer"` (seed 1:
other speakers, utterances and noise; the English words in eSpeak's `en-US`
accent), the downstream default of the transfer job, whose validation and
test splits hold over 2,000 clips per task, spoken with voice variants its
training split never uses (`split_plan` gives the numbers).

This module assembles the corpora; the parts live beside it in `checks`
(argument checks), `voices` (speakers: voices, prosody, ids, splits),
`render` (trimming, resampling, tilt), `noise` (noise tracks, babble,
mixing), `layout` (the files written) and `espeak` (the synthesiser).
"""

import inspect
import json
import os
import shutil
import tempfile
import typing

import numpy as np

from swr_keras.data.synthetic import checks, espeak, layout, noise, render, voices

GSC_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
GSC_UNKNOWN_WORDS = (
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
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
# Split names of `SPLITINFO.txt`, as the loaders name them.
SPLITS = ("train", "valid", "test")
# The paper's 12-class mapping lives beside the MC-KWS loader that reads it.
MC_KWS_MAPPING_PATH = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "mc_kws_mapping.json"
)


class DefaultCorpus(typing.NamedTuple):
    """One of the default corpora: its folder in the cache and its settings.

    Args:
        name: folder under the cache directory.
        gsc2_options: keyword arguments of `make_gsc_corpus` beyond the defaults.
        mc_kws_options: keyword arguments of `make_mc_kws_corpus` beyond the
            defaults.
    """

    name: str
    gsc2_options: dict
    mc_kws_options: dict


# The shipped backbone is pre-trained on "pretraining"; the transfer job's
# default task is "transfer": other speakers (another seed), and the English
# words in eSpeak's American accent. On the pre-training clips themselves a
# new classifier on the frozen features was as accurate as fine-tuning every
# weight, so that task could not show what transfer learning adds. The
# accent is what frozen features do not cover: louder noise alone (-5-10 dB)
# left the classifier 1.3 points behind fine-tuning, the accent 7.5 (BUILD.md).
# v2: the training splits keep v1's speakers per split (GSC2 80, MC-KWS 25),
# so a cell costs what it did; validation and test get 85 / 42 speakers each,
# over 2,000 clips per split in the 12-way tasks (one v1 test clip was 0.4
# points), all speaking with voice variants the training split never uses.
DEFAULT_CORPORA = {
    "pretraining": DefaultCorpus("synthetic_kws_v1", {}, {}),
    "transfer": DefaultCorpus(
        "synthetic_kws_transfer_v2",
        {
            "seed": 1,
            "language": "en-US",
            "num_speakers": 250,
            "validation_percentage": 34.0,
            "testing_percentage": 34.0,
            "heldout_voices": True,
        },
        {"seed": 1, "speaker_split": (25, 42, 42), "heldout_voices": True},
    ),
}


class SplitPlan(typing.NamedTuple):
    """What one corpus holds per split (train, valid, test) of its 12-way task.

    Args:
        speakers: speakers per split.
        clips_per_class: clips of every keyword class per split: each speaker
            says each word `clips_per_word` times.
        num_keywords: keyword classes of the task.
        num_unknown_words: words that form `_unknown_`.
    """

    speakers: tuple
    clips_per_class: tuple
    num_keywords: int
    num_unknown_words: int

    @property
    def unknown_caps(self):
        """`_unknown_` clips per split: one keyword's count."""
        return self.clips_per_class

    @property
    def task_clips(self):
        """Clips per split of the 12-way task after the caps.

        The keywords, `_unknown_` at its cap (one keyword's count) and
        `_silence_`, which the loaders size like the largest keyword class.
        """
        return tuple(
            count * self.num_keywords
            + min(count, count * self.num_unknown_words)  # `_unknown_`, capped
            + count  # `_silence_`
            for count in self.clips_per_class
        )


class CorpusPaths(typing.NamedTuple):
    """Roots of the two synthetic corpora.

    Args:
        gsc2: root of the GSC2-format tree.
        mc_kws: root of the MC-KWS-format tree.
    """

    gsc2: str
    mc_kws: str


def load_mc_kws_mapping():
    """Returns the default MC-KWS class mapping.

    Returns:
        A dict with keys `"known"` (10 keywords in class order), `"unknown"`
        (keywords of the "unknown words" class), `"excluded"` (keywords
        dropped) and `"clip_seconds"` (2.24).
    """
    with open(MC_KWS_MAPPING_PATH, encoding="utf-8") as file:
        return json.load(file)


def gsc_speaker_counts(num_speakers, validation_percentage, testing_percentage):
    """GSC2 speakers per split (train, valid, test) as the generator draws them."""
    quota = voices.gsc_split_quota(num_speakers, validation_percentage, testing_percentage)
    return (quota["training"], quota["validation"], quota["testing"])


def mc_kws_speaker_counts(num_speakers, speaker_split):
    """MC-KWS speakers per split (train, valid, test).

    With a fixed `speaker_split` the corpus's `SPLITINFO.txt` decides them;
    without, the loader's seeded proportional split (`mc_kws.split_speakers`)
    does, and only its sizes are fixed.
    """
    if speaker_split is not None:
        return tuple(speaker_split)
    from swr_keras.data import mc_kws  # the loader; imported here for its split rule

    sizes = mc_kws.split_speakers([f"S{i:04d}" for i in range(num_speakers)])
    return tuple(len(sizes[split]) for split in SPLITS)


def split_plan(corpus="transfer"):
    """Speakers and clips per split of a default corpus's two 12-way tasks.

    The same rules the generators and loaders follow, computed without
    synthesising anything.

    Args:
        corpus: a key of `DEFAULT_CORPORA`.

    Returns:
        `{"gsc2": SplitPlan, "mc_kws": SplitPlan}`.
    """
    if corpus not in DEFAULT_CORPORA:
        raise ValueError(
            f"Unknown default corpus {corpus!r}. Choose one of {', '.join(DEFAULT_CORPORA)}."
        )
    _, gsc2_options, mc_kws_options = DEFAULT_CORPORA[corpus]
    gsc = {**_defaults(make_gsc_corpus), **gsc2_options}
    words = gsc["words"]
    speakers = gsc_speaker_counts(
        gsc["num_speakers"], gsc["validation_percentage"], gsc["testing_percentage"]
    )
    num_keywords = len(set(words) & set(GSC_KEYWORDS))
    plans = {
        "gsc2": SplitPlan(
            speakers,
            tuple(n * gsc["clips_per_word"] for n in speakers),
            num_keywords,
            len(words) - num_keywords,
        )
    }
    mc = {**_defaults(make_mc_kws_corpus), **mc_kws_options}
    keywords = set(mc["keywords"])
    mapping = load_mc_kws_mapping()
    num_speakers = _mc_kws_num_speakers(mc["num_speakers"], mc["speaker_split"])
    speakers = mc_kws_speaker_counts(num_speakers, mc["speaker_split"])
    plans["mc_kws"] = SplitPlan(
        speakers,
        tuple(n * mc["clips_per_word"] for n in speakers),
        len(keywords & set(mapping["known"])),
        len(keywords & set(mapping["unknown"])),
    )
    return plans


def _defaults(function):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _mc_kws_num_speakers(num_speakers, speaker_split):
    if speaker_split is None:
        return 37 if num_speakers is None else num_speakers
    return sum(speaker_split) if num_speakers is None else num_speakers


def _corpus_rngs(seed, corpus_index):
    """Independent generators for speakers, utterances, noise and clips.

    Separate streams keep, e.g., the noise unchanged when only the number of
    speakers or clips changes, and the two corpora independent of each other.
    """
    children = np.random.SeedSequence([seed, corpus_index]).spawn(4)
    return tuple(np.random.default_rng(child) for child in children)


def _synthesize_all(noise_rng, requests, babble_texts, language, num_workers):
    """Synthesises utterances and babble material in one batch."""
    babble_requests = noise.babble_requests(noise_rng, babble_texts, language)
    waveforms = espeak.synthesize_batch(requests + babble_requests, num_workers)
    waveforms = [render.trim(waveform) for waveform in waveforms]
    return waveforms[: len(requests)], waveforms[len(requests) :]


def make_gsc_corpus(
    output_dir,
    words=GSC_KEYWORDS + GSC_UNKNOWN_WORDS,
    language="en",
    num_speakers=100,
    clips_per_word=2,
    validation_percentage=10.0,
    testing_percentage=10.0,
    snr_db_range=(5.0, 30.0),
    sample_rate=16000,
    clip_seconds=1.0,
    background_noise_seconds=30.0,
    seed=0,
    num_workers=2,
    heldout_voices=False,
):
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
        heldout_voices: if True, validation and test speakers speak with the
            held-out voice variants and training speakers with the others
            (`voices.variant_pools()`); if False, every speaker's variant is
            drawn from all of them.

    Returns:
        `output_dir`.

    Raises:
        ValueError: for an unknown language, empty or invalid words,
            non-positive counts or an out-of-range setting.

    Example:

    >>> make_gsc_corpus("/tmp/kws_en", words=["lights", "music"],
    ...                 num_speakers=20)  # doctest: +SKIP
    """
    words = checks.check_words(words, "words")
    checks.check_common(language, num_speakers, clips_per_word, sample_rate, seed, num_workers)
    checks.check_split_percentages(validation_percentage, testing_percentage)
    checks.check_gsc_durations(clip_seconds, background_noise_seconds)
    snr_db_range = checks.check_snr_range(snr_db_range)
    output_dir = layout.prepare_output_dir(output_dir)

    speaker_rng, utterance_rng, noise_rng, clip_rng = _corpus_rngs(seed, 0)
    speaker_ids = voices.gsc_speaker_ids(
        speaker_rng, num_speakers, validation_percentage, testing_percentage
    )
    heldout = None
    if heldout_voices:
        heldout = [
            voices.split_of(i, validation_percentage, testing_percentage) != "training"
            for i in speaker_ids
        ]
    speakers = voices.make_speakers(speaker_rng, speaker_ids, heldout)
    entries, requests = [], []
    for word in words:
        for speaker in speakers:
            for index in range(clips_per_word):
                entries.append(
                    (word, f"{speaker.speaker_id}_nohash_{index}.wav", speaker.speaker_id)
                )
                requests.append(voices.utterance_request(utterance_rng, speaker, word, language))
    utterances, babble = _synthesize_all(noise_rng, requests, words, language, num_workers)

    track_seconds = max(background_noise_seconds, noise.MIN_NOISE_TRACK_SECONDS)
    tracks = noise.noise_tracks(noise_rng, babble, sample_rate, track_seconds)
    layout.write_gsc_background_noise(output_dir, tracks, sample_rate, background_noise_seconds)

    for word in words:
        os.makedirs(os.path.join(output_dir, word))
    num_samples = int(round(clip_seconds * sample_rate))
    lists = {"validation": [], "testing": [], "training": []}
    for (word, name, speaker_id), utterance in zip(entries, utterances):
        speech = render.render(clip_rng, utterance, sample_rate)
        clip = noise.mix_clip(clip_rng, speech, num_samples, (0, num_samples), tracks, snr_db_range)
        layout.write_wav(os.path.join(output_dir, word, name), clip, sample_rate)
        split = voices.split_of(speaker_id, validation_percentage, testing_percentage)
        lists[split].append(f"{word}/{name}")
    layout.write_gsc_split_lists(output_dir, lists)
    return output_dir


def _clip_lengths(rng, count, clip_seconds_range):
    """Clip lengths skewed to the short end, like scripted-speech prompts."""
    low, high = clip_seconds_range
    return low + (high - low) * rng.uniform(size=count) ** 5


def make_mc_kws_corpus(
    output_dir,
    keywords=MC_KWS_KEYWORDS,
    language="cmn",
    num_speakers=None,
    clips_per_word=4,
    snr_db_range=(5.0, 30.0),
    sample_rate=48000,
    clip_seconds_range=(1.3, 6.2),
    speech_within_seconds=2.24,
    seed=0,
    num_workers=2,
    speaker_split=None,
    heldout_voices=False,
):
    """Writes a synthetic corpus in the MC-KWS (MagicHub) layout.

    Every speaker says every keyword `clips_per_word` times. Latin-script
    keywords ("hello") are read as English by the Mandarin voice.

    Args:
        output_dir: root to create; must be absent or empty.
        keywords: keywords to speak; the 20 MC-KWS stand-ins by default.
        language: eSpeak NG language, e.g. `"cmn"`.
        num_speakers: number of synthetic speakers; default
            `sum(speaker_split)`, else 37 (the real corpus's count).
        clips_per_word: utterances of each keyword by each speaker.
        snr_db_range: `(low, high)` speech-to-noise ratio in dB, drawn per
            clip; lower is harder.
        sample_rate: output rate in Hz.
        clip_seconds_range: `(shortest, longest)` clip length in seconds.
        speech_within_seconds: the keyword always ends before this time.
        seed: seed of everything random; equal arguments give identical files.
        num_workers: parallel eSpeak processes; does not change the output.
        speaker_split: `None`, or speakers per split `(train, valid, test)`:
            the first ids train, the next validate, the last test, written
            to `SPLITINFO.txt`, which the loader then follows instead of its
            seeded split. Must sum to `num_speakers`.
        heldout_voices: if True (needs `speaker_split`), validation and test
            speakers speak with the held-out voice variants and training
            speakers with the others (`voices.variant_pools()`).

    Returns:
        `output_dir`.

    Raises:
        ValueError: for an unknown language, empty or invalid keywords,
            non-positive counts, a `speaker_split` that does not sum to
            `num_speakers` or an out-of-range setting.
    """
    keywords = checks.check_words(keywords, "keywords")
    num_speakers = _mc_kws_num_speakers(num_speakers, speaker_split)
    checks.check_speaker_split(speaker_split, num_speakers, heldout_voices)
    checks.check_common(language, num_speakers, clips_per_word, sample_rate, seed, num_workers)
    low, high = checks.check_mc_kws_durations(clip_seconds_range, speech_within_seconds)
    snr_db_range = checks.check_snr_range(snr_db_range)
    output_dir = layout.prepare_output_dir(output_dir)

    speaker_rng, utterance_rng, noise_rng, clip_rng = _corpus_rngs(seed, 1)
    speaker_ids = [f"S{index + 1:04d}" for index in range(num_speakers)]
    split_of = None
    if speaker_split is not None:
        split_of = dict(
            zip(speaker_ids, [s for s, n in zip(SPLITS, speaker_split) for _ in range(n)])
        )
    heldout = [split_of[i] != "train" for i in speaker_ids] if heldout_voices else None
    speakers = voices.make_speakers(speaker_rng, speaker_ids, heldout)
    entries, requests = [], []
    for speaker in speakers:
        for keyword_index, keyword in enumerate(keywords):
            for index in range(clips_per_word):
                name = f"{speaker.speaker_id}_W{keyword_index:03d}_{index:02d}.wav"
                entries.append((speaker, keyword, name))
                requests.append(voices.utterance_request(utterance_rng, speaker, keyword, language))
    utterances, babble = _synthesize_all(noise_rng, requests, keywords, language, num_workers)
    tracks = noise.noise_tracks(
        noise_rng, babble, sample_rate, max(high + 1.0, noise.MIN_NOISE_TRACK_SECONDS)
    )

    lengths = _clip_lengths(clip_rng, len(entries), (low, high))
    for speaker in speakers:
        os.makedirs(os.path.join(output_dir, "WAV", speaker.speaker_id))
    for (speaker, _keyword, name), utterance, length in zip(entries, utterances, lengths):
        num_samples = int(round(length * sample_rate))
        speech = render.render(clip_rng, utterance, sample_rate)
        window = min(num_samples, int(speech_within_seconds * sample_rate))
        onset_range = (min(int(0.1 * sample_rate), window // 10), window)
        clip = noise.mix_clip(clip_rng, speech, num_samples, onset_range, tracks, snr_db_range)
        layout.write_wav(
            os.path.join(output_dir, "WAV", speaker.speaker_id, name), clip, sample_rate
        )
    layout.write_mc_kws_metadata(output_dir, entries, speakers, language)
    if split_of is not None:
        layout.write_mc_kws_split_info(output_dir, split_of)
    return output_dir


def _remove_abandoned_temp_dirs(cache_dir, name):
    """Deletes temp trees of `name` whose generating process no longer runs."""
    prefix = f".{name}.tmp-"
    for entry in os.listdir(cache_dir):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix) :].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(os.path.join(cache_dir, entry), ignore_errors=True)
        except PermissionError:
            pass


def ensure_default_corpus(cache_dir, num_workers=2, corpus="pretraining"):
    """Generates a default corpus under `cache_dir` unless already there.

    The trees are written into a temporary directory that is renamed into
    place only when complete, so a killed run never leaves a corpus that looks
    finished; leftovers of killed runs are removed on the next call.

    Args:
        cache_dir: directory for `<name>/{gsc2,mc_kws}`.
        num_workers: parallel eSpeak processes; does not change the output.
        corpus: a key of `DEFAULT_CORPORA`: `"pretraining"` (what the shipped
            backbone learnt from) or `"transfer"` (the downstream default).

    Returns:
        A `CorpusPaths(gsc2=..., mc_kws=...)`.
    """
    if corpus not in DEFAULT_CORPORA:
        raise ValueError(
            f"Unknown default corpus {corpus!r}. Choose one of {', '.join(DEFAULT_CORPORA)}."
        )
    name, gsc2_options, mc_kws_options = DEFAULT_CORPORA[corpus]
    cache_dir = os.path.abspath(os.fspath(cache_dir))
    final_dir = os.path.join(cache_dir, name)
    paths = CorpusPaths(
        gsc2=os.path.join(final_dir, "gsc2"), mc_kws=os.path.join(final_dir, "mc_kws")
    )
    if os.path.isdir(final_dir):
        return paths
    os.makedirs(cache_dir, exist_ok=True)
    _remove_abandoned_temp_dirs(cache_dir, name)
    temp_dir = tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=cache_dir)
    try:
        make_gsc_corpus(os.path.join(temp_dir, "gsc2"), num_workers=num_workers, **gsc2_options)
        make_mc_kws_corpus(
            os.path.join(temp_dir, "mc_kws"), num_workers=num_workers, **mc_kws_options
        )
        try:
            os.rename(temp_dir, final_dir)
        except OSError:
            # Another process finished first; its corpus is identical.
            if not os.path.isdir(final_dir):
                raise
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return paths
