"""What a KWS job leaves behind: the shared `RunReport` with the waveform serving export."""

import numpy as np

from swr_keras import run_report
from swr_keras.kws import serving_export, tasks

REPRESENTATIVE_EXAMPLES = run_report.REPRESENTATIVE_EXAMPLES


class RunReport(run_report.RunReport):
    """The report of a KWS job (`swr_keras.kws.job.Job`); arguments as the base class's."""

    def export_serving(self, model, export_base):
        corpus = self.job.corpus
        return serving_export.export_serving(
            model,
            corpus.class_names,
            export_base,
            clip_samples=corpus.clip_samples,
            sample_rate=corpus.sample_rate,
        )

    def task_metrics(self):
        corpus = self.job.corpus
        return {"clip_samples": int(corpus.clip_samples), "sample_rate": int(corpus.sample_rate)}

    def _representative_inputs(self):
        settings = self.job.settings
        return representative_inputs(self.job.corpus, settings.seed, settings.batch_size)


def representative_inputs(corpus, seed, batch_size):
    """Un-augmented training examples in a seeded order, for int8 calibration."""
    data = tasks.evaluation_dataset(corpus, "train", shuffle_seed=seed)
    batches = data.take(-(-REPRESENTATIVE_EXAMPLES // batch_size)).as_numpy_iterator()
    return np.concatenate([x for x, _ in batches])[:REPRESENTATIVE_EXAMPLES]
