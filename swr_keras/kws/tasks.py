"""The keyword-spotting tasks of the paper and where their data lives.

A data directory holds `gsc2/` (Speech Commands v0.02 layout) and `mc_kws/`
(MC-KWS layout), exactly what `swr_keras.data.synthetic` writes. Without one,
a synthetic default corpus is generated into a cache directory on first use
(`$SWR_KERAS_CACHE`, else `~/.cache/swr_keras`): pre-training uses the one
the shipped backbone learnt from, transfer a second one of other speakers
(the English ones with an American accent).

Tasks: `"gsc2"` (12-way English, 1 s clips), `"mc_kws"` (12-way Mandarin,
2.24 s), `"multilingual"` (their 22-class union, for pre-training) and
`"folder"` (your own keywords: the data directory is one folder of WAVs per
keyword, see `swr_keras.data.keyword_folder`). Each task is one entry of
`_LISTERS`; a new task is a new entry.
"""

import dataclasses
import os

import tensorflow as tf

from swr_keras.data import gsc2, keyword_folder, mc_kws, multilingual, pipeline, synthetic

FOLDER = "folder"
CACHE_ENV = "SWR_KERAS_CACHE"


def synthetic_unknown_caps(synthetic_corpus, task):
    """`_unknown_` clips per split (train, valid, test) of a default corpus's task.

    One keyword's count per split (`synthetic.split_plan`), as the
    reference's caps (3077/371/408) are on the real GSC2: GSC2 160/20/20 and
    MC-KWS 100/24/24 on `"pretraining"`. Uncapped, the 10 "unknown" words of
    the synthetic GSC2 and the 8 of MC-KWS would make up 45 % of every split,
    and a model that answers `_unknown_` to everything would score 45 %.
    """
    return synthetic.split_plan(synthetic_corpus)[task].unknown_caps


def default_cache_dir():
    """`$SWR_KERAS_CACHE`, else `~/.cache/swr_keras`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "swr_keras")


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where a task's corpora are.

    Args:
        gsc2_dir: the Speech Commands v0.02 directory.
        mc_kws_dir: the MC-KWS directory.
        synthetic: True for the generated default corpus, whose Mandarin
            keywords always sit at the start of their clips.
        folder_dir: the keyword folder of the `"folder"` task, else `""`.
        synthetic_corpus: which default corpus (`synthetic.DEFAULT_CORPORA`)
            a synthetic source is; it sets the `_unknown_` caps.
    """

    gsc2_dir: str
    mc_kws_dir: str
    synthetic: bool
    folder_dir: str = ""
    synthetic_corpus: str = "transfer"

    @property
    def mc_kws_crop(self):
        return "start" if self.synthetic else "energy"


def resolve_data_dir(
    data_dir=None, cache_dir=None, num_workers=2, synthetic_corpus="transfer", task=None
):
    """The `DataSource` of `data_dir`, or of a default synthetic corpus.

    Args:
        data_dir: a directory with `gsc2/` and `mc_kws/`; `None` or `""`
            generates (once) and uses the synthetic corpus `synthetic_corpus`.
            For `task="folder"`, the keyword folder itself (required).
        cache_dir: where the synthetic corpus goes; default
            `default_cache_dir()`.
        num_workers: parallel eSpeak NG processes for the first generation.
        synthetic_corpus: which default corpus stands in for a missing
            `data_dir`: `"transfer"` (the downstream tasks) or
            `"pretraining"` (what the shipped backbone learnt from); see
            `synthetic.DEFAULT_CORPORA`.
        task: the task the data is for; only `"folder"` changes the rules.

    Raises:
        FileNotFoundError: `data_dir` or its `gsc2/` folder is missing.
        ValueError: `task="folder"` without a `data_dir`.
    """
    if task == FOLDER:
        if not data_dir:
            raise ValueError(
                "--task=folder needs --data_dir=DIR, a folder with one sub-folder of WAV "
                "files per keyword (README, 'Your own keywords')."
            )
        folder = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"--data_dir={folder} does not exist.")
        return DataSource("", "", synthetic=False, folder_dir=folder)
    if not data_dir:
        paths = synthetic.ensure_default_corpus(
            cache_dir or default_cache_dir(), num_workers=num_workers, corpus=synthetic_corpus
        )
        return DataSource(
            paths.gsc2, paths.mc_kws, synthetic=True, synthetic_corpus=synthetic_corpus
        )
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"--data_dir={data_dir} does not exist. Point it at a folder with gsc2/ and "
            "mc_kws/ (see BUILD.md), or leave it empty for the synthetic corpus."
        )
    gsc2_dir = os.path.join(data_dir, "gsc2")
    if not os.path.isdir(gsc2_dir):
        raise FileNotFoundError(
            f"{data_dir} has no gsc2/ folder (Speech Commands v0.02, which also holds "
            "the background noise of every task). Put or link it there."
        )
    return DataSource(gsc2_dir, os.path.join(data_dir, "mc_kws"), synthetic=False)


def _source_options(source):
    gsc2_options, mc_kws_options = {}, {"crop": source.mc_kws_crop}
    if source.synthetic:
        gsc2_options["unknown_caps"] = synthetic_unknown_caps(source.synthetic_corpus, "gsc2")
        mc_kws_options["unknown_caps"] = synthetic_unknown_caps(source.synthetic_corpus, "mc_kws")
    return gsc2_options, mc_kws_options


def _require_mc_kws(task, source):
    if not os.path.isdir(source.mc_kws_dir):
        raise FileNotFoundError(
            f"Task {task!r} needs MC-KWS at {source.mc_kws_dir}; put or link it there."
        )


def _list_gsc2(source, seed, clip_seconds=None):
    options = _source_options(source)[0]
    if clip_seconds is not None:
        options["clip_seconds"] = clip_seconds
    return gsc2.list_gsc2(source.gsc2_dir, seed=seed, **options)


def _list_mc_kws(source, seed, clip_seconds=None):
    _require_mc_kws("mc_kws", source)
    noise_dir = os.path.join(source.gsc2_dir, gsc2.NOISE_DIR)
    options = _source_options(source)[1]
    return mc_kws.list_mc_kws(
        source.mc_kws_dir, noise_dir, seed=seed, clip_seconds=clip_seconds, **options
    )


def _list_multilingual(source, seed):
    _require_mc_kws("multilingual", source)
    gsc2_options, mc_kws_options = _source_options(source)
    return multilingual.list_multilingual(
        source.gsc2_dir,
        source.mc_kws_dir,
        seed=seed,
        gsc2_options=gsc2_options,
        mc_kws_options=mc_kws_options,
    )


def _list_folder(source, seed, clip_seconds=None, unknown_words=()):
    # The training seed is not passed on: the folder's split and its fixed test
    # silence stay the same across seeds, so seeds are compared on the same clips.
    del seed
    return keyword_folder.list_keyword_folder(
        source.folder_dir,
        clip_seconds=1.0 if clip_seconds is None else clip_seconds,
        unknown_words=unknown_words,
    )


_LISTERS = {
    "gsc2": _list_gsc2,
    "mc_kws": _list_mc_kws,
    "multilingual": _list_multilingual,
    FOLDER: _list_folder,
}
TASKS = tuple(_LISTERS)
# Options a task takes beyond the source and seed (`list_task(**options)`).
TASK_OPTIONS = {
    "gsc2": ("clip_seconds",),
    "mc_kws": ("clip_seconds",),
    "multilingual": (),
    FOLDER: ("clip_seconds", "unknown_words"),
}


def list_task(task, source, seed=0, **options):
    """Lists the corpus of `task` into a `pipeline.KwsCorpus`.

    Args:
        task: one of `TASKS`.
        source: a `DataSource`.
        seed: seeds the unknown subsets, speaker split and test silence
            (not the `"folder"` task's, which depend on the file names only).
        **options: the task's `TASK_OPTIONS`: `clip_seconds` (float, default
            the task's: 1 s, MC-KWS's mapping, 1 s for a folder) and, for
            `"folder"`, `unknown_words` (folders that form `_unknown_`).
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}. Choose one of {', '.join(TASKS)}.")
    unexpected = sorted(set(options) - set(TASK_OPTIONS[task]))
    if unexpected:
        raise ValueError(
            f"Task {task!r} takes no option {', '.join(unexpected)}. Received: {options}"
        )
    return _LISTERS[task](source, seed, **options)


def num_batches(corpus, split, batch_size, drop_remainder=False):
    """Batches per pass over `split`."""
    rows = sum(len(table) for table in corpus.splits[split])
    return rows // batch_size if drop_remainder else -(-rows // batch_size)


def epoch_datasets(corpus, *, batch_size, seed, first_epoch, epochs, augment=True, features=True):
    """Training batches of epochs `first_epoch .. epochs - 1`, one stream.

    Each epoch's order and augmentation are a function of `(seed, epoch)`
    only, so a run resumed at epoch k sees exactly the batches an
    uninterrupted run saw from epoch k on. Decoded clips are cached once and
    shared by the epochs. Use with `steps_per_epoch=num_batches(...,
    drop_remainder=True)`: full batches only, so every epoch has the same
    number of steps.
    """
    waveforms = pipeline.waveform_dataset(corpus, "train", seed=seed).cache()
    rows = sum(len(table) for table in corpus.splits["train"])
    per_epoch = [
        pipeline.build_pipeline(
            waveforms,
            corpus.noise_bank,
            "train" if augment else "test",
            batch_size=batch_size,
            features=features,
            shuffle=True,
            seed=seed * 100003 + epoch,
            cache=False,
            shuffle_buffer=rows,
            drop_remainder=True,
            sample_rate=corpus.sample_rate,
            spec_augment=augment and features,
        )
        for epoch in range(first_epoch, epochs)
    ]
    stream = per_epoch[0]
    for dataset in per_epoch[1:]:
        stream = stream.concatenate(dataset)
    return stream.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(corpus, split, *, batch_size=100, features=True, shuffle_seed=None):
    """Batches of `split` without training augmentation, in listing order.

    Training and validation silence clips, stored as zeros, get seeded
    background noise; test clips are used as they are. `shuffle_seed` permutes the
    rows once (e.g. a class-balanced sample of the first batches).
    """
    return pipeline.make_dataset(
        corpus,
        split,
        batch_size=batch_size,
        features=features,
        augment_mode="test" if split == "test" else "valid",
        spec_augment=False,
        shuffle=shuffle_seed is not None,
        seed=0 if shuffle_seed is None else shuffle_seed,
    )


def multilingual_class_names(mapping_path=mc_kws.DEFAULT_MAPPING):
    """The 22 classes of the multi-lingual union, without listing any audio."""
    return gsc2.CLASS_NAMES + tuple(mc_kws.load_mapping(mapping_path)["known"])
