"""The KWS transfer job: `swr_keras.transfer_job.TransferJob` over a keyword-spotting corpus.

`KwsData` is what a KWS task gives the task-agnostic job (log-mel batches of
a `KwsCorpus`); `Job` keeps the corpus at hand for the KWS exports.
"""

import numpy as np

from swr_keras.kws import tasks
from swr_keras.transfer_job import (  # noqa: F401  re-exported for the KWS recipes and tests
    CHECKPOINT_VERSION,
    CONTROLLABILITY_COSTS,
    Settings,
    TaskData,
    TransferJob,
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
        settings, work_dir, identity, verbose, strategy: as `TransferJob`.
    """

    def __init__(
        self, corpus, pretrained, settings, work_dir, identity=(), verbose=2, strategy=None
    ):
        self.corpus = corpus
        super().__init__(
            KwsData(corpus), pretrained, settings, work_dir, identity, verbose, strategy
        )
