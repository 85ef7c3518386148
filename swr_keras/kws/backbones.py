"""Building, checking and loading the keyword-spotting backbones by name."""

import os

import keras

from swr_keras import models

BACKBONES = ("bc_resnet", "res15")


def build_backbone(backbone, num_classes, tau=8.0, causal=False):
    """A fresh task model: `"bc_resnet"` (`BCResNet(tau, causal=causal)`) or `"res15"`."""
    if backbone == "bc_resnet":
        return models.BCResNet(tau=tau, num_classes=num_classes, causal=causal)
    if causal:
        raise ValueError(f"Only bc_resnet has a causal variant. Received: backbone={backbone!r}")
    if backbone == "res15":
        return models.Res15(num_classes=num_classes)
    raise ValueError(f"Unknown backbone {backbone!r}. Choose one of {', '.join(BACKBONES)}.")


def describe(backbone, tau):
    return f"BC-ResNet-{tau:g}" if backbone == "bc_resnet" else "Res15"


def load_pretrained(path, backbone, num_classes, tau=8.0):
    """Loads a pre-trained task model and checks it is the expected one.

    Args:
        path: a `.keras` file written by `recipes/pretrain_kws.py` (or any
            task model of the same architecture).
        backbone, tau: the architecture it must have.
        num_classes: the classes it must have been trained on.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a Keras model file, or a model of another
            architecture or class count (the message says which).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--pretrained={path} does not exist. Train one with recipes/pretrain_kws.py "
            "or leave the flag empty for the shipped model."
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a foreign file.
        raise ValueError(
            f"--pretrained={path} is not a Keras model file ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})."
        ) from None
    expected = build_backbone(backbone, num_classes, tau)
    got = [tuple(w.shape) for w in model.weights]
    want = [tuple(w.shape) for w in expected.weights]
    if got != want:
        classes = model.outputs[0].shape[-1] if model.outputs else "?"
        if got[:-2] == want[:-2]:
            raise ValueError(
                f"--pretrained={path} has {classes} classes; {describe(backbone, tau)} "
                f"pre-trained on {num_classes} classes was expected (the multi-lingual union)."
            )
        raise ValueError(
            f"--pretrained={path} is not a {describe(backbone, tau)} ({len(got)} weight "
            f"tensors, {model.count_params():,} parameters; expected {len(want)}, "
            f"{expected.count_params():,}). Set --backbone/--tau to match it."
        )
    return model
