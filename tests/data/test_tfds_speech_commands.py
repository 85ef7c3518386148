"""The TFDS adapter, tested offline (no download is attempted)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from swr_keras.data import gsc2, tfds_speech_commands as adapter


def test_missing_manual_dir_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="speech_commands_v0.02.tar.gz"):
        adapter.prepare(str(tmp_path / "tfds"), manual_dir=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="manual directory None"):
        adapter.waveform_dataset("train", str(tmp_path / "tfds"))


def test_manual_dir_without_archives(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "speech_commands_v0.02.tar.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError,
                       match=r"lacks \['speech_commands_test_set_v0.02.tar.gz'\]"):
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
