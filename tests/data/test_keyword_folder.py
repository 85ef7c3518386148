"""A user's keyword folder: layouts, splits, resampling, and the bad folders."""

import os
import struct

import numpy as np
import pytest

from swr_keras.data import keyword_folder, pipeline
from tests.data.conftest import tone, write_wav

SPEAKERS = tuple(f"spk{i:02d}" for i in range(10))


def write_float_wav(path, samples, sample_rate):
    """A mono 32-bit IEEE-float WAV (format 3), as many recorders write."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, 4 * sample_rate, 4, 32) + b"\0\0"
    fact = struct.pack("<I", len(samples))
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as file:
        file.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def frequency_of(word):
    return {"alpha": 400.0, "bravo": 700.0, "charlie": 1000.0, "other": 1500.0}[word]


def make_folder(
    root,
    words=("alpha", "bravo"),
    unknown=("other",),
    speakers=SPEAKERS,
    named=True,
    noise=True,
    sample_rate=16000,
    seconds=0.8,
):
    """`<root>/<word>/<speaker>_nohash_0.wav` tones; `_unknown_/<word>/...`; noise."""
    for word in words + unknown:
        folder = (
            os.path.join(root, "_unknown_", word) if word in unknown else os.path.join(root, word)
        )
        for index, speaker in enumerate(speakers):
            name = f"{speaker}_nohash_0.wav" if named else f"take{index}.wav"
            waveform = tone(frequency_of(word), seconds, sample_rate)
            write_wav(os.path.join(folder, name), waveform, sample_rate)
    if noise:
        rng = np.random.default_rng(0)
        write_wav(
            os.path.join(root, "_background_noise_", "room.wav"),
            0.1 * rng.standard_normal(3 * sample_rate),
            sample_rate,
        )
    return str(root)


def rows(corpus, split):
    """`(relative path, label)` of the file rows of `split`."""
    out = []
    for table in corpus.splits[split]:
        out += [(p, int(label)) for p, label in zip(table.paths, table.labels) if p]
    return out


def test_layout_classes_labels_and_silence(tmp_path):
    root = make_folder(tmp_path)
    os.makedirs(tmp_path / ".git")  # hidden folders are no keyword
    (tmp_path / "alpha" / "notes.txt").write_text("not audio")
    corpus = keyword_folder.list_keyword_folder(root)
    assert corpus.class_names == ("_silence_", "_unknown_", "alpha", "bravo")
    assert corpus.clip_samples == 16000
    for split in pipeline.SPLITS:
        for path, label in rows(corpus, split):
            word = os.path.basename(os.path.dirname(path))
            assert label == (1 if word == "other" else corpus.class_names.index(word))
        counts = corpus.class_counts(split)
        # As GSC2: as many silence clips as the split's largest keyword.
        assert counts["_silence_"] == max(counts["alpha"], counts["bravo"]) > 0
    # Every clip listed exactly once.
    listed = sum(len(rows(corpus, s)) for s in pipeline.SPLITS)
    assert listed == 3 * len(SPEAKERS)


def test_unknown_words_join_the_unknown_class(tmp_path):
    root = make_folder(tmp_path, words=("alpha", "bravo", "charlie"), unknown=())
    corpus = keyword_folder.list_keyword_folder(root, unknown_words=["charlie"])
    assert corpus.class_names == ("_silence_", "_unknown_", "alpha", "bravo")
    unknown = [p for s in pipeline.SPLITS for p, label in rows(corpus, s) if label == 1]
    assert len(unknown) == len(SPEAKERS)
    assert all("/charlie/" in p for p in unknown)


def test_speaker_split_is_disjoint_deterministic_and_seed_free(tmp_path):
    root = make_folder(tmp_path)
    corpus = keyword_folder.list_keyword_folder(root)
    speakers = {
        split: {keyword_folder.speaker_of(p) for p, _ in rows(corpus, split)}
        for split in pipeline.SPLITS
    }
    assert set.union(*speakers.values()) == set(SPEAKERS)
    assert sum(len(s) for s in speakers.values()) == len(SPEAKERS)  # disjoint
    assert len(speakers["test"]) == len(speakers["valid"]) == 1  # 10 % of 10, at least 1
    # The lowest SHA-1 ranks are the test speaker, the next the validation one.
    ranked = sorted(SPEAKERS, key=keyword_folder._sha1)
    assert speakers["test"] == {ranked[0]} and speakers["valid"] == {ranked[1]}
    other = keyword_folder.list_keyword_folder(root, seed=5)
    for split in pipeline.SPLITS:
        assert rows(other, split) == rows(corpus, split)


def test_file_hash_split_without_speaker_names(tmp_path):
    root = make_folder(tmp_path, named=False)
    corpus = keyword_folder.list_keyword_folder(root, testing_percentage=20.0)
    for word in ("alpha", "bravo", "other"):
        per_split = {
            s: sorted(p for p, _ in rows(corpus, s) if f"/{word}/" in p) for s in pipeline.SPLITS
        }
        # Within every class folder: 20 % test, 10 % validation, the rest training.
        assert [len(per_split[s]) for s in ("train", "valid", "test")] == [7, 1, 2]
        names = [os.path.basename(p) for p in per_split["test"] + per_split["valid"]]
        ranked = sorted(
            (f"{'_unknown_/' if word == 'other' else ''}{word}/take{i}.wav" for i in range(10)),
            key=keyword_folder._sha1,
        )
        assert sorted(names) == sorted(os.path.basename(n) for n in ranked[:3])


def test_split_lists_decide_and_the_rest_is_training(tmp_path):
    root = make_folder(tmp_path)
    (tmp_path / "validation_list.txt").write_text(
        "alpha/spk03_nohash_0.wav\nbravo/spk03_nohash_0.wav\n_unknown_/other/spk03_nohash_0.wav\n"
    )
    (tmp_path / "testing_list.txt").write_text(
        "alpha/spk04_nohash_0.wav\nbravo/spk04_nohash_0.wav\n_unknown_/other/spk04_nohash_0.wav\n"
    )
    corpus = keyword_folder.list_keyword_folder(root)
    relative = {
        s: sorted(os.path.relpath(p, root) for p, _ in rows(corpus, s)) for s in pipeline.SPLITS
    }
    assert relative["valid"] == [
        "_unknown_/other/spk03_nohash_0.wav",
        "alpha/spk03_nohash_0.wav",
        "bravo/spk03_nohash_0.wav",
    ]
    assert relative["test"] == [
        "_unknown_/other/spk04_nohash_0.wav",
        "alpha/spk04_nohash_0.wav",
        "bravo/spk04_nohash_0.wav",
    ]
    assert len(relative["train"]) == 3 * len(SPEAKERS) - 6


def _peak_hz(waveform, sample_rate=16000):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return np.argmax(spectrum) * sample_rate / len(waveform)


def test_any_rate_and_float_files_are_resampled_in_graph(tmp_path):
    # alpha at 8 kHz (16-bit), bravo at 44.1 kHz as 32-bit float, noise at 48 kHz.
    make_folder(tmp_path, words=("alpha",), unknown=(), sample_rate=8000, noise=False)
    for speaker in SPEAKERS:
        write_float_wav(
            str(tmp_path / "bravo" / f"{speaker}_nohash_0.wav"),
            tone(frequency_of("bravo"), 0.8, 44100),
            44100,
        )
    write_wav(str(tmp_path / "_background_noise_" / "hum.wav"), tone(3000.0, 2.0, 48000), 48000)
    corpus = keyword_folder.list_keyword_folder(str(tmp_path))
    tables = corpus.splits["train"]
    assert sorted((t.sample_rate, t.sample_format) for t in tables) == [
        (8000, "pcm16"),
        (44100, "float"),
    ]
    assert corpus.noise_bank.lengths.tolist() == [32000]  # 2 s at 16 kHz
    assert abs(_peak_hz(corpus.noise_bank.flat) - 3000.0) < 10
    data = pipeline.waveform_dataset(corpus, "train")
    seen = set()
    for waveform, label in data.as_numpy_iterator():
        assert waveform.shape == (16000,)
        if label >= 2:
            word = corpus.class_names[label]
            voiced = waveform[: int(0.8 * 16000) - 200]  # the 0.8 s tone, zero-padded after
            assert abs(_peak_hz(voiced) - frequency_of(word)) < 5, word
            assert np.abs(waveform[int(0.8 * 16000) + 100 :]).max() < 1e-3
            seen.add(word)
    assert seen == {"alpha", "bravo"}


def test_clip_seconds_fits_longer_keywords(tmp_path):
    root = make_folder(tmp_path, seconds=1.4)
    with pytest.raises(ValueError) as error:
        keyword_folder.list_keyword_folder(root)
    message = str(error.value)
    assert "30 clip(s) are longer than clip_seconds=1" in message
    assert "(1.400 s); set clip_seconds (--clip_seconds) to 1.4" in message
    corpus = keyword_folder.list_keyword_folder(root, clip_seconds=1.5)
    waveforms, _ = next(iter(pipeline.make_dataset(corpus, "test", features=False)))
    assert waveforms.shape[1] == corpus.clip_samples == 24000


def test_without_background_noise_there_is_no_silence_and_no_noise(tmp_path, caplog):
    root = make_folder(tmp_path, noise=False)
    corpus = keyword_folder.list_keyword_folder(root)
    assert "no _background_noise_ folder" in caplog.text
    assert corpus.class_names[0] == "_silence_"
    for split in pipeline.SPLITS:
        assert corpus.class_counts(split)["_silence_"] == 0
    assert not corpus.noise_bank.flat.any()
    # Augmentation then mixes nothing in: every clip is still a pure tone.
    batch, _ = next(
        iter(pipeline.make_dataset(corpus, "train", features=False, spec_augment=False))
    )
    assert np.abs(batch.numpy()).max() <= 0.5 + 1e-4


def test_a_single_keyword_with_unknown_clips_is_a_task(tmp_path):
    root = make_folder(tmp_path, words=("alpha",))
    corpus = keyword_folder.list_keyword_folder(root)
    assert corpus.class_names == ("_silence_", "_unknown_", "alpha")


def _corrupt(root):
    with open(os.path.join(root, "bravo", "spk05_nohash_0.wav"), "r+b") as file:
        file.write(b"JUNK")


def _stereo(root):
    write_wav(os.path.join(root, "bravo", "spk05_nohash_0.wav"), tone(700, 0.5, 16000), channels=2)


def _empty_keyword(root):
    os.makedirs(os.path.join(root, "charlie"))


def _speaker_in_two_splits(root):
    with open(os.path.join(root, "testing_list.txt"), "w") as file:
        file.write("alpha/spk04_nohash_0.wav\n")  # spk04's bravo clip stays in training


def _listed_file_missing(root):
    with open(os.path.join(root, "validation_list.txt"), "w") as file:
        file.write("alpha/nobody_nohash_0.wav\n")


def _only_one_keyword(root):
    import shutil

    shutil.rmtree(os.path.join(root, "bravo"))
    shutil.rmtree(os.path.join(root, "_unknown_"))


def _too_few_clips(root):
    for name in sorted(os.listdir(os.path.join(root, "bravo")))[2:]:
        os.remove(os.path.join(root, "bravo", name))


def test_unknown_words_must_name_folders(tmp_path):
    root = make_folder(tmp_path)
    with pytest.raises(ValueError, match="unknown_words names 'nope', which is not a folder"):
        keyword_folder.list_keyword_folder(root, unknown_words=["nope"])


@pytest.mark.parametrize(
    "damage, message",
    [
        (_corrupt, "bravo/spk05_nohash_0.wav is not a readable PCM WAV file"),
        (_stereo, "bravo/spk05_nohash_0.wav has 2 channels; only mono is supported"),
        (_empty_keyword, "charlie holds no .wav file; add recordings or remove the folder."),
        (_speaker_in_two_splits, "Speaker spk04 has clips in two splits"),
        (_listed_file_missing, "validation_list.txt, line 1:"),
        (_only_one_keyword, "has only one keyword folder (alpha) and no _unknown_ clips"),
        (_too_few_clips, "bravo has 2 clip(s); splitting by file needs at least 3"),
    ],
)
def test_bad_folders_get_one_line_naming_what_and_the_fix(tmp_path, damage, message):
    root = make_folder(tmp_path, named=damage is not _too_few_clips)
    damage(root)
    with pytest.raises(ValueError) as error:
        keyword_folder.list_keyword_folder(root)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
