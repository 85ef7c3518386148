"""From a listed corpus to batched `tf.data` pipelines.

A loader (`gsc2`, `mc_kws`, `multilingual`, ...) lists a corpus into
`ClipTable`s - plain Python/NumPy rows: file, label, speaker, and for silence
rows a fixed noise segment - after validating every WAV header. This module
turns the rows into datasets, always in the same order:

    map(decode, resample, pad/crop) -> cache -> shuffle -> batch
    -> map(batched augment [-> LogMel -> SpecAugment]) -> prefetch

Decoding and resampling run once (the cache holds 16 kHz float32 clips);
augmentation and features are recomputed per epoch, batched and vectorised.
`make_dataset(..., features=True)` yields `(log_mel [B, 40, T, 1], label)`
for training; `features=False` yields `(waveform [B, samples], label)` for
models that contain `LogMel` themselves (export-time tests).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from swr_keras.data import audio, augment
from swr_keras.data import features as features_lib
from swr_keras.data import resample as resample_lib

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class ClipTable:
    """The clips of one split of one source corpus.

    Args:
        paths: tuple of str, one WAV file per row; `""` for silence rows.
        labels: int32 array, class index per row.
        speakers: tuple of str, speaker per row (`""` for silence).
        sample_rate: int, the rate of the files (resampled to the corpus
            rate in-graph when different).
        noise_offsets: int64 array; for silence rows in evaluation splits,
            the absolute offset of a fixed segment in the corpus'
            `NoiseBank`, else -1 (the clip is zeros and, in training and
            validation, augmentation mixes fresh noise into it).
        noise_gains: float32 array, amplitude of that fixed segment.
        num_cropped: int, clips longer than the clip length.
        crop: how those are cropped in-graph, `"energy"` (highest-energy
            window) or `"start"`; see `audio.fit_length`.
        sample_format: `"pcm16"` or `"float"` (IEEE-float WAV files); see
            `audio.decode_wav_file`.
    """

    paths: tuple
    labels: np.ndarray
    speakers: tuple
    sample_rate: int
    noise_offsets: np.ndarray
    noise_gains: np.ndarray
    num_cropped: int = 0
    crop: str = "energy"
    sample_format: str = "pcm16"

    def __len__(self):
        return len(self.paths)


@dataclasses.dataclass(frozen=True)
class KwsCorpus:
    """A listed keyword-spotting corpus.

    Args:
        class_names: tuple of str; index 0 is `_silence_`, 1 `_unknown_`.
        splits: dict `"train" | "valid" | "test"` -> tuple of `ClipTable`
            (one per source corpus).
        noise_bank: `augment.NoiseBank` at `sample_rate`.
        clip_samples: int, length of every clip after pad/crop.
        sample_rate: int, the pipeline's rate (16 kHz).
    """

    class_names: tuple
    splits: dict
    noise_bank: augment.NoiseBank
    clip_samples: int
    sample_rate: int = 16000

    def class_counts(self, split):
        """Dict class name -> number of clips in `split`."""
        labels = np.concatenate([t.labels for t in self.splits[split]])
        counts = np.bincount(labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))


def silence_rows(count, label, sample_rate, noise_bank, clip_samples, rng, fixed_noise):
    """Builds `count` silence rows; `fixed_noise` pins a noise segment.

    Training and validation silence is zeros plus on-the-fly noise (the
    reference's zero clips); evaluation without augmentation needs the noise
    fixed in the rows, with amplitude U(0, 1) like the training silence.
    """
    if fixed_noise:
        offsets = noise_bank.fixed_segments(rng, count, clip_samples)
        gains = rng.random(count).astype(np.float32)
    else:
        offsets = np.full([count], -1, np.int64)
        gains = np.zeros([count], np.float32)
    return ClipTable(
        paths=("",) * count,
        labels=np.full([count], label, np.int32),
        speakers=("",) * count,
        sample_rate=sample_rate,
        noise_offsets=offsets,
        noise_gains=gains,
    )


def split_table(
    files,
    sample_rate,
    num_silence,
    noise_bank,
    clip_samples,
    rng,
    fixed_noise,
    num_cropped=0,
    crop="energy",
    sample_format="pcm16",
):
    """One split of one corpus: its listed clips plus `num_silence` silence rows.

    Args:
        files: list of `(path, label, speaker, ...)` rows.
        sample_rate: int, the rate of the files.
        num_silence: int, silence rows to add (label 0).
        noise_bank, clip_samples, rng, fixed_noise: see `silence_rows`.
        num_cropped, crop, sample_format: see `ClipTable`.
    """
    table = ClipTable(
        paths=tuple(r[0] for r in files),
        labels=np.array([r[1] for r in files], np.int32),
        speakers=tuple(r[2] for r in files),
        sample_rate=sample_rate,
        noise_offsets=np.full([len(files)], -1, np.int64),
        noise_gains=np.zeros([len(files)], np.float32),
        num_cropped=num_cropped,
        crop=crop,
        sample_format=sample_format,
    )
    silence = silence_rows(
        num_silence, 0, sample_rate, noise_bank, clip_samples, rng, fixed_noise=fixed_noise
    )
    return concat_tables([table, silence])


def concat_tables(tables):
    """Concatenates tables of the same sample rate and format into one."""
    rates = {t.sample_rate for t in tables}
    crops = {t.crop for t in tables if t.num_cropped}
    # Silence rows read no file, so their format does not count.
    formats = {t.sample_format for t in tables if any(t.paths)}
    if len(rates) != 1 or len(crops) > 1 or len(formats) > 1:
        raise ValueError(
            f"Tables differ in sample rate {sorted(rates)}, crop {sorted(crops)} "
            f"or sample format {sorted(formats)}"
        )
    return ClipTable(
        paths=sum((t.paths for t in tables), ()),
        labels=np.concatenate([t.labels for t in tables]).astype(np.int32),
        speakers=sum((t.speakers for t in tables), ()),
        sample_rate=rates.pop(),
        noise_offsets=np.concatenate([t.noise_offsets for t in tables]),
        noise_gains=np.concatenate([t.noise_gains for t in tables]),
        num_cropped=sum(t.num_cropped for t in tables),
        crop=crops.pop() if crops else tables[0].crop,
        sample_format=formats.pop() if formats else tables[0].sample_format,
    )


def _table_dataset(table, corpus, order):
    flat = corpus.noise_bank.tensors()[0]
    clip_samples = corpus.clip_samples
    target_rate = corpus.sample_rate

    def load(path, label, offset, gain):
        def from_file():
            waveform = audio.decode_wav_file(path, table.sample_format)
            waveform = resample_lib.resample(waveform, table.sample_rate, target_rate)
            return audio.fit_length(waveform, clip_samples, table.crop)

        def silence():
            segment = tf.slice(flat, [tf.maximum(offset, 0)], [clip_samples])
            return tf.where(offset >= 0, gain, 0.0) * segment

        waveform = tf.cond(tf.strings.length(path) > 0, from_file, silence)
        return tf.ensure_shape(waveform, [clip_samples]), label

    columns = (
        np.asarray(table.paths, dtype=object)[order].astype(str),
        table.labels[order],
        table.noise_offsets[order],
        table.noise_gains[order],
    )
    return tf.data.Dataset.from_tensor_slices(columns).map(
        load, num_parallel_calls=tf.data.AUTOTUNE
    )


def waveform_dataset(corpus, split, seed=None):
    """Unbatched `(waveform [clip_samples], label)` of one split.

    Args:
        corpus: a `KwsCorpus`.
        split: `"train"`, `"valid"` or `"test"`.
        seed: optional int; if given, rows (and the tables of several
            sources) are permuted once with it, so the cache is not sorted by
            class or language and a bounded shuffle buffer mixes them;
            `None` keeps the listing order, table after table.

    Returns:
        A `tf.data.Dataset`.
    """
    if split not in corpus.splits:
        raise ValueError(f"Unknown split {split!r}; expected one of {sorted(corpus.splits)}")
    datasets = []
    for index, table in enumerate(corpus.splits[split]):
        order = np.arange(len(table))
        if seed is not None:
            order = np.random.default_rng([seed, index]).permutation(len(table))
        datasets.append(_table_dataset(table, corpus, order))
    if len(datasets) == 1:
        return datasets[0]
    sources = np.repeat(np.arange(len(datasets)), [len(t) for t in corpus.splits[split]])
    if seed is not None:
        # Interleave the sources (e.g. English and Mandarin) in a seeded
        # random order, so a bounded shuffle buffer still mixes them.
        sources = np.random.default_rng([seed, len(datasets)]).permutation(sources)
    return tf.data.Dataset.choose_from_datasets(
        datasets, tf.data.Dataset.from_tensor_slices(sources.astype(np.int64))
    )


def make_dataset(
    corpus,
    split,
    batch_size=100,
    features=True,
    augment_mode=None,
    spec_augment=None,
    shuffle=None,
    seed=0,
    cache=True,
    shuffle_buffer=10000,
    drop_remainder=False,
    log_mel=None,
):
    """The batched pipeline for one split of a listed corpus.

    Args:
        corpus: a `KwsCorpus`.
        split: `"train"`, `"valid"` or `"test"`.
        batch_size: int.
        features: bool; `True` yields log-mel `[B, 40, T, 1]`, `False`
            yields waveforms `[B, clip_samples]`.
        augment_mode: `"train"`, `"valid"` or `"test"` augmentation policy;
            defaults to `split`.
        spec_augment: bool; defaults to `augment_mode == "train"`. Needs
            `features=True`.
        shuffle: bool; defaults to `split == "train"`.
        seed: int, seeds row order, shuffling and augmentation.
        cache: `True` (memory), a file path prefix, or `False`.
        shuffle_buffer: int, bound of the shuffle buffer (rows are also
            permuted once before the cache).
        drop_remainder: bool, passed to `batch`.
        log_mel: optional `LogMel` layer; default `LogMel()` at the corpus
            rate.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels)` with int32 labels.

    Example:

    >>> corpus = gsc2.list_gsc2("/data/speech_commands_v0.02")
    >>> train = make_dataset(corpus, "train", batch_size=100)
    >>> test = make_dataset(corpus, "test", features=False)
    """
    shuffle = split == "train" if shuffle is None else shuffle
    waveforms = waveform_dataset(corpus, split, seed=seed if shuffle else None)
    return build_pipeline(
        waveforms,
        corpus.noise_bank,
        split if augment_mode is None else augment_mode,
        batch_size=batch_size,
        features=features,
        spec_augment=spec_augment,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
        drop_remainder=drop_remainder,
        log_mel=log_mel,
        sample_rate=corpus.sample_rate,
    )


def build_pipeline(
    waveforms,
    noise_bank,
    augment_mode,
    batch_size=100,
    features=True,
    spec_augment=None,
    shuffle=False,
    seed=0,
    cache=True,
    shuffle_buffer=10000,
    drop_remainder=False,
    log_mel=None,
    sample_rate=16000,
):
    """cache -> shuffle -> batch -> batched augment/features -> prefetch.

    The second half of `make_dataset`, for any unbatched dataset of
    `(waveform [samples], int32 label)` with `_silence_` as label 0 (e.g.
    `tfds_speech_commands.waveform_dataset`). Arguments as in
    `make_dataset`; `noise_bank` is an `augment.NoiseBank`.
    """
    spec_augment = augment_mode == "train" if spec_augment is None else spec_augment
    if spec_augment and not features:
        raise ValueError("spec_augment=True needs features=True.")
    if features and log_mel is None:
        log_mel = features_lib.LogMel(sample_rate=sample_rate)
    dataset = waveforms
    if cache:
        dataset = dataset.cache("" if cache is True else cache)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    # One fresh seed pair per batch and per epoch, reproducible from `seed`.
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))

    def transform(batch, batch_seed):
        waveforms, labels = batch
        wave_seed, spec_seed = tf.unstack(tf.random.experimental.stateless_split(batch_seed, num=2))
        waveforms = augment.augment_waveforms(
            waveforms, labels, wave_seed, noise_bank, mode=augment_mode, sample_rate=sample_rate
        )
        if not features:
            return waveforms, labels
        inputs = log_mel(waveforms)
        if spec_augment:
            inputs = augment.spec_augment(inputs, spec_seed)
        return inputs, labels

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
