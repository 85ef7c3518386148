"""The TFDS adapter, tested offline (no download is attempted)."""

import importlib.util
import io
import os
import tarfile
import wave

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums

from swr_keras.data import augment, gsc2, pipeline
from swr_keras.data import tfds_speech_commands as adapter

# pydub warns on import that ffmpeg is missing; it reads WAV without it.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't find ffmpeg:RuntimeWarning")


def test_missing_manual_dir_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="speech_commands_v0.02.tar.gz"):
        adapter.prepare(str(tmp_path / "tfds"), manual_dir=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="manual directory None"):
        adapter.waveform_dataset("train", str(tmp_path / "tfds"))


def test_manual_dir_without_archives(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "speech_commands_v0.02.tar.gz").write_bytes(b"")
    with pytest.raises(
        FileNotFoundError, match=r"lacks \['speech_commands_test_set_v0.02.tar.gz'\]"
    ):
        adapter.prepare(str(tmp_path / "tfds"), manual_dir=str(manual))


def test_label_order_matches_the_builder():
    names = tfds.builder("speech_commands").info.features["label"].names
    assert tuple(names) == adapter.TFDS_LABELS


def test_examples_map_to_the_gsc2_spec():
    audio = tf.constant(np.arange(8000, dtype=np.int16) - 4000)
    for tfds_index, name in enumerate(adapter.TFDS_LABELS):
        wave, label = adapter.from_tfds_example(audio, tf.constant(tfds_index, tf.int64))
        assert gsc2.CLASS_NAMES[int(label)] == name
        assert label.dtype == tf.int32
    assert wave.shape == (16000,) and wave.dtype == tf.float32
    np.testing.assert_allclose(wave.numpy()[:8000], (np.arange(8000) - 4000) / 32768)
    assert np.all(wave.numpy()[8000:] == 0)


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        adapter.waveform_dataset("dev", str(tmp_path))


# End to end: tiny fake official archives -> TFDS builder -> adapter.

SAMPLE_RATE = 16000
# Clips of the main archive: path -> (list it is named in, number of samples).
# Files in testing_list.txt belong to no TFDS split (TFDS's test split is the
# separate test archive).
MAIN_CLIPS = {
    "yes/0a7c2a8d_nohash_0.wav": ("train", 16000),
    "yes/0a7c2a8d_nohash_1.wav": ("validation", 16000),
    "yes/1b8f3c2e_nohash_0.wav": ("testing_list", 16000),
    "no/0a7c2a8d_nohash_0.wav": ("train", 8000),  # short: zero-padded
    "no/2c9e4d1f_nohash_0.wav": ("validation", 16000),
    "up/3d0f5e2a_nohash_0.wav": ("train", 16000),
    "bed/0a7c2a8d_nohash_0.wav": ("train", 16000),
    "bed/4e1a6f3b_nohash_0.wav": ("validation", 12000),
    "wow/5f2b7a4c_nohash_0.wav": ("train", 16000),
    "wow/1b8f3c2e_nohash_1.wav": ("testing_list", 16000),
}
# Background noise: name -> (number of samples, 1 s window starts). The
# builder gives running_tap.wav to validation and every other noise file to
# train, cut at `range(0, length - 16000, 8000)`: a window ending exactly at
# the end of the file (24000:40000 below) is dropped.
NOISE = {
    "running_tap.wav": (40000, (0, 8000, 16000)),
    "white_noise.wav": (28000, (0, 8000)),
}
# The official test archive: one folder per class, silence included.
TEST_CLIPS = {
    "yes/6a3c8b5d_nohash_0.wav": 16000,
    "left/7b4d9c6e_nohash_0.wav": 16000,
    "stop/8c5e0d7f_nohash_0.wav": 14000,
    "_unknown_/bed_9d6f1e8a_nohash_0.wav": 16000,
    "_silence_/running_tap_1.wav": 16000,
}


def _class_of(path):
    word = path.split("/")[0]
    if word in gsc2.KEYWORDS or word in (gsc2.SILENCE, gsc2.UNKNOWN):
        return word
    return gsc2.UNKNOWN


def _samples(seed, length):
    samples = np.random.default_rng(seed).integers(-32768, 32768, length, dtype=np.int16)
    samples[:2] = (-32768, 32767)  # both ends of the int16 range
    return samples


def _wav_bytes(samples):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def _write_tar_gz(path, files):
    """Writes `files` (name -> bytes) as `./<name>` (`tar -C dir .` style)."""
    folders = sorted({os.path.dirname(name) for name in files} - {""})
    with tarfile.open(path, "w:gz") as tar:
        for folder in ["."] + [f"./{f}" for f in folders]:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _expected(samples, clip, class_name):
    padded = np.pad(samples, (0, SAMPLE_RATE - len(samples)))
    return padded.astype(np.float32) / 32768.0, clip, class_name


@pytest.fixture(scope="module")
def fake_gsc(tmp_path_factory):
    """Prepares TFDS speech_commands once from tiny fake official archives.

    Returns `(data_dir, manual_dir, expected)`; `expected[split]` lists
    `(waveform float32 [16000], clip id, class name)` per example, the clip id
    being `<archive path>` or `<noise path>@<window start>`.
    """
    root = tmp_path_factory.mktemp("speech_commands")
    manual_dir = root / "manual"
    manual_dir.mkdir()
    expected = {"train": [], "validation": [], "test": []}
    main, test = {}, {}
    lists = {"validation": [], "testing_list": []}
    for seed, (path, (split, length)) in enumerate(MAIN_CLIPS.items()):
        samples = _samples(seed, length)
        main[path] = _wav_bytes(samples)
        if split in lists:
            lists[split].append(path)
        if split != "testing_list":
            expected[split].append(_expected(samples, path, _class_of(path)))
    for seed, (name, (length, starts)) in enumerate(NOISE.items(), start=100):
        path = f"_background_noise_/{name}"
        samples = _samples(seed, length)
        main[path] = _wav_bytes(samples)
        split = "validation" if name == "running_tap.wav" else "train"
        expected[split] += [
            _expected(samples[s : s + SAMPLE_RATE], f"{path}@{s}", gsc2.SILENCE) for s in starts
        ]
    main["_background_noise_/README.md"] = b"not audio\n"
    main["validation_list.txt"] = "\n".join(lists["validation"]).encode() + b"\n"
    main["testing_list.txt"] = "\n".join(lists["testing_list"]).encode() + b"\n"
    main["README.md"] = b"fake speech commands\n"
    for seed, (path, length) in enumerate(TEST_CLIPS.items(), start=200):
        samples = _samples(seed, length)
        test[path] = _wav_bytes(samples)
        expected["test"].append(_expected(samples, path, _class_of(path)))
    main_name, test_name = adapter.ARCHIVES
    _write_tar_gz(manual_dir / main_name, main)
    _write_tar_gz(manual_dir / test_name, test)

    data_dir = root / "tfds"
    # TFDS validates manually downloaded archives against the checksums of the
    # official ones; register the fake archives' checksums instead.
    builder_cls = tfds.builder_cls("speech_commands")
    fake_infos = {
        url: checksums.compute_url_info(manual_dir / info.filename)
        for url, info in builder_cls.url_infos.items()
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builder_cls, "url_infos", fake_infos)
        adapter.prepare(str(data_dir), manual_dir=str(manual_dir))
    return str(data_dir), str(manual_dir), expected


def test_archive_names_are_the_builders():
    infos = tfds.builder_cls("speech_commands").url_infos
    assert sorted(adapter.ARCHIVES) == sorted(i.filename for i in infos.values())


def test_fake_archives_fail_the_official_checksums(fake_gsc, tmp_path):
    _, manual_dir, _ = fake_gsc
    with pytest.raises(Exception, match="has wrong checksum"):
        adapter.prepare(str(tmp_path / "tfds"), manual_dir=manual_dir)


def test_missing_pydub_is_explained(fake_gsc, tmp_path, monkeypatch):
    _, manual_dir, _ = fake_gsc
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "pydub" else find_spec(name)
    )
    with pytest.raises(ImportError, match=r"\[.pydub.\].*pip install .swr_keras\[kws\]."):
        adapter.prepare(str(tmp_path / "tfds"), manual_dir=manual_dir)


@pytest.mark.parametrize(
    "split, tfds_split",
    [("train", "train"), ("valid", "validation"), ("validation", "validation"), ("test", "test")],
)
def test_prepared_splits_hold_the_archive_clips(fake_gsc, split, tfds_split):
    data_dir, _, expected = fake_gsc
    expected = expected[tfds_split]
    dataset = adapter.waveform_dataset(split, data_dir)  # prepared: no manual_dir
    assert dataset.element_spec == (tf.TensorSpec([16000], tf.float32), tf.TensorSpec([], tf.int32))
    assert adapter.prepare(data_dir).info.splits[tfds_split].num_examples == len(expected)

    # Waveforms are compared bit for bit with samples / 32768.
    by_content = {waveform.tobytes(): clip for waveform, clip, _ in expected}
    assert len(by_content) == len(expected)
    got = []
    for waveform, label in dataset.as_numpy_iterator():
        clip = by_content.get(waveform.tobytes(), "<no clip with these samples>")
        got.append((clip, gsc2.CLASS_NAMES[label]))
    assert sorted(got) == sorted((clip, name) for _, clip, name in expected)


def test_short_clip_keeps_its_samples_and_is_zero_padded(fake_gsc):
    data_dir, _, _ = fake_gsc
    # no/0a7c2a8d_nohash_0.wav: 8000 samples starting -32768, 32767.
    (waveform,) = [
        w
        for w, label in adapter.waveform_dataset("train", data_dir).as_numpy_iterator()
        if gsc2.CLASS_NAMES[label] == "no"
    ]
    want = _samples(list(MAIN_CLIPS).index("no/0a7c2a8d_nohash_0.wav"), 8000)
    np.testing.assert_array_equal(waveform[:8000] * 32768, want)
    assert waveform[0] == -1.0 and waveform[1] == np.float32(32767 / 32768)
    assert np.all(waveform[8000:] == 0)


def test_build_pipeline_finishes_the_adapter_dataset(fake_gsc):
    data_dir, _, expected = fake_gsc
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 2 * SAMPLE_RATE)
    bank = augment.NoiseBank([noise.astype(np.float32)], ["noise"])
    dataset = pipeline.build_pipeline(
        adapter.waveform_dataset("train", data_dir),
        bank,
        "train",
        batch_size=4,
        shuffle=True,
        seed=0,
    )
    labels = []
    for inputs, batch_labels in dataset:
        assert inputs.shape[1] == 40 and inputs.shape[-1] == 1  # log-mel [B, 40, T, 1]
        assert np.all(np.isfinite(inputs.numpy()))
        labels += batch_labels.numpy().tolist()
    assert sorted(gsc2.CLASS_NAMES[i] for i in labels) == sorted(
        name for _, _, name in expected["train"]
    )
