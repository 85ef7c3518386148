"""Loading a keyword model for detection: a `.keras` file or a SavedModel version.

`load_keyword_model` gives what the spotters need whatever the file: the
class names, a batched `log_mel -> scores` function, whether the scores are
already probabilities, the frames the model was exported for, and the Keras
model when there is one (a causal one can stream; any other runs in the
sliding window).
"""

import dataclasses
import json
import os

import keras
import tensorflow as tf

from swr_keras.kws.serving_export import LABELS_FILE
from swr_keras.model_walk import iter_layers
from swr_keras.models.causal_padding import CausalTimePadding
from swr_keras.streaming.spotters import SlidingWindowSpotter, StreamingSpotter, keras_predict

MANIFEST = "manifest.json"


@dataclasses.dataclass
class KeywordModel:
    """A loaded keyword model.

    Attributes:
        class_names: the names of its outputs.
        predict: `log_mel [batch, num_mel_bins, frames, 1]` -> scores.
        outputs_probabilities: `predict` returns probabilities (else logits).
        frames: the input frames it was exported for, or `None` if any.
        keras_model: the Keras model, or `None` for a SavedModel.
        saved_model: the loaded SavedModel (keeps its variables alive), or
            `None`.
    """

    class_names: list
    predict: object
    outputs_probabilities: bool
    frames: object
    keras_model: object
    saved_model: object = None

    @property
    def causal(self):
        return self.keras_model is not None and any(
            isinstance(layer, CausalTimePadding) for layer in iter_layers(self.keras_model)
        )

    def spotter(self, hop_frames, window_frames):
        """A `StreamingSpotter` for a causal Keras model, else a sliding window."""
        if self.causal:
            return StreamingSpotter(self.keras_model, hop_frames, window_frames)
        return SlidingWindowSpotter(
            self.predict,
            len(self.class_names),
            self.frames or window_frames,
            hop_frames,
            outputs_probabilities=self.outputs_probabilities,
        )


def load_keyword_model(path, labels=None):
    """Loads a `.keras` file or a SavedModel version directory from `recipes/kws.py`.

    Args:
        path: a `.keras` file, or a directory with `saved_model.pb` (its
            `log_mel` signature and `assets/labels.txt` are used).
        labels: class names; default the SavedModel's `labels.txt`, or the
            `class_names` of a `manifest.json` next to a `.keras` file.

    Raises:
        ValueError: the path is neither, or the class names are missing or
            do not match the outputs.
    """
    path = os.fspath(path)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        loaded = tf.saved_model.load(path)
        if "log_mel" not in loaded.signatures:
            raise ValueError(
                f"The SavedModel {path} has no 'log_mel' signature; export it with "
                "swr_keras.kws.serving_export.export_serving (recipes/kws.py does)."
            )
        signature = loaded.signatures["log_mel"]
        spec = signature.structured_input_signature[1]["log_mel"]
        if labels is None:
            with open(os.path.join(path, "assets", LABELS_FILE), encoding="utf-8") as file:
                labels = [line.rstrip("\n") for line in file if line.strip()]

        def predict(log_mel):
            return signature(log_mel=tf.constant(log_mel, tf.float32))["probabilities"].numpy()

        model = KeywordModel(list(labels), predict, True, int(spec.shape[2]), None, loaded)
        num_outputs = int(signature.structured_outputs["probabilities"].shape[-1])
    elif path.endswith(".keras") and os.path.isfile(path):
        import swr_keras  # noqa: F401  (registers the custom layers)

        keras_model = keras.saving.load_model(path, compile=False)
        if labels is None:
            manifest = os.path.join(os.path.dirname(path), MANIFEST)
            if not os.path.exists(manifest):
                raise ValueError(
                    f"No class names for {path}: pass --labels, or put a {MANIFEST} with "
                    "'class_names' next to it."
                )
            with open(manifest, encoding="utf-8") as file:
                labels = json.load(file)["class_names"]
        model = KeywordModel(list(labels), keras_predict(keras_model), False, None, keras_model)
        num_outputs = keras_model.output_shape[-1]
    else:
        raise ValueError(
            f"--model must be a .keras file or a SavedModel version directory. Received: {path}"
        )
    if len(model.class_names) != num_outputs:
        raise ValueError(
            f"{len(model.class_names)} class names for a model with {num_outputs} outputs."
        )
    return model
