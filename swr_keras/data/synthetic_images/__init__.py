"""A procedural image corpus with a source domain and shifted target domains.

The stand-in for ImageNet-to-Sketch on machines without ImageNet weights or
the five datasets: ten object classes (`shapes.CLASS_NAMES`) rendered as
photo-like images (`"photo"`, the source the shipped backbone learnt) and as
line sketches, paintings and textured photos (the targets), written as
ImageFolder trees into a cache directory on first use (`ensure_corpus`).
"""

from swr_keras.data.synthetic_images.corpus import (
    DEFAULT_SIZES,
    IMAGE_SIZE,
    SOURCE_DOMAIN,
    TARGET_DOMAINS,
    DomainSize,
    ensure_corpus,
    render_image,
)
from swr_keras.data.synthetic_images.shapes import CLASS_NAMES

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_SIZES",
    "IMAGE_SIZE",
    "SOURCE_DOMAIN",
    "TARGET_DOMAINS",
    "DomainSize",
    "ensure_corpus",
    "render_image",
]
