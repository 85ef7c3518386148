"""A bank task as its deployable model, and the per-task exports made from it.

`materialize` rebuilds a task's model the way its method does
(`Method.restore` on the bank's backbone with a classifier of the task's
size): for the methods that deploy merged (SWR, TAPS, LoRA, the
fine-tune baselines) a plain model, bit-identical to what `kws.py` exported
for the task; for the baselines with extra modules, the model with them.
The per-task exports reuse `swr_keras.kws.serving_export` and
`swr_keras.kws.tflite_export`.
"""

import os

from swr_keras import methods as methods_lib
from swr_keras.kws import serving_export, tflite_export
from swr_keras.models import task_model as task_model_lib


def materialize(bank, name, backbone=None):
    """The deployable Keras model of task `name` (log-mel in, logits out).

    Args:
        bank: a `TaskBank`.
        name: the task.
        backbone: the bank's backbone, loaded (`bank.load_backbone()`), to
            skip loading it once per task; it is not modified.
    """
    entry = bank.entry(name)
    stored = bank.stored_task(name)
    if backbone is None:
        backbone = bank.load_backbone()
    base = task_model_lib.with_new_classifier(backbone, len(entry.class_names))
    return methods_lib.get(entry.method).restore(base, stored)


def export_task_serving(bank, name, export_base, *, version=None, backbone=None):
    """Task `name`'s model as a TF Serving SavedModel `export_base/<version>/`
    (`serving_export.export_serving`: waveform and `log_mel` signatures); returns its path."""
    entry = bank.entry(name)
    return serving_export.export_serving(
        materialize(bank, name, backbone),
        entry.class_names,
        export_base,
        clip_samples=entry.clip_samples,
        sample_rate=entry.sample_rate,
        version=version,
    )


def export_task_tflite(bank, name, output_dir, representative_inputs, *, backbone=None):
    """Task `name`'s float and int8 TFLite files `<output_dir>/<name>_{float,int8}.tflite`
    (`tflite_export.export_tflite`, calibrated on `representative_inputs`)."""
    return tflite_export.export_tflite(
        materialize(bank, name, backbone),
        os.fspath(output_dir),
        representative_inputs,
        name=name,
    )
