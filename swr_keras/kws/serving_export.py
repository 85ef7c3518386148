"""TF Serving export of a merged keyword spotter: a versioned SavedModel.

`export_serving` writes a SavedModel that takes raw 16 kHz waveforms (the
`LogMel` front end is inside, so serving computes exactly the training
features) and returns probabilities, class ids and labels. The checks shared
with the TFLite export live here too: both refuse a reparametrised model
(call `swr_keras.merge` first, so the artefact holds plain convolutions and
costs what the backbone costs).
"""

import os
import re
import shutil
import tempfile
import uuid

import tensorflow as tf

from swr_keras.data.features import LogMel
from swr_keras.model_walk import reparam_layers
from swr_keras.validation import check_built, check_positive_int, shape_fits

LABELS_FILE = "labels.txt"
_VERSION_NAME = re.compile(r"[0-9]+")


def export_serving(
    model, class_names, export_base, *, clip_samples=16000, sample_rate=16000, version=None
):
    """Writes `model` as version `export_base/<version>/` for TF Serving.

    The SavedModel has two signatures, both returning `probabilities`
    (float32 `[batch, num_classes]`, the softmax of the logits), `class_id`
    (int64 `[batch]`, the argmax) and `label` (string `[batch]`, the class
    name):

    - `serving_default`: `waveform`, float32 `[batch, clip_samples]`, raw
      audio at `sample_rate` in [-1, 1]; the features are computed by
      `LogMel(sample_rate=sample_rate)`, the layer the training pipeline uses.
    - `log_mel`: `log_mel`, float32 `[batch, num_mel_bins, frames, 1]`, for
      clients that compute the features themselves.

    The class names are also written to `assets/labels.txt`, one per line.
    The version is written into a temporary sibling directory whose name TF
    Serving skips (it loads only directories named by an integer) and renamed
    into place when complete, so a server polling `export_base` never sees a
    half-written version, and a failed export leaves nothing behind.

    Args:
        model: a plain Keras model, log-mel `[batch, num_mel_bins, frames, 1]`
            -> logits `[batch, num_classes]` (e.g. `swr_keras.merge(...)`).
        class_names: `num_classes` names, in the order of the logits.
        export_base: the model's base path, e.g. `saved_models/kws_gsc2`.
        clip_samples: samples per request (a fixed length).
        sample_rate: sample rate of the waveforms in Hz.
        version: the version number; default one more than the largest
            numbered version in `export_base` (1 if none).

    Returns:
        The path of the version directory.
    """
    check_plain_model(model)
    check_positive_int("clip_samples", clip_samples)
    front_end = LogMel(sample_rate=sample_rate)
    features_shape = tuple(front_end.compute_output_shape((None, clip_samples))[1:])
    num_classes = check_model_shapes(model, features_shape)
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes or not all(
        name and "\n" not in name for name in class_names
    ):
        raise ValueError(
            f"class_names must hold {num_classes} non-empty one-line names, one "
            f"per model output. Received: class_names={class_names!r}"
        )
    os.makedirs(export_base, exist_ok=True)
    if version is None:
        version = 1 + max(existing_versions(export_base), default=0)
    check_positive_int("version", version)
    final_dir = os.path.join(export_base, str(version))
    if os.path.lexists(final_dir):
        raise FileExistsError(f"Version {version} already exists: {final_dir}")

    # Not a number, so TF Serving ignores it while it is being written;
    # os.mkdir (unlike tempfile.mkdtemp's 0700) keeps the umask's permissions.
    temp_dir = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex}")
    os.mkdir(temp_dir)
    try:
        with tempfile.TemporaryDirectory() as labels_dir:
            labels_path = os.path.join(labels_dir, LABELS_FILE)
            with open(labels_path, "w", encoding="utf-8") as file:
                file.write("\n".join(class_names) + "\n")
            module = _serving_module(
                model, front_end, class_names, clip_samples, features_shape, labels_path
            )
            tf.saved_model.save(
                module,
                temp_dir,
                signatures={
                    "serving_default": module.serving_default,
                    "log_mel": module.log_mel,
                },
            )
        os.rename(temp_dir, final_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return final_dir


def _serving_module(model, front_end, class_names, clip_samples, features_shape, labels_path):
    labels = tf.constant(class_names)

    def predictions(log_mel):
        logits = tf.cast(model(log_mel, training=False), tf.float32)
        class_id = tf.argmax(logits, axis=-1)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "class_id": class_id,
            "label": tf.gather(labels, class_id),
        }

    def from_waveform(waveform):
        return predictions(front_end(waveform))

    module = function_module(
        "keyword_spotter",
        serving_default=tf.function(
            from_waveform,
            input_signature=[tf.TensorSpec([None, clip_samples], tf.float32, name="waveform")],
        ),
        log_mel=tf.function(
            predictions,
            input_signature=[tf.TensorSpec((None,) + features_shape, tf.float32, name="log_mel")],
        ),
    )
    module.labels_file = tf.saved_model.Asset(labels_path)
    return module


def function_module(name, **functions):
    """A `tf.Module` holding `functions` and the variables they read.

    Like `keras.export.ExportArchive`, it tracks the `tf.Variable`s the
    traced functions capture rather than the Keras model and its
    `keras.Variable` wrappers. With the wrappers tracked, the TFLite
    converter kept every weight as a resource variable (READ_VARIABLE ops)
    instead of freezing it, and int8 calibration failed on them.
    """
    module = tf.Module(name=name)
    captured = {}
    for function_name, function in functions.items():
        setattr(module, function_name, function)
        for variable in function.get_concrete_function().variables:
            captured[id(variable)] = variable
    module.captured_variables = list(captured.values())
    return module


def existing_versions(export_base):
    """The version numbers TF Serving would see in `export_base`."""
    if not os.path.isdir(export_base):
        return []
    return [int(name) for name in os.listdir(export_base) if _VERSION_NAME.fullmatch(name)]


def check_plain_model(model):
    """Raises `ValueError` if `model` still holds reparametrised layers."""
    check_built(model)
    if reparam_layers(model):
        raise ValueError(
            f"Model '{model.name}' still contains reparametrised layers. Export "
            "the plain model returned by swr_keras.merge(model)."
        )


def check_model_shapes(model, features_shape):
    """Checks that `model` takes `[batch, *features_shape]`; returns its classes."""
    expected = tuple(model.input_shape[1:])
    if not shape_fits(expected, features_shape):
        raise ValueError(
            f"Model '{model.name}' takes inputs {expected}, but the exported "
            f"features have shape {tuple(features_shape)}. Export with the "
            "clip length (or feature shape) the model was built for."
        )
    return model.output_shape[-1]
