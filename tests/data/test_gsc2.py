"""GSC2 12-way listing: splits, labels, rebalancing, bad input."""

import os
import shutil

import numpy as np
import pytest

from swr_keras.data import gsc2
from tests.data.conftest import GSC_KEYWORDS, GSC_SPEAKERS, GSC_UNKNOWN_WORDS, tone, write_wav


def _read_list(root, name):
    with open(os.path.join(root, name)) as f:
        return {os.path.join(root, line.strip()) for line in f if line.strip()}


@pytest.fixture(scope="module")
def corpus(gsc2_root):
    return gsc2.list_gsc2(gsc2_root, seed=0)


def _files(corpus, split):
    (table,) = corpus.splits[split]
    return {p: int(l) for p, l in zip(table.paths, table.labels) if p}


def test_split_membership_follows_list_files(gsc2_root, corpus):
    valid = _read_list(gsc2_root, "validation_list.txt")
    test = _read_list(gsc2_root, "testing_list.txt")

    def keyword_or_unknown(split):
        return set(_files(corpus, split))

    assert keyword_or_unknown("valid") <= valid
    assert keyword_or_unknown("test") <= test
    assert not keyword_or_unknown("train") & (valid | test)
    # Keyword files of the lists all made it (unknown ones are capped).
    for split, listed in (("valid", valid), ("test", test)):
        keywords = {p for p in listed if p.split(os.sep)[-2] in GSC_KEYWORDS}
        assert keywords <= keyword_or_unknown(split)


def test_labels_follow_folders(corpus):
    for split in ("train", "valid", "test"):
        for path, label in _files(corpus, split).items():
            word = path.split(os.sep)[-2]
            expected = gsc2.CLASS_NAMES.index(word) if word in GSC_KEYWORDS else 1
            assert label == expected, path


def test_class_counts(corpus):
    per_speaker = 2  # files per speaker and word in the fixture
    train = corpus.class_counts("train")
    assert corpus.class_names[:2] == ("_silence_", "_unknown_")
    assert all(train[k] == 4 * per_speaker for k in GSC_KEYWORDS)
    assert train["_unknown_"] == 4 * per_speaker * len(GSC_UNKNOWN_WORDS)
    assert train["_silence_"] == 4 * per_speaker  # = largest keyword count
    test = corpus.class_counts("test")
    assert all(test[k] == per_speaker for k in GSC_KEYWORDS)
    assert test["_silence_"] == per_speaker


def test_caps_hold_and_are_seeded(gsc2_root, corpus):
    capped = gsc2.list_gsc2(gsc2_root, seed=0, unknown_caps=(5, 2, 1), silence_caps=(3, 1, 0))
    for split, unknown, silence in (("train", 5, 3), ("valid", 2, 1), ("test", 1, 0)):
        counts = capped.class_counts(split)
        assert (counts["_unknown_"], counts["_silence_"]) == (unknown, silence)
        all_unknown = {p for p, l in _files(corpus, split).items() if l == 1}
        assert {p for p, l in _files(capped, split).items() if l == 1} <= all_unknown
    again = gsc2.list_gsc2(gsc2_root, seed=0, unknown_caps=(5, 2, 1))
    other = gsc2.list_gsc2(gsc2_root, seed=1, unknown_caps=(5, 2, 1))
    assert (
        again.splits["train"][0].paths
        == gsc2.list_gsc2(gsc2_root, seed=0, unknown_caps=(5, 2, 1)).splits["train"][0].paths
    )
    assert other.splits["train"][0].paths != again.splits["train"][0].paths


def test_default_caps_are_the_reference_numbers():
    assert gsc2.DEFAULT_CAPS == (3077, 371, 408)


def test_silence_rows(corpus):
    train, test = corpus.splits["train"][0], corpus.splits["test"][0]
    silent_train = train.labels == 0
    assert np.all(train.noise_offsets[silent_train] == -1)
    silent_test = test.labels == 0
    assert np.all(test.noise_offsets[silent_test] >= 0)
    assert np.all((test.noise_gains[silent_test] >= 0) & (test.noise_gains[silent_test] < 1))


def test_speakers_from_file_names(corpus):
    assert set(corpus.splits["valid"][0].speakers) - {""} == {GSC_SPEAKERS[4]}
    assert gsc2.speaker_of("0a7c2a8d_nohash_3.wav") == "0a7c2a8d"


# Bad input: each gets an error naming the file and the fix.


@pytest.fixture()
def broken(gsc2_root, tmp_path):
    root = str(tmp_path / "gsc2")
    shutil.copytree(gsc2_root, root)
    return root


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="GSC2 directory not found"):
        gsc2.list_gsc2(str(tmp_path / "absent"))


@pytest.mark.parametrize("name", ["validation_list.txt", "testing_list.txt"])
def test_missing_list_file(broken, name):
    os.remove(os.path.join(broken, name))
    with pytest.raises(FileNotFoundError, match=name):
        gsc2.list_gsc2(broken)


def test_listed_file_missing(broken):
    os.remove(os.path.join(broken, "yes", f"{GSC_SPEAKERS[5]}_nohash_0.wav"))
    with pytest.raises(FileNotFoundError, match="testing_list.txt, line .*does not exist"):
        gsc2.list_gsc2(broken)


def test_file_in_both_lists(broken):
    with open(os.path.join(broken, "validation_list.txt"), "a") as f:
        f.write(f"up/{GSC_SPEAKERS[5]}_nohash_0.wav\n")
    with pytest.raises(ValueError, match="listed in both"):
        gsc2.list_gsc2(broken)


def test_missing_keyword_folder(broken):
    shutil.rmtree(os.path.join(broken, "stop"))
    with pytest.raises(FileNotFoundError, match=r"\['stop'\] missing"):
        gsc2.list_gsc2(broken)


def test_empty_keyword_folder(broken):
    folder = os.path.join(broken, "left")
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    for list_name in ("validation_list.txt", "testing_list.txt"):
        path = os.path.join(broken, list_name)
        lines = [l for l in open(path) if not l.startswith("left/")]
        open(path, "w").writelines(lines)
    with pytest.raises(ValueError, match="left holds no .wav"):
        gsc2.list_gsc2(broken)


def test_corrupt_wav_is_named(broken):
    path = os.path.join(broken, "go", f"{GSC_SPEAKERS[0]}_nohash_1.wav")
    with open(path, "wb") as f:
        f.write(b"\0" * 100)
    with pytest.raises(ValueError, match=f"{path} is not a readable PCM WAV"):
        gsc2.list_gsc2(broken)


def test_stereo_wav_is_named(broken):
    path = os.path.join(broken, "cat", f"{GSC_SPEAKERS[0]}_nohash_0.wav")
    write_wav(path, tone(300, 0.5, 16000), channels=2)
    with pytest.raises(ValueError, match=f"{path} has 2 channels"):
        gsc2.list_gsc2(broken)


def test_long_clip_is_named(broken):
    path = os.path.join(broken, "no", f"{GSC_SPEAKERS[1]}_nohash_0.wav")
    write_wav(path, tone(300, 1.25, 16000))
    with pytest.raises(ValueError, match=f"{path} has 20000 samples"):
        gsc2.list_gsc2(broken)


def test_no_unknown_words(broken):
    for word in GSC_UNKNOWN_WORDS:
        shutil.rmtree(os.path.join(broken, word))
    for list_name in ("validation_list.txt", "testing_list.txt"):
        path = os.path.join(broken, list_name)
        lines = [l for l in open(path) if l.split("/")[0] not in GSC_UNKNOWN_WORDS]
        open(path, "w").writelines(lines)
    with pytest.raises(ValueError, match="No clips for _unknown_"):
        gsc2.list_gsc2(broken)


def test_missing_noise_folder(broken):
    shutil.rmtree(os.path.join(broken, "_background_noise_"))
    with pytest.raises(FileNotFoundError, match="_background_noise_"):
        gsc2.list_gsc2(broken)


def test_bad_caps(gsc2_root):
    with pytest.raises(ValueError, match="Caps must be 3"):
        gsc2.list_gsc2(gsc2_root, unknown_caps=(1, 2))
