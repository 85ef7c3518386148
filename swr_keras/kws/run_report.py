"""What a KWS job leaves behind: the shared `RunReport` with the waveform serving export."""

from swr_keras import run_report
from swr_keras.kws import serving_export


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
