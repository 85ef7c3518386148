"""MC-KWS listing: mapping, speaker split, resampling, bad input."""

import json
import os
import shutil

import numpy as np
import pytest

from swr_keras.data import mc_kws, pipeline
from tests.data.conftest import (
    MC_EXCLUDED,
    MC_KNOWN,
    MC_SPEAKERS,
    MC_UNKNOWN,
    make_mc_kws_plain,
    mc_frequency,
    mc_seconds,
    tone,
    write_wav,
)


@pytest.fixture(scope="module")
def noise_dir(gsc2_root):
    return os.path.join(gsc2_root, "_background_noise_")


@pytest.fixture(scope="module")
def corpus(mc_kws_root, noise_dir, mapping_path):
    return mc_kws.list_mc_kws(mc_kws_root, noise_dir, mapping_path, seed=0)


def test_classes_and_counts(corpus):
    assert corpus.class_names == ("_silence_", "_unknown_") + MC_KNOWN
    assert corpus.clip_samples == int(1.2 * 16000)
    totals = {
        name: sum(corpus.class_counts(s)[name] for s in pipeline.SPLITS)
        for name in corpus.class_names
    }
    assert all(totals[k] == len(MC_SPEAKERS) for k in MC_KNOWN)
    assert totals["_unknown_"] == len(MC_SPEAKERS) * len(MC_UNKNOWN)
    for split in pipeline.SPLITS:
        counts = corpus.class_counts(split)
        assert counts["_silence_"] == max(counts[k] for k in MC_KNOWN)


def test_speaker_disjoint_split(corpus):
    groups = [set(corpus.splits[s][0].speakers) - {""} for s in pipeline.SPLITS]
    assert [len(g) for g in groups] == [6, 1, 1]  # 8 speakers, 25/6/6 shares
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


def _with_split_info(tmp_path, mc_kws_root, text):
    root = str(tmp_path / "fixed")
    shutil.copytree(mc_kws_root, root)
    with open(os.path.join(root, mc_kws.SPLIT_INFO), "w", encoding="utf-8") as file:
        file.write(text)
    return root


def test_split_info_fixes_the_split_for_every_seed(tmp_path, mc_kws_root, noise_dir, mapping_path):
    # G0001-G0004 train, G0005-G0006 valid, G0007-G0008 test: 4/2/2, not the
    # seeded 25/6/6 shares (6/1/1).
    fixed = {"train": MC_SPEAKERS[:4], "valid": MC_SPEAKERS[4:6], "test": MC_SPEAKERS[6:]}
    lines = [f"{s}\t{split}" for split, group in fixed.items() for s in group]
    root = _with_split_info(tmp_path, mc_kws_root, "SPEAKER_ID\tSPLIT\n" + "\n".join(lines) + "\n")
    for seed in (0, 1):
        listed = mc_kws.list_mc_kws(root, noise_dir, mapping_path, seed=seed)
        for split in pipeline.SPLITS:
            assert set(listed.splits[split][0].speakers) - {""} == set(fixed[split])


@pytest.mark.parametrize(
    "text, message",
    [
        ("SPEAKER\tSPLIT\n", "header"),
        ("SPEAKER_ID\tSPLIT\nG0001\tdev\n", "line 2: 'G0001.*dev'"),
        ("SPEAKER_ID\tSPLIT\nG0001\ttrain\n", "G0002"),
    ],
)
def test_bad_split_info_is_named(tmp_path, mc_kws_root, noise_dir, mapping_path, text, message):
    root = _with_split_info(tmp_path, mc_kws_root, text)
    with pytest.raises(ValueError, match=f"SPLITINFO.txt.*{message}"):
        mc_kws.list_mc_kws(root, noise_dir, mapping_path)


def test_split_speakers_full_size_and_seed():
    speakers = [f"S{i:02d}" for i in range(37)]
    split = mc_kws.split_speakers(speakers, seed=0)
    assert [len(split[s]) for s in pipeline.SPLITS] == [25, 6, 6]
    assert set().union(*split.values()) == set(speakers)
    assert mc_kws.split_speakers(speakers, seed=0) == split
    assert mc_kws.split_speakers(speakers, seed=1) != split
    with pytest.raises(ValueError, match="at least 3 speakers"):
        mc_kws.split_speakers(["a", "b"])


def test_excluded_keyword_dropped_and_crops_counted(corpus):
    excluded_hz = mc_frequency(MC_EXCLUDED[0])
    cropped = sum(t.num_cropped for s in pipeline.SPLITS for t in corpus.splits[s])

    words = MC_KNOWN + MC_UNKNOWN
    expected = sum(
        round(mc_seconds(s, k) * 48000) > 57600
        for s in range(len(MC_SPEAKERS))
        for k in range(len(words))
    )
    assert cropped == expected > 0
    dataset = pipeline.make_dataset(
        corpus, "train", batch_size=64, features=False, augment_mode="test"
    )
    for waves, labels in dataset:
        for wave, label in zip(waves.numpy(), labels.numpy()):
            if label == 0:
                continue
            hz = np.argmax(np.abs(np.fft.rfft(wave))) * 16000 / len(wave)
            assert abs(hz - excluded_hz) > 50
            word = min(MC_KNOWN + MC_UNKNOWN, key=lambda w: abs(mc_frequency(w) - hz))
            expected_label = 1 if word in MC_UNKNOWN else 2 + MC_KNOWN.index(word)
            assert label == expected_label


def test_plain_layout_matches_magichub(mc_kws_plain_root, noise_dir, mapping_path, corpus):
    plain = mc_kws.list_mc_kws(mc_kws_plain_root, noise_dir, mapping_path, seed=0)
    for split in pipeline.SPLITS:
        assert plain.class_counts(split) == corpus.class_counts(split)
        assert set(plain.splits[split][0].speakers) == set(corpus.splits[split][0].speakers)


def test_features_shape(corpus):
    x, y = next(iter(pipeline.make_dataset(corpus, "train", batch_size=4)))
    assert x.shape == (4, 40, 1 + int(1.2 * 16000) // 160, 1)


# Mapping file errors.


def test_mapping_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        mc_kws.load_mapping(str(tmp_path / "absent.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        mc_kws.load_mapping(str(bad))
    overlap = tmp_path / "overlap.json"
    overlap.write_text(
        json.dumps({"known": ["a"], "unknown": ["a"], "excluded": [], "clip_seconds": 2.24})
    )
    with pytest.raises(ValueError, match="'a' appears in both 'known' and 'unknown'"):
        mc_kws.load_mapping(str(overlap))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"known": ["a"], "unknown": [], "excluded": []}))
    with pytest.raises(ValueError, match="no 'clip_seconds'"):
        mc_kws.load_mapping(str(partial))


# Corpus errors, each naming the file.


@pytest.fixture()
def broken(mc_kws_root, tmp_path):
    root = str(tmp_path / "mc")
    shutil.copytree(mc_kws_root, root)
    return root


def test_missing_root(tmp_path, noise_dir, mapping_path):
    with pytest.raises(FileNotFoundError, match="MC-KWS directory not found"):
        mc_kws.list_mc_kws(str(tmp_path / "x"), noise_dir, mapping_path)


def test_unmapped_keyword(broken, noise_dir, mapping_path):
    with open(os.path.join(broken, "UTTRANSINFO.txt"), "a", encoding="utf-8") as f:
        f.write(f"{MC_SPEAKERS[0]}\t{MC_SPEAKERS[0]}_0000.wav\t早上好\t早上好\n")
    with pytest.raises(ValueError, match="keyword '早上好' is not in"):
        mc_kws.list_mc_kws(broken, noise_dir, mapping_path)


def test_listed_file_missing(broken, noise_dir, mapping_path):
    os.remove(os.path.join(broken, "WAV", MC_SPEAKERS[2], f"{MC_SPEAKERS[2]}_0003.wav"))
    with pytest.raises(FileNotFoundError, match="UTTRANSINFO.txt, line .*_0003.wav"):
        mc_kws.list_mc_kws(broken, noise_dir, mapping_path)


def test_unexpected_rate(broken, noise_dir, mapping_path):
    path = os.path.join(broken, "WAV", MC_SPEAKERS[1], f"{MC_SPEAKERS[1]}_0001.wav")
    write_wav(path, tone(500, 1.0, 44100), 44100)
    with pytest.raises(ValueError, match=f"{path} is sampled at 44100 Hz"):
        mc_kws.list_mc_kws(broken, noise_dir, mapping_path)


def test_other_rate_accepted_when_declared(tmp_path, noise_dir, mapping_path):
    root = make_mc_kws_plain(str(tmp_path / "mc441"), sample_rate=44100)
    corpus = mc_kws.list_mc_kws(root, noise_dir, mapping_path, sample_rate=44100)
    waves, labels = next(iter(pipeline.make_dataset(corpus, "test", batch_size=64, features=False)))
    for wave, label in zip(waves.numpy(), labels.numpy()):
        if label >= 2:
            hz = np.argmax(np.abs(np.fft.rfft(wave))) * 16000 / len(wave)
            assert abs(hz - mc_frequency(MC_KNOWN[label - 2])) < 20


def test_header_missing_column(broken, noise_dir, mapping_path):
    path = os.path.join(broken, "UTTRANSINFO.txt")
    lines = open(path, encoding="utf-8").read().splitlines()
    lines[0] = "SPEAKER\tUTTRANS_ID\tPROMPT\tTRANSCRIPTION"
    open(path, "w", encoding="utf-8").write("\n".join(lines))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['SPEAKER_ID'\]"):
        mc_kws.list_mc_kws(broken, noise_dir, mapping_path)


def test_empty_known_class(mc_kws_plain_root, tmp_path, noise_dir, mapping_path):
    root = str(tmp_path / "plain")
    shutil.copytree(mc_kws_plain_root, root)
    shutil.rmtree(os.path.join(root, MC_KNOWN[3]))
    with pytest.raises(ValueError, match=f"Class '{MC_KNOWN[3]}' has no clips"):
        mc_kws.list_mc_kws(root, noise_dir, mapping_path)


def test_truncated_wav_is_named(broken, noise_dir, mapping_path):
    path = os.path.join(broken, "WAV", MC_SPEAKERS[3], f"{MC_SPEAKERS[3]}_0005.wav")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ValueError, match=f"{path} is truncated"):
        mc_kws.list_mc_kws(broken, noise_dir, mapping_path)


def test_plain_file_without_speaker(mc_kws_plain_root, tmp_path, noise_dir, mapping_path):
    root = str(tmp_path / "plain")
    shutil.copytree(mc_kws_plain_root, root)
    write_wav(os.path.join(root, MC_KNOWN[0], "nospeaker.wav"), tone(500, 1, 48000), 48000)
    with pytest.raises(ValueError, match="nospeaker.wav: cannot read the speaker"):
        mc_kws.list_mc_kws(root, noise_dir, mapping_path)


def test_noise_clip_length(tmp_path, mc_kws_root, mapping_path):
    short_noise = str(tmp_path / "noise")
    write_wav(os.path.join(short_noise, "short.wav"), np.zeros(8000))
    with pytest.raises(FileNotFoundError, match="No usable WAV file"):
        mc_kws.list_mc_kws(mc_kws_root, short_noise, mapping_path)


def test_start_crop_keeps_the_beginning(tmp_path, noise_dir, mapping_path):
    root = str(tmp_path / "mc")
    for speaker in MC_SPEAKERS[:3]:
        for k, word in enumerate(MC_KNOWN + MC_UNKNOWN):
            # Keyword tone in the first 0.5 s, then a louder 2 kHz hum.
            clip = np.r_[tone(mc_frequency(word), 0.5, 48000, 0.2), tone(2000.0, 1.5, 48000, 0.9)]
            write_wav(os.path.join(root, word, f"{speaker}_{k}.wav"), clip, 48000)
    for crop, keyword_kept in (("start", True), ("energy", False)):
        corpus = mc_kws.list_mc_kws(root, noise_dir, mapping_path, crop=crop)
        assert corpus.splits["train"][0].num_cropped == len(MC_KNOWN + MC_UNKNOWN)
        waves, labels = next(
            iter(
                pipeline.make_dataset(
                    corpus, "train", features=False, augment_mode="test", shuffle=False
                )
            )
        )
        checked = 0
        for wave, label in zip(waves.numpy(), labels.numpy()):
            if label < 2:
                continue
            head = wave[:8000]
            hz = np.argmax(np.abs(np.fft.rfft(head))) * 16000 / len(head)
            assert (abs(hz - mc_frequency(MC_KNOWN[label - 2])) < 40) == keyword_kept
            checked += 1
        assert checked == len(MC_KNOWN)
    with pytest.raises(ValueError, match="crop='middle'"):
        mc_kws.list_mc_kws(root, noise_dir, mapping_path, crop="middle")
