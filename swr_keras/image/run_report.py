"""What an image job leaves behind: the shared `RunReport` with the encoded-image serving export."""

from swr_keras import run_report
from swr_keras.image import serving_export


class RunReport(run_report.RunReport):
    """The report of an image job (a `TransferJob` over `ImageData`).

    Arguments as the base class's; the recipe may point `job` at each
    method's job in turn, so that one table holds every method's row.
    """

    def export_serving(self, model, export_base):
        data = self.job.data
        return serving_export.export_serving(
            model,
            data.class_names,
            export_base,
            image_size=data.image_size,
            normalization=data.normalization,
            cropped=data.task.cropped,
        )
