"""Tiny synthetic image-classification tasks for demos, tests and benchmarks.

Each class is a random smooth template; an example is its class template,
randomly shifted, scaled and buried in noise. Two tasks drawn with different
seeds share the low-level statistics (smooth blobs) but not the classes, which
makes a small, fast transfer-learning problem: pre-train on one, transfer to
the other.
"""

import numpy as np


def make_pattern_task(
    num_classes, examples_per_class, *, image_size=16, channels=3, noise=0.6, seed=0, split=0
):
    """Returns `(images, labels)` of a synthetic pattern task.

    Args:
        num_classes: number of classes (templates).
        examples_per_class: examples drawn per class.
        image_size: height and width.
        channels: image channels.
        noise: standard deviation of the additive Gaussian noise.
        seed: the task: its class templates are a function of it.
        split: the examples drawn from the task (use e.g. 0 for training
            and 1 for test: same classes, different examples).

    Returns:
        `float32` images `[N, image_size, image_size, channels]` and `int32`
        labels `[N]`, shuffled.
    """
    for name, value in (
        ("num_classes", num_classes),
        ("examples_per_class", examples_per_class),
        ("image_size", image_size),
        ("channels", channels),
    ):
        if int(value) <= 0:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value}")
    templates = np.random.default_rng(seed).normal(
        size=(num_classes, image_size, image_size, channels)
    )
    templates = _smooth(templates, 2)
    templates /= templates.std(axis=(1, 2, 3), keepdims=True)
    rng = np.random.default_rng([seed, split])
    labels = np.repeat(np.arange(num_classes), examples_per_class)
    shifts = rng.integers(-2, 3, size=(labels.size, 2))
    images = np.stack(
        [np.roll(templates[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)]
    )
    images *= rng.uniform(0.7, 1.3, size=(labels.size, 1, 1, 1))
    images += rng.normal(scale=noise, size=images.shape)
    order = rng.permutation(labels.size)
    return images[order].astype("float32"), labels[order].astype("int32")


def _smooth(array, passes):
    """Box-blurs the spatial axes a few times (wrap-around) to make blobs."""
    for _ in range(passes):
        array = (
            sum(np.roll(array, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
        )
    return array
