"""The KWS transfer job: `swr_keras.transfer_job.TransferJob` over a keyword-spotting corpus.

`KwsData` is what a KWS task gives the task-agnostic job (log-mel batches of
a `KwsCorpus`); `Job` keeps the corpus at hand for the KWS exports.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from swr_keras.atomic_io import file_sha256  # noqa: F401  the harness hashes its inputs with it
from swr_keras.kws import tasks
from swr_keras.transfer_job import (  # noqa: F401  re-exported for the KWS recipes and tests
    ABLATIONS,
    CHECKPOINT_VERSION,
    CONTROLLABILITY_COSTS,
    POLICY_SEARCH_SETTINGS,
    Settings,
    TaskData,
    TransferJob,
    check_ablations,
)


class KwsData(TaskData):
    """A `KwsCorpus` (`tasks.list_task`) as a job's `TaskData`: log-mel batches."""

    def __init__(self, corpus):
        self.corpus = corpus
        self.class_names = corpus.class_names

    def num_train_batches(self, batch_size):
        return tasks.num_batches(self.corpus, "train", batch_size, drop_remainder=True)

    def training_batches(self, *, batch_size, seed, first_epoch, epochs, augment):
        return tasks.epoch_datasets(
            self.corpus,
            batch_size=batch_size,
            seed=seed,
            first_epoch=first_epoch,
            epochs=epochs,
            augment=augment,
        )

    def evaluation_batches(self, split, *, batch_size):
        return tasks.evaluation_dataset(self.corpus, split, batch_size=batch_size)

    def representative_inputs(self, count, *, seed):
        """Un-augmented training examples in a seeded order."""
        data = tasks.evaluation_dataset(self.corpus, "train", shuffle_seed=seed)
        batches = data.take(-(-count // 100))  # evaluation batches hold 100 clips
        return np.concatenate([x for x, _ in batches.as_numpy_iterator()])[:count]


class Job(TransferJob):
    """One KWS task, one pre-trained model, one method; trains and evaluates.

    Args:
        corpus: the task's `KwsCorpus` (`tasks.list_task`).
        pretrained: the pre-trained multi-lingual task model.
        settings, work_dir, identity, verbose, strategy, validation_curve: as
            `TransferJob`.
    """

    def __init__(
        self,
        corpus,
        pretrained,
        settings,
        work_dir,
        identity=(),
        verbose=2,
        strategy=None,
        validation_curve=False,
    ):
        self.corpus = corpus
        # The corpus' contents are part of every job's identity, so a changed
        # corpus never resumes a checkpoint trained on another.
        identity = (*identity, f"corpus={corpus_digest(corpus)}")
        super().__init__(
            KwsData(corpus),
            pretrained,
            settings,
            work_dir,
            identity,
            verbose,
            strategy,
            validation_curve,
        )


def job_identity(task, backbone, tau, pretrained_path, source=None, task_options=None):
    """What makes stage 1 of two KWS jobs different beyond their `Settings`.

    Identified by contents, not paths: the pre-trained file's SHA-256 (a
    model saved again over the same path is another model; the same model
    copied elsewhere is the same). The task's data enter through `Job`, which
    adds its corpus listing's digest (`corpus_digest`) to every identity, so
    a changed corpus never resumes another corpus' checkpoint.

    Args:
        task: the task name (`tasks.TASKS`).
        backbone, tau: the backbone's architecture.
        pretrained_path: the pre-trained `.keras` file.
        source: the `tasks.DataSource`; unused (the corpus listing stands
            for it), kept for the callers' signature.
        task_options: the `tasks.list_task` options given (e.g. `clip_seconds`).
    """
    del source
    identity = (task, backbone, tau, f"pretrained_sha256={file_sha256(pretrained_path)}")
    return identity + tuple(
        f"{name}={value}" for name, value in sorted((task_options or {}).items())
    )


def corpus_digest(corpus):
    """A digest of a `KwsCorpus` listing: what a job trains and evaluates on.

    Every split's every `ClipTable` field (labels, speakers, noise offsets and
    gains, crop, ...), each clip's path relative to the corpus' common root
    and its size in bytes, the class names, clip length and rate, and the
    noise bank's samples (names are file names, not paths). Sizes, not
    contents: hashing every clip would read the whole corpus in every process
    (`du -sh` of synthetic_kws_transfer_v1: 129 MB GSC2, 577 MB MC-KWS),
    while one `stat` per file takes 0.2 s per listing (BUILD.md); a clip
    rewritten with the same name and the same length goes
    unnoticed (a regenerated corpus is written under a new name, with new
    speakers in the file names). Relative paths: the same corpus moved or
    copied keeps its digest.
    """
    paths = [p for tables in corpus.splits.values() for t in tables for p in t.paths if p]
    # The parent of every clip's folder, so that a relative path keeps its class folder.
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    digest = hashlib.sha256()

    def add(value):
        digest.update(json.dumps(value, default=str).encode())
        digest.update(b"\n")

    add([list(corpus.class_names), corpus.clip_samples, corpus.sample_rate])
    for split in sorted(corpus.splits):
        for table in corpus.splits[split]:
            add(split)
            for field in dataclasses.fields(table):
                value = getattr(table, field.name)
                if field.name == "paths":
                    value = [
                        [os.path.relpath(p, root), os.path.getsize(p)] if p else ["", -1]
                        for p in value
                    ]
                elif isinstance(value, np.ndarray):
                    add([field.name, value.dtype.str, value.shape])
                    digest.update(np.ascontiguousarray(value).tobytes())
                    continue
                add([field.name, value])
    noise = corpus.noise_bank
    if noise is not None:
        add(["noise", list(noise.names)])
        digest.update(np.ascontiguousarray(noise.flat, np.float32).tobytes())
    return digest.hexdigest()[:16]
