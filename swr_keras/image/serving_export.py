"""TF Serving export of a merged image classifier: encoded JPEG/PNG bytes in.

`export_serving` writes a versioned SavedModel whose default signature takes
what TF Serving image models take, a batch of encoded images (the input is
named `image_bytes`, so TF Serving's REST API accepts `{"b64": ...}`), and
runs the evaluation preprocessing inside (`image_preprocessing.
serving_images`: decode, resize, centre crop, normalise), so serving sees
exactly what evaluation saw.
"""

import os
import shutil
import tempfile
import uuid

import tensorflow as tf

from swr_keras.data import image_preprocessing
from swr_keras.kws.serving_export import (
    LABELS_FILE,
    check_model_shapes,
    check_plain_model,
    existing_versions,
    function_module,
)
from swr_keras.validation import check_positive_int


def export_serving(
    model,
    class_names,
    export_base,
    *,
    image_size,
    normalization="imagenet",
    cropped=False,
    version=None,
):
    """Writes `model` as version `export_base/<version>/` for TF Serving.

    Two signatures, both returning `probabilities` (float32 `[batch,
    num_classes]`), `class_id` (int64 `[batch]`) and `label` (string
    `[batch]`):

    - `serving_default`: `image_bytes`, string `[batch]`, each an encoded
      JPEG, PNG, GIF or BMP image of any size;
    - `images`: `images`, float32 `[batch, image_size, image_size, 3]`,
      already preprocessed, for clients that do it themselves.

    The class names also go to `assets/labels.txt`. The version is written
    under a temporary name TF Serving ignores and renamed when complete.

    Args:
        model: a plain Keras model, normalised images -> logits.
        class_names: one name per logit.
        export_base: the model's base path, e.g. `saved_models/sketch_swr`.
        image_size: the model's input height and width.
        normalization: the input convention the model was trained with.
        cropped: the evaluation preprocessing's `cropped` variant (Cars, CUB).
        version: the version number; default one more than the largest.

    Returns:
        The path of the version directory.
    """
    check_plain_model(model)
    check_positive_int("image_size", image_size)
    image_preprocessing.check_normalization(normalization)
    num_classes = check_model_shapes(model, (image_size, image_size, 3))
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes or not all(
        name and "\n" not in name for name in class_names
    ):
        raise ValueError(
            f"class_names must hold {num_classes} non-empty one-line names, one per model "
            f"output. Received: class_names={class_names!r}"
        )
    os.makedirs(export_base, exist_ok=True)
    if version is None:
        version = 1 + max(existing_versions(export_base), default=0)
    check_positive_int("version", version)
    final_dir = os.path.join(export_base, str(version))
    if os.path.lexists(final_dir):
        raise FileExistsError(f"Version {version} already exists: {final_dir}")
    temp_dir = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex}")
    os.mkdir(temp_dir)
    try:
        with tempfile.TemporaryDirectory() as labels_dir:
            labels_path = os.path.join(labels_dir, LABELS_FILE)
            with open(labels_path, "w", encoding="utf-8") as file:
                file.write("\n".join(class_names) + "\n")
            module = _serving_module(
                model, class_names, image_size, normalization, cropped, labels_path
            )
            tf.saved_model.save(
                module,
                temp_dir,
                signatures={"serving_default": module.serving_default, "images": module.images},
            )
        os.rename(temp_dir, final_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return final_dir


def _serving_module(model, class_names, image_size, normalization, cropped, labels_path):
    labels = tf.constant(class_names)

    def predictions(images):
        logits = tf.cast(model(images, training=False), tf.float32)
        class_id = tf.argmax(logits, axis=-1)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "class_id": class_id,
            "label": tf.gather(labels, class_id),
        }

    def from_bytes(image_bytes):
        return predictions(
            image_preprocessing.serving_images(image_bytes, image_size, normalization, cropped)
        )

    module = function_module(
        "image_classifier",
        serving_default=tf.function(
            from_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
        ),
        images=tf.function(
            predictions,
            input_signature=[
                tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images")
            ],
        ),
    )
    module.labels_file = tf.saved_model.Asset(labels_path)
    return module
