"""Thin adapter from TFDS `speech_commands` to this package's element spec.

TFDS prepares the dataset from the two official archives; offline they must
already be in a manual directory:

    <manual_dir>/speech_commands_v0.02.tar.gz
    <manual_dir>/speech_commands_test_set_v0.02.tar.gz

Preparing needs the `pydub` and `importlib_resources` packages (TFDS's own
requirement for this builder, in requirements.txt; pydub reads the WAVs
without ffmpeg). TFDS checks the archives against the official checksums.
The adapter yields unbatched `(waveform float32 [16000], label int32)` in
`gsc2.CLASS_NAMES` order - the same spec as `pipeline.waveform_dataset` - so
`pipeline.build_pipeline` finishes it. TFDS splits differ from
`gsc2.list_gsc2`: `_unknown_` is not capped; silence is 1 s windows of the
background noise at a 0.5 s hop (`running_tap.wav` in validation, the other
recordings in train); test is the separate official test archive, so the
files named in `testing_list.txt` are in no split.
"""

import importlib.util
import os

import numpy as np
import tensorflow as tf

from swr_keras.data import gsc2
from swr_keras.optional import require

tfds = require("tensorflow_datasets", "kws", "Reading speech_commands through TFDS")

ARCHIVES = ("speech_commands_v0.02.tar.gz", "speech_commands_test_set_v0.02.tar.gz")
# TFDS's ClassLabel order: the 10 words, then silence, then unknown.
TFDS_LABELS = gsc2.KEYWORDS + (gsc2.SILENCE, gsc2.UNKNOWN)
_TO_CLASS = np.array([gsc2.CLASS_NAMES.index(n) for n in TFDS_LABELS], np.int32)
_SPLITS = {"train": "train", "valid": "validation", "validation": "validation", "test": "test"}


def prepare(data_dir, manual_dir=None):
    """Returns the prepared `speech_commands` builder, preparing it if needed.

    Args:
        data_dir: str, TFDS data directory.
        manual_dir: str, folder holding the two official archives; only
            needed when `data_dir` does not hold a prepared copy yet.

    Raises:
        FileNotFoundError: not prepared and the manual directory or an
            archive is missing (the message lists what to put where).
        ImportError: not prepared and `pydub` / `importlib_resources` are
            missing.
        NonMatchingChecksumError: (from TFDS) an archive is not the official
            one, e.g. a partial download.
    """
    builder = tfds.builder("speech_commands", data_dir=os.fspath(data_dir))
    if builder.is_prepared():
        return builder
    if manual_dir is None or not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"speech_commands is not prepared in {data_dir} and the manual "
            f"directory {manual_dir!r} does not exist. Download "
            f"{' and '.join(ARCHIVES)} from "
            "http://download.tensorflow.org/data/ into a folder and pass it "
            "as manual_dir."
        )
    missing = [a for a in ARCHIVES if not os.path.isfile(os.path.join(manual_dir, a))]
    if missing:
        raise FileNotFoundError(
            f"{manual_dir} lacks {missing}. Put the official archives there "
            "(names unchanged) or use gsc2.list_gsc2 on the extracted folder."
        )
    absent = [m for m in ("pydub", "importlib_resources") if importlib.util.find_spec(m) is None]
    if absent:
        raise ImportError(
            f"TFDS needs {absent} to prepare speech_commands: pip install 'swr_keras[kws]'"
        )
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def from_tfds_example(audio, label, clip_samples=16000):
    """Maps one TFDS example to `(waveform [clip_samples], class index)`.

    Args:
        audio: int16 tensor `[length]` (TFDS `Audio` feature).
        label: int tensor, TFDS class index (`TFDS_LABELS` order).
        clip_samples: int, length to zero-pad/crop to.
    """
    waveform = tf.cast(audio, tf.float32) / 32768.0
    waveform = tf.pad(waveform, [[0, tf.maximum(clip_samples - tf.shape(waveform)[0], 0)]])
    waveform = tf.ensure_shape(waveform[:clip_samples], [clip_samples])
    return waveform, tf.gather(tf.constant(_TO_CLASS), tf.cast(label, tf.int32))


def waveform_dataset(split, data_dir, manual_dir=None, shuffle_files=False):
    """Unbatched `(waveform [16000], label)` from TFDS `speech_commands`.

    Args:
        split: `"train"`, `"valid"` (or `"validation"`) or `"test"`.
        data_dir: str, TFDS data directory.
        manual_dir: str, see `prepare`.
        shuffle_files: bool, passed to TFDS.

    Returns:
        A `tf.data.Dataset`; classes in `gsc2.CLASS_NAMES` order.
    """
    if split not in _SPLITS:
        raise ValueError(f"Unknown split {split!r}; expected one of {sorted(_SPLITS)}")
    builder = prepare(data_dir, manual_dir)
    dataset = builder.as_dataset(
        split=_SPLITS[split], as_supervised=True, shuffle_files=shuffle_files
    )
    return dataset.map(from_tfds_example, num_parallel_calls=tf.data.AUTOTUNE)
