"""Tests of the synthetic KWS corpus generator (GSC2 and MC-KWS layouts)."""

import csv
import functools
import hashlib
import os
import re
import subprocess
import sys
import wave

import numpy as np
import pytest

from swr_keras.data import synthetic
from swr_keras.data.synthetic import corpus, espeak, voices

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(REPO_ROOT, "recipes", "make_synthetic_kws.py")

GSC_WORDS = ["yes", "no", "cat"]
GSC_SPEAKERS = 10
GSC_CLIPS = 2
MC_SPEAKERS = 2


def _small_gsc(output_dir, seed=0, **kwargs):
    options = dict(
        words=GSC_WORDS,
        num_speakers=GSC_SPEAKERS,
        clips_per_word=GSC_CLIPS,
        validation_percentage=20.0,
        testing_percentage=20.0,
        background_noise_seconds=2.0,
        seed=seed,
    )
    options.update(kwargs)
    return synthetic.make_gsc_corpus(output_dir, **options)


def _small_mc(output_dir, seed=0, **kwargs):
    options = dict(num_speakers=MC_SPEAKERS, clips_per_word=1, seed=seed)
    options.update(kwargs)
    return synthetic.make_mc_kws_corpus(output_dir, **options)


@pytest.fixture(scope="module")
def gsc_root(tmp_path_factory):
    return _small_gsc(str(tmp_path_factory.mktemp("gsc") / "root"))


@pytest.fixture(scope="module")
def mc_root(tmp_path_factory):
    return _small_mc(str(tmp_path_factory.mktemp("mc") / "root"))


def _wav_header(path):
    with wave.open(path, "rb") as file:
        return (file.getframerate(), file.getnchannels(), file.getsampwidth(), file.getnframes())


def _wav_samples(path):
    with wave.open(path, "rb") as file:
        return np.frombuffer(file.readframes(file.getnframes()), "<i2") / 32768.0


def _all_files(root):
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    )


def _read_tsv(path):
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.reader(file, delimiter="\t"))


def _gsc_bucket(speaker_id, validation, testing):
    # Independent restatement of the GSC rule: SHA-1 of the id -> percentage.
    value = int(hashlib.sha1(speaker_id.encode()).hexdigest(), 16) % 2**27
    percentage = value * 100.0 / 2**27
    if percentage < validation:
        return "validation"
    return "testing" if percentage < validation + testing else "training"


# GSC2 layout


def test_gsc_tree_has_word_folders_and_background_noise(gsc_root):
    assert sorted(os.listdir(gsc_root)) == sorted(
        GSC_WORDS + ["_background_noise_", "testing_list.txt", "validation_list.txt"]
    )
    noise_files = sorted(os.listdir(os.path.join(gsc_root, "_background_noise_")))
    assert noise_files == ["babble.wav", "brown_noise.wav", "pink_noise.wav", "white_noise.wav"]
    for name in noise_files:
        header = _wav_header(os.path.join(gsc_root, "_background_noise_", name))
        assert header == (16000, 1, 2, 32000)


def test_gsc_clips_are_one_second_16khz_mono_16bit(gsc_root):
    pattern = re.compile(r"^[0-9a-f]{8}_nohash_[0-9]+\.wav$")
    for word in GSC_WORDS:
        names = os.listdir(os.path.join(gsc_root, word))
        assert len(names) == GSC_SPEAKERS * GSC_CLIPS
        for name in names:
            assert pattern.match(name), name
            path = os.path.join(gsc_root, word, name)
            assert _wav_header(path) == (16000, 1, 2, 16000)
            samples = _wav_samples(path)
            assert 0.05 < np.abs(samples).max() < 1.0


def test_gsc_lists_reference_existing_files_and_split_by_speaker(gsc_root):
    splits = {}
    for split in ("validation", "testing"):
        with open(os.path.join(gsc_root, f"{split}_list.txt"), encoding="utf-8") as file:
            splits[split] = file.read().splitlines()
        assert splits[split], split
        for line in splits[split]:
            assert re.match(r"^[a-z]+/[0-9a-f]{8}_nohash_[0-9]+\.wav$", line), line
            assert os.path.isfile(os.path.join(gsc_root, line)), line
    listed = set(splits["validation"]) | set(splits["testing"])
    clips = {
        path for path in _all_files(gsc_root) if not path.startswith("_") and path.endswith(".wav")
    }
    splits["training"] = sorted(clips - listed)
    speakers = {
        split: {os.path.basename(path).split("_")[0] for path in paths}
        for split, paths in splits.items()
    }
    assert not speakers["validation"] & speakers["testing"]
    assert not speakers["training"] & (speakers["validation"] | speakers["testing"])
    # 20% / 20% of 10 speakers, each with all of its clips in one split.
    assert [len(speakers[split]) for split in ("validation", "testing", "training")] == [2, 2, 6]
    for split, ids in speakers.items():
        for speaker_id in ids:
            assert _gsc_bucket(speaker_id, 20.0, 20.0) == split


@pytest.mark.parametrize(
    "num_speakers, validation, testing, expected",
    [
        (7, 30.0, 15.0, (2, 1, 4)),
        (12, 25.0, 25.0, (3, 3, 6)),
    ],
)
def test_gsc_split_sizes_follow_percentages(tmp_path, num_speakers, validation, testing, expected):
    root = _small_gsc(
        str(tmp_path / "root"),
        words=["go"],
        num_speakers=num_speakers,
        clips_per_word=1,
        validation_percentage=validation,
        testing_percentage=testing,
        background_noise_seconds=1.0,
    )
    counts = []
    for split in ("validation", "testing"):
        with open(os.path.join(root, f"{split}_list.txt"), encoding="utf-8") as file:
            lines = file.read().splitlines()
        assert all(_gsc_bucket(line[3:11], validation, testing) == split for line in lines)
        counts.append(len(lines))
    counts.append(num_speakers - sum(counts))
    assert tuple(counts) == expected


def test_gsc_accepts_words_of_another_language(tmp_path):
    root = synthetic.make_gsc_corpus(
        str(tmp_path / "de"),
        words=["ja", "nein"],
        language="de",
        num_speakers=1,
        clips_per_word=1,
        validation_percentage=0.0,
        testing_percentage=0.0,
        background_noise_seconds=1.0,
    )
    for word in ("ja", "nein"):
        (name,) = os.listdir(os.path.join(root, word))
        assert np.abs(_wav_samples(os.path.join(root, word, name))).max() > 0.05
    with open(os.path.join(root, "validation_list.txt"), encoding="utf-8") as file:
        assert file.read() == ""


# MC-KWS layout


def test_mc_kws_clips_are_48khz_mono_16bit_between_1_3_and_6_2_seconds(mc_root):
    speakers = sorted(os.listdir(os.path.join(mc_root, "WAV")))
    assert speakers == ["S0001", "S0002"]
    durations = []
    for speaker in speakers:
        names = os.listdir(os.path.join(mc_root, "WAV", speaker))
        assert len(names) == len(synthetic.MC_KWS_KEYWORDS)
        for name in names:
            rate, channels, width, frames = _wav_header(os.path.join(mc_root, "WAV", speaker, name))
            assert (rate, channels, width) == (48000, 1, 2)
            durations.append(frames / rate)
    assert 1.3 <= min(durations) and max(durations) <= 6.2
    assert max(durations) - min(durations) > 0.2


def test_mc_kws_metadata_parses_and_matches_wavs(mc_root):
    rows = _read_tsv(os.path.join(mc_root, "UTTRANSINFO.txt"))
    assert rows[0] == ["SPEAKER_ID", "UTTRANS_ID", "PROMPT", "TRANSCRIPTION"]
    listed = {os.path.join("WAV", speaker, utterance) for speaker, utterance, _, _ in rows[1:]}
    on_disk = {path for path in _all_files(mc_root) if path.startswith("WAV")}
    assert listed == on_disk
    prompts = [prompt for _, _, prompt, _ in rows[1:]]
    assert all(prompt == transcription for _, _, prompt, transcription in rows[1:])
    assert sorted(set(prompts)) == sorted(synthetic.MC_KWS_KEYWORDS)
    assert all(prompts.count(word) == MC_SPEAKERS for word in synthetic.MC_KWS_KEYWORDS)

    speakers = _read_tsv(os.path.join(mc_root, "SPKINFO.txt"))
    assert speakers[0][:3] == ["SPEAKER_ID", "AGE", "GENDER"]
    assert all(len(row) == len(speakers[0]) for row in speakers)
    assert [row[0] for row in speakers[1:]] == sorted(os.listdir(os.path.join(mc_root, "WAV")))
    assert all(row[1].isdigit() and row[2] in ("M", "F", "") for row in speakers[1:])


def test_mc_kws_keyword_lies_within_first_clip_seconds(tmp_path):
    # Nearly clean 4 s clips: all speech energy must end before 2.24 s.
    root = _small_mc(
        str(tmp_path / "mc"),
        keywords=["打开", "音量"],
        num_speakers=1,
        clips_per_word=3,
        snr_db_range=(80.0, 80.0),
        clip_seconds_range=(4.0, 4.0),
    )
    folder = os.path.join(root, "WAV", "S0001")
    for name in os.listdir(folder):
        samples = _wav_samples(os.path.join(folder, name))
        cut = int(2.24 * 48000)
        assert np.abs(samples[:cut]).max() > 0.05
        assert np.abs(samples[cut:]).max() < 1e-3 * np.abs(samples[:cut]).max() + 1e-4


def test_default_keywords_have_seven_pairs_four_unpaired_two_english():
    assert len(synthetic.MC_KWS_KEYWORD_PAIRS) == 7
    assert len(synthetic.MC_KWS_UNPAIRED_KEYWORDS) == 4
    assert len(synthetic.MC_KWS_ENGLISH_KEYWORDS) == 2
    assert len(set(synthetic.MC_KWS_KEYWORDS)) == 20
    assert len(synthetic.GSC_KEYWORDS) == 10 and len(synthetic.GSC_UNKNOWN_WORDS) >= 5


def test_paired_keywords_sound_different():
    pairs = synthetic.MC_KWS_KEYWORD_PAIRS
    requests = [
        dict(text=word, voice="cmn+f2", rate=170, pitch=50) for pair in pairs for word in pair
    ]
    waveforms = espeak.synthesize_batch(requests)
    for index, (first, second) in enumerate(pairs):
        a, b = waveforms[2 * index], waveforms[2 * index + 1]
        assert len(a) > 0.2 * espeak.sample_rate() and len(b) > 0.2 * espeak.sample_rate()
        length = min(len(a), len(b))
        difference = np.sqrt(np.mean((a[:length] - b[:length]) ** 2))
        assert difference > 0.1 * np.sqrt(np.mean(a**2)), (first, second)


# Mapping


def test_mapping_file_has_paper_schema_and_keywords_exist(mc_root):
    mapping = synthetic.load_mc_kws_mapping()
    assert set(mapping) == {"known", "unknown", "excluded", "clip_seconds"}
    assert mapping["clip_seconds"] == 2.24
    known, unknown, excluded = (mapping[key] for key in ("known", "unknown", "excluded"))
    assert len(known) == 10 and len(set(known)) == 10
    assert len(unknown) >= 1
    assert not set(known) & set(unknown) and not (set(known) | set(unknown)) & set(excluded)
    assert set(excluded) >= set(synthetic.MC_KWS_ENGLISH_KEYWORDS)
    for first, second in synthetic.MC_KWS_KEYWORD_PAIRS:
        # A pair's near-homophones never share the known classes.
        assert (first in known) != (second in known)
    prompts = {row[2] for row in _read_tsv(os.path.join(mc_root, "UTTRANSINFO.txt"))[1:]}
    assert set(known) | set(unknown) | set(excluded) == prompts


# Determinism


def _tree_bytes(root):
    contents = {}
    for path in _all_files(root):
        with open(os.path.join(root, path), "rb") as file:
            contents[path] = file.read()
    return contents


def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path, gsc_root):
    # Synthesis in this process must not leak into the corpus.
    espeak.synthesize("unrelated words", voice="en+m3", rate=300)
    again = _tree_bytes(_small_gsc(str(tmp_path / "again"), num_workers=1))
    assert again == _tree_bytes(gsc_root)
    other = _tree_bytes(_small_gsc(str(tmp_path / "other"), seed=1))
    assert other != again
    noise = "_background_noise_/white_noise.wav"
    assert other[noise] != again[noise]


def test_mc_kws_same_seed_gives_identical_bytes(tmp_path):
    make = functools.partial(_small_mc, keywords=["打开", "hello"], num_speakers=1)
    first = _tree_bytes(make(str(tmp_path / "a"), seed=5))
    assert first == _tree_bytes(make(str(tmp_path / "b"), seed=5))
    assert first != _tree_bytes(make(str(tmp_path / "c"), seed=6))


def test_synthesize_batch_does_not_depend_on_workers_or_history():
    requests = [
        dict(text=word, voice=f"en+m{index % 7 + 1}", seed=index)
        for index, word in enumerate(["yes", "no", "stop"] * 4)
    ]
    first = espeak.synthesize_batch(requests, num_workers=2)
    espeak.synthesize("something else", voice="en+f1")
    second = espeak.synthesize_batch(requests, num_workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], first[3])


# Bad input


@pytest.mark.parametrize(
    "kwargs, value",
    [
        (dict(language="xx-nope"), "xx-nope"),
        (dict(language="en+m1"), "en+m1"),
        (dict(words=[]), "[]"),
        (dict(words="yes"), "'yes'"),
        (dict(words=["yes", "_hidden"]), "_hidden"),
        (dict(num_speakers=0), "num_speakers=0"),
        (dict(clips_per_word=-2), "clips_per_word=-2"),
        (dict(sample_rate=0), "sample_rate=0"),
        (dict(snr_db_range=(10.0, 5.0)), "(10.0, 5.0)"),
        (dict(validation_percentage=60.0, testing_percentage=50.0), "60.0"),
        (dict(seed=-1), "seed=-1"),
        (dict(num_workers=0), "num_workers=0"),
    ],
)
def test_gsc_bad_input_raises_value_error_naming_value(tmp_path, kwargs, value):
    output_dir = str(tmp_path / "out")
    with pytest.raises(ValueError) as info:
        synthetic.make_gsc_corpus(output_dir, **kwargs)
    assert value in str(info.value)
    assert not os.path.exists(output_dir)


@pytest.mark.parametrize(
    "kwargs, value",
    [
        (dict(keywords=[]), "[]"),
        (dict(language="zz"), "zz"),
        (dict(num_speakers=0), "num_speakers=0"),
        (dict(clips_per_word=0), "clips_per_word=0"),
        (dict(clip_seconds_range=(3.0, 2.0)), "(3.0, 2.0)"),
        (dict(snr_db_range=5.0), "snr_db_range=5.0"),
        (dict(speaker_split=(2, 2)), "speaker_split=(2, 2)"),
        (dict(speaker_split=(0, 2, 2)), "speaker_split=(0, 2, 2)"),
        (dict(num_speakers=5, speaker_split=(1, 1, 1)), "speaker_split=(1, 1, 1)"),
        (dict(heldout_voices=True), "heldout_voices=True"),
    ],
)
def test_mc_kws_bad_input_raises_value_error_naming_value(tmp_path, kwargs, value):
    output_dir = str(tmp_path / "out")
    with pytest.raises(ValueError) as info:
        synthetic.make_mc_kws_corpus(output_dir, **kwargs)
    assert value in str(info.value)
    assert not os.path.exists(output_dir)


def test_non_empty_output_dir_is_refused(tmp_path):
    (tmp_path / "stale.txt").write_text("x")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        _small_gsc(str(tmp_path))


def test_synthesize_rejects_unknown_variant_and_bad_rate():
    with pytest.raises(ValueError, match="nosuchvariant"):
        espeak.synthesize("yes", voice="en+nosuchvariant")
    with pytest.raises(ValueError, match="rate=5"):
        espeak.synthesize("yes", rate=5)


def test_unknown_language_error_suggests_only_available_languages():
    with pytest.raises(ValueError, match="no language 'xx'") as info:
        espeak.check_voice("xx")
    suggested = re.findall(r"'([^']+)'", str(info.value).split("e.g.")[1].split("Received")[0])
    assert "en-US" in suggested
    assert set(suggested) <= set(espeak.available_languages())


# Default-corpus cache


@pytest.fixture
def tiny_default(monkeypatch):
    """Shrinks the default corpora; returns the settings of each generation call."""
    calls = []
    make_gsc, make_mc = synthetic.make_gsc_corpus, synthetic.make_mc_kws_corpus

    def fake_gsc(output_dir, num_workers, **options):
        calls.append(("gsc2", output_dir, options))
        tiny = dict(words=["yes"], num_speakers=2, clips_per_word=1, background_noise_seconds=1.0)
        return make_gsc(output_dir, num_workers=num_workers, **{**options, **tiny})

    def fake_mc(output_dir, num_workers, **options):
        calls.append(("mc_kws", output_dir, options))
        tiny = dict(keywords=["打开"], num_speakers=1, clips_per_word=1)
        if "speaker_split" in options:
            tiny.update(num_speakers=3, speaker_split=(1, 1, 1))
        return make_mc(output_dir, num_workers=num_workers, **{**options, **tiny})

    monkeypatch.setattr(corpus, "make_gsc_corpus", fake_gsc)
    monkeypatch.setattr(corpus, "make_mc_kws_corpus", fake_mc)
    return calls


PRETRAINING_NAME = synthetic.DEFAULT_CORPORA["pretraining"].name
TRANSFER_NAME = synthetic.DEFAULT_CORPORA["transfer"].name


def test_ensure_default_corpus_generates_once(tmp_path, tiny_default):
    paths = synthetic.ensure_default_corpus(str(tmp_path))
    assert os.path.isfile(os.path.join(paths.gsc2, "validation_list.txt"))
    assert os.path.isfile(os.path.join(paths.mc_kws, "UTTRANSINFO.txt"))
    assert synthetic.ensure_default_corpus(str(tmp_path)) == paths
    assert [corpus for corpus, _, _ in tiny_default] == ["gsc2", "mc_kws"]
    assert os.listdir(tmp_path) == [PRETRAINING_NAME]


def test_transfer_corpus_has_other_speakers_and_accent(tmp_path, tiny_default):
    pretraining = synthetic.ensure_default_corpus(str(tmp_path))
    transfer = synthetic.ensure_default_corpus(str(tmp_path), corpus="transfer")
    assert sorted(os.listdir(tmp_path)) == sorted([PRETRAINING_NAME, TRANSFER_NAME])
    assert transfer.gsc2 == str(tmp_path / TRANSFER_NAME / "gsc2")
    pretraining_options = [options for _, _, options in tiny_default[:2]]
    transfer_options = [options for _, _, options in tiny_default[2:]]
    assert pretraining_options == [{}, {}]
    assert transfer_options == [
        {
            "seed": 1,
            "language": "en-US",
            "num_speakers": 250,
            "validation_percentage": 34.0,
            "testing_percentage": 34.0,
            "heldout_voices": True,
        },
        {"seed": 1, "speaker_split": (25, 42, 42), "heldout_voices": True},
    ]
    # Another seed draws other speaker ids, so no speaker of the transfer
    # corpus was heard in pre-training.
    assert not set(os.listdir(os.path.join(pretraining.gsc2, "yes"))) & set(
        os.listdir(os.path.join(transfer.gsc2, "yes"))
    )


def test_ensure_default_corpus_rejects_an_unknown_corpus(tmp_path):
    with pytest.raises(ValueError, match="'finetune'.*pretraining, transfer"):
        synthetic.ensure_default_corpus(str(tmp_path), corpus="finetune")
    assert os.listdir(tmp_path) == []


def test_ensure_default_corpus_leaves_nothing_when_killed(tmp_path, tiny_default, monkeypatch):
    def crash(output_dir, num_workers, **options):
        os.makedirs(os.path.join(output_dir, "WAV"))
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "make_mc_kws_corpus", crash)
    with pytest.raises(KeyboardInterrupt):
        synthetic.ensure_default_corpus(str(tmp_path), corpus="transfer")
    assert os.listdir(tmp_path) == []


def test_ensure_default_corpus_removes_abandoned_temp_dirs(tmp_path, tiny_default):
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    abandoned = tmp_path / f".{PRETRAINING_NAME}.tmp-{dead_pid}-abc"
    (abandoned / "gsc2").mkdir(parents=True)
    synthetic.ensure_default_corpus(str(tmp_path))
    assert os.listdir(tmp_path) == [PRETRAINING_NAME]


# Recipe


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--gsc_num_speakers=0", "num_speakers=0"),
        ("--no_such_flag=1", "no_such_flag"),
        ("--mc_speaker_split=1,x,1", "--mc_speaker_split"),
        ("--mc_speaker_split=1,1", "speaker_split=(1, 1)"),
    ],
)
def test_recipe_exits_2_with_one_line_on_bad_flags(tmp_path, flag, value):
    result = subprocess.run(
        [sys.executable, RECIPE, f"--output_dir={tmp_path / 'out'}", flag],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert value in lines[0]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out" / "gsc2")


def test_recipe_writes_requested_corpus(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            RECIPE,
            f"--output_dir={tmp_path}",
            "--corpora=gsc2",
            "--gsc_words=go,stop",
            "--gsc_num_speakers=2",
            "--gsc_clips_per_word=1",
            "--background_noise_seconds=1",
            "--seed=3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["gsc2"]
    assert len(os.listdir(tmp_path / "gsc2" / "go")) == 2


# The transfer corpus's split plan and held-out voices


def test_transfer_plan_has_2000_clip_validation_and_test_splits_per_task():
    plans = synthetic.split_plan("transfer")
    # By hand. GSC2: 250 speakers at 34 / 34 % are 80 / 85 / 85; x 2 clips = 170
    # clips per class; 12 classes (10 keywords, `_unknown_` capped at one
    # keyword's count, `_silence_` as large) = 2,040.
    assert plans["gsc2"].speakers == (80, 85, 85)
    assert plans["gsc2"].unknown_caps == (160, 170, 170)
    assert plans["gsc2"].task_clips == (1920, 2040, 2040)
    # MC-KWS: 25 / 42 / 42 speakers x 4 clips = 168 per class; x 12 = 2,016.
    assert plans["mc_kws"].speakers == (25, 42, 42)
    assert plans["mc_kws"].task_clips == (1200, 2016, 2016)
    for plan in plans.values():
        assert min(plan.task_clips[1:]) >= 2000


def test_pretraining_plan_is_v1_and_transfer_training_keeps_its_size():
    # v1's test splits were 240 (GSC2) and 288 (MC-KWS) clips (issue 26) and
    # its caps 160/20/20 and 100/24/24.
    pretraining = synthetic.split_plan("pretraining")
    assert pretraining["gsc2"].task_clips == (1920, 240, 240)
    assert pretraining["gsc2"].unknown_caps == (160, 20, 20)
    assert pretraining["mc_kws"].task_clips == (1200, 288, 288)
    assert pretraining["mc_kws"].unknown_caps == (100, 24, 24)
    transfer = synthetic.split_plan("transfer")
    for task in ("gsc2", "mc_kws"):
        assert transfer[task].task_clips[0] == pretraining[task].task_clips[0]
    with pytest.raises(ValueError, match="'v0'"):
        synthetic.split_plan("v0")


def test_transfer_corpus_name_changed_with_its_plan():
    # A cached v1 transfer corpus (240 test clips) must never be reused.
    assert TRANSFER_NAME not in ("synthetic_kws_transfer_v1", PRETRAINING_NAME)


def test_variant_pools_are_disjoint_and_hold_both_genders():
    training, heldout = voices.variant_pools()
    assert not set(training) & set(heldout)
    assert len(training) + len(heldout) == len(set(training) | set(heldout)) >= 40
    for pool in (training, heldout):
        assert {espeak.variant_gender(name) for name in pool} == {"M", "F", ""}


def _spy_speakers(monkeypatch):
    drawn = {}
    make = voices.make_speakers

    def spy(rng, speaker_ids, heldout=None):
        speakers = make(rng, speaker_ids, heldout)
        drawn.update((s.speaker_id, s.variant) for s in speakers)
        return speakers

    monkeypatch.setattr(voices, "make_speakers", spy)
    return drawn


def test_gsc_heldout_voices_keep_validation_and_test_voices_out_of_training(tmp_path, monkeypatch):
    drawn = _spy_speakers(monkeypatch)
    root = _small_gsc(str(tmp_path / "gsc"), heldout_voices=True, clips_per_word=1)
    training_pool, heldout_pool = voices.variant_pools()
    listed = set()
    for split in ("validation", "testing"):
        with open(os.path.join(root, f"{split}_list.txt")) as file:
            speakers = {line.split("/")[1].split("_")[0] for line in file if line.strip()}
        assert speakers and {drawn[s] for s in speakers} <= set(heldout_pool)
        listed |= speakers
    training = set(drawn) - listed - {"babble"}
    assert len(training) == GSC_SPEAKERS - len(listed) > 0
    assert {drawn[s] for s in training} <= set(training_pool)


def test_mc_kws_speaker_split_is_written_with_heldout_voices(tmp_path):
    root = _small_mc(
        str(tmp_path / "mc"),
        keywords=["打开", "hello"],
        num_speakers=None,
        speaker_split=(2, 1, 2),
        heldout_voices=True,
    )
    split_rows = _read_tsv(os.path.join(root, "SPLITINFO.txt"))
    assert split_rows[0] == ["SPEAKER_ID", "SPLIT"]
    split_of = dict(split_rows[1:])
    assert sorted(split_of.values()) == ["test", "test", "train", "train", "valid"]
    voice_of = {
        row[0]: row[3].split("+")[1] for row in _read_tsv(os.path.join(root, "SPKINFO.txt"))[1:]
    }
    assert set(voice_of) == set(split_of) == set(os.listdir(os.path.join(root, "WAV")))
    training_pool, heldout_pool = voices.variant_pools()
    for speaker, split in split_of.items():
        assert voice_of[speaker] in (training_pool if split == "train" else heldout_pool)


def test_heldout_corpora_are_deterministic(tmp_path):
    make = functools.partial(
        _small_mc, keywords=["打开"], num_speakers=None, speaker_split=(1, 1, 1)
    )
    first = _tree_bytes(make(str(tmp_path / "a"), heldout_voices=True))
    assert first == _tree_bytes(make(str(tmp_path / "b"), heldout_voices=True, num_workers=1))
    assert first != _tree_bytes(make(str(tmp_path / "c"), heldout_voices=False))


def test_recipe_writes_a_fixed_speaker_split_with_heldout_voices(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            RECIPE,
            f"--output_dir={tmp_path}",
            "--corpora=mc_kws",
            "--mc_keywords=打开",
            "--mc_clips_per_word=1",
            "--mc_speaker_split=1,1,2",
            "--heldout_voices",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = _read_tsv(os.path.join(tmp_path, "mc_kws", "SPLITINFO.txt"))[1:]
    assert sorted(split for _, split in rows) == ["test", "test", "train", "valid"]
    voice_of = {
        r[0]: r[3].split("+")[1] for r in _read_tsv(tmp_path / "mc_kws" / "SPKINFO.txt")[1:]
    }
    training_pool, heldout_pool = voices.variant_pools()
    for speaker, split in rows:
        assert voice_of[speaker] in (training_pool if split == "train" else heldout_pool)
