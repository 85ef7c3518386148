"""The image backbones: the shipped small ResNet, any saved task model, ResNet-50 from ImageNet.

Each comes with the input its weights expect: an image size and a
normalisation (`image_preprocessing.normalize`). A `.keras` task model
written by `recipes/pretrain_sketch.py` records both in the
`manifest.json` beside it; Keras' ImageNet ResNet-50 takes 224 x 224
images in its `"caffe"` convention.
"""

import dataclasses
import json
import os

import keras

from swr_keras import models
from swr_keras.data import image_preprocessing

SHIPPED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "saved_models",
    "small_resnet_synthetic_photos",
)
SHIPPED = os.path.join(SHIPPED_DIR, "model.keras")
MANIFEST = "manifest.json"
RESNET50_IMAGE_SIZE = 224


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A pre-trained task model and the input it expects.

    Attributes:
        model: the task model (feature extractor + classifier).
        image_size: input height and width.
        normalization: `"imagenet"` or `"caffe"`.
        description: what it is, for messages and metrics.
    """

    model: object
    image_size: int
    normalization: str
    description: str


def load_task_model(path, image_size=None, normalization=None):
    """A `.keras` task model; size and normalisation from its manifest unless given.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a Keras task model taking square RGB images.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--pretrained={path} does not exist. Train one with recipes/pretrain_sketch.py "
            "or leave the flag empty for the shipped model."
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a foreign file.
        first = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(
            f"--pretrained={path} is not a Keras model file ({type(error).__name__}: {first})."
        ) from None
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] != 3 or shape[0] != shape[1] or shape[0] is None:
        raise ValueError(
            f"--pretrained={path} takes inputs {shape}; an image backbone taking square RGB "
            "images [size, size, 3] was expected."
        )
    manifest_path = os.path.join(os.path.dirname(path), MANIFEST)
    manifest = {}
    if os.path.isfile(manifest_path):
        with open(manifest_path) as file:
            manifest = json.load(file)
    normalization = normalization or manifest.get("normalization", "imagenet")
    image_preprocessing.check_normalization(normalization)
    size = int(image_size or shape[0])
    if size != shape[0]:
        raise ValueError(
            f"--pretrained={path} takes {shape[0]} x {shape[0]} images. "
            f"Received: --image_size={size}"
        )
    return Pretrained(model, size, normalization, manifest.get("backbone", os.path.basename(path)))


def load_resnet50(weights_path, variant="v1", image_size=None):
    """ResNet-50 with a user's ImageNet feature extractor weights (`models.resnet50`).

    `variant="v1"`: `keras.applications.ResNet50` and Keras' ImageNet file
    (caffe normalisation); `"v1.5"`: torchvision's layout (stride on the
    3x3 convolutions) with weights converted from torchvision (ImageNet
    mean/std normalisation); see `models.resnet50`. `image_size` defaults to
    ImageNet's 224.
    """
    size = int(image_size or RESNET50_IMAGE_SIZE)
    model = models.resnet50(1000, weights_path, variant=variant, input_shape=(size, size, 3))
    normalization = "caffe" if variant == "v1" else "imagenet"
    return Pretrained(model, size, normalization, f"ResNet-50 {variant}")
