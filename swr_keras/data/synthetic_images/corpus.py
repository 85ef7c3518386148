"""Writing the synthetic image corpus: ImageFolder trees, made once into a cache.

Layout, the one Piggyback's ImageNet-to-Sketch folders have (and TFDS's
`ImageFolder` builder reads): `<root>/<domain>/{train,test}/<class>/<n>.png`.
Every image is a function of `(seed, domain, split, class, n)` only, so the
corpus is the same on every machine and in every order of generation.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

from swr_keras.data.synthetic_images import render, shapes

VERSION = 1
SOURCE_DOMAIN = "photo"
TARGET_DOMAINS = ("sketch", "painting", "texture")
IMAGE_SIZE = 64


@dataclasses.dataclass(frozen=True)
class DomainSize:
    """Images per class of one domain's splits."""

    train: int
    test: int


# The source domain has the most images, as ImageNet has; the targets are
# few-shot-ish, as Flowers (20 training images per class) and CUB (30) are.
DEFAULT_SIZES = {
    SOURCE_DOMAIN: DomainSize(train=240, test=40),
    **{domain: DomainSize(train=60, test=40) for domain in TARGET_DOMAINS},
}


def corpus_name(seed):
    return f"synthetic_images_v{VERSION}_seed{seed}"


def render_image(domain, split, class_name, index, seed=0, size=IMAGE_SIZE):
    """One image of the corpus as `uint8 [size, size, 3]`."""
    if domain not in render.DOMAINS:
        raise ValueError(f"Unknown domain {domain!r}. Choose one of {', '.join(render.DOMAINS)}.")
    class_index = shapes.CLASS_NAMES.index(class_name)
    keys = (
        int(seed),
        list(render.DOMAINS).index(domain),
        ("train", "test").index(split),
        class_index,
        int(index),
    )
    rng = np.random.default_rng(keys)
    polygons = shapes.posed(class_name, rng, size)
    return render.DOMAINS[domain](polygons, rng, size, class_index, len(shapes.CLASS_NAMES))


def write_domain(output_dir, domain, sizes, seed=0, size=IMAGE_SIZE, progress=True):
    """Writes `<output_dir>/{train,test}/<class>/<n>.png` of one domain."""
    total = (sizes.train + sizes.test) * len(shapes.CLASS_NAMES)
    done = 0
    for split, count in (("train", sizes.train), ("test", sizes.test)):
        for class_name in shapes.CLASS_NAMES:
            folder = os.path.join(output_dir, split, class_name)
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                image = render_image(domain, split, class_name, index, seed=seed, size=size)
                Image.fromarray(image).save(os.path.join(folder, f"{index:04d}.png"))
            done += count
            if progress and sys.stdout.isatty():
                print(f"\r   {domain}: {done}/{total} images", end="", flush=True)
    if progress:
        print(f"\r   {domain}: {total} images", flush=True)


def ensure_corpus(cache_dir, seed=0, sizes=None, progress=True):
    """Generates the corpus under `cache_dir` unless it is there already.

    Each domain is written into a temporary folder and renamed into place
    when complete, so a killed run never leaves a domain that looks finished.

    Args:
        cache_dir: the corpus goes to `<cache_dir>/<corpus_name(seed)>/`.
        seed: the corpus's seed.
        sizes: `{domain: DomainSize}`; default `DEFAULT_SIZES`. A corpus of
            other sizes must go to another `cache_dir`.
        progress: print a progress line per domain.

    Returns:
        The corpus root, holding one folder per domain.
    """
    sizes = DEFAULT_SIZES if sizes is None else sizes
    root = os.path.join(os.path.abspath(os.fspath(cache_dir)), corpus_name(seed))
    os.makedirs(root, exist_ok=True)
    missing = [domain for domain in sizes if not os.path.isdir(os.path.join(root, domain))]
    if missing and progress:
        print(f"== generating the synthetic image corpus into {root}", flush=True)
    for domain in missing:
        temp = tempfile.mkdtemp(prefix=f".{domain}.tmp-", dir=root)
        try:
            write_domain(temp, domain, sizes[domain], seed=seed, progress=progress)
            with open(os.path.join(temp, "corpus.json"), "w") as file:
                json.dump(
                    {"version": VERSION, "seed": seed, **dataclasses.asdict(sizes[domain])}, file
                )
            try:
                os.rename(temp, os.path.join(root, domain))
            except OSError:  # another process finished first; its domain is identical
                shutil.rmtree(temp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    return root


def check_domain_sizes(root, domain, sizes):
    """Raises a one-line ValueError if a cached domain was made with other sizes."""
    path = os.path.join(root, domain, "corpus.json")
    with open(path) as file:
        recorded = json.load(file)
    if (recorded["train"], recorded["test"]) != (sizes.train, sizes.test):
        raise ValueError(
            f"The cached domain {os.path.join(root, domain)} has {recorded} images per class, "
            f"not {dataclasses.asdict(sizes)}. Delete it or use another cache directory."
        )


if __name__ == "__main__":  # a quick look: python -m swr_keras.data.synthetic_images.corpus DIR
    out = sys.argv[1]
    for dom in render.DOMAINS:
        row = np.concatenate(
            [render_image(dom, "train", name, 0) for name in shapes.CLASS_NAMES], axis=1
        )
        Image.fromarray(row).save(os.path.join(out, f"{dom}.png"))
