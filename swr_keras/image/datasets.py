"""The image tasks: the five ImageNet-to-Sketch sets and the synthetic domains.

A task is an `ImageTask`: its classes and, per split, a `tf.data.Dataset`
of `(encoded image bytes, label, box)` in a fixed order (`box` is the
object's `[ymin, xmin, ymax, xmax]` in [0, 1]; the whole image where the
set has none). Everything reads what a user placed under one data
directory, offline:

```
<data_dir>/
  flowers/   102flowers.tgz imagelabels.mat setid.mat      (Oxford; TFDS oxford_flowers102)
  cub/       CUB_200_2011.tgz segmentations.tgz              (Caltech; TFDS caltech_birds2011)
  cars/      cars_train.tgz cars_test.tgz car_devkit.tgz
             cars_test_annos_withlabels.mat                  (Stanford; TFDS cars196)
  wikiart/   train/<class>/*.jpg test/<class>/*.jpg          (Piggyback's folders)
  sketches/  train/<class>/*.png test/<class>/*.png          (Piggyback's folders)
  tfds/      what TFDS prepares from the archives (written on first use)
```

The three TFDS sets are prepared from their archives (TFDS's `manual_dir`:
a file named as TFDS's checksum list names it is used instead of the
download); WikiArt and Sketch are read by TFDS's `ImageFolder` builder.
Every split's size and class count is checked against the published ones
(`PUBLISHED`). The synthetic domains (`synthetic_<domain>`) are generated
into a cache on first use (`swr_keras.data.synthetic_images`).
"""

import dataclasses
import glob
import importlib.util
import os

import tensorflow as tf

from swr_keras.data import synthetic_images

FULL_BOX = (0.0, 0.0, 1.0, 1.0)
SHUFFLE_BUFFER = 10_000


@dataclasses.dataclass(frozen=True)
class Published:
    """A set's published class count and split sizes (Piggyback's, as the paper used)."""

    num_classes: int
    train: int
    test: int


PUBLISHED = {
    "flowers": Published(102, 2_040, 6_149),  # train + validation as training
    "wikiart": Published(195, 42_129, 10_628),
    "sketch": Published(250, 16_000, 4_000),
    "cars": Published(196, 8_144, 8_041),
    "cub": Published(200, 5_994, 5_794),
}
REAL_DATASETS = tuple(PUBLISHED)
SYNTHETIC_PREFIX = "synthetic_"
SYNTHETIC_DATASETS = tuple(
    SYNTHETIC_PREFIX + domain
    for domain in (synthetic_images.SOURCE_DOMAIN, *synthetic_images.TARGET_DOMAINS)
)
DATASETS = REAL_DATASETS + SYNTHETIC_DATASETS


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A TFDS builder prepared from the archives a user placed in `<data_dir>/<folder>/`."""

    builder: str
    folder: str
    files: tuple  # (file name, bytes, where it comes from)
    train_splits: tuple
    test_split: str
    box: bool  # crop to the object's box (the "cropped" sets)
    needs: tuple = ()  # Python modules TFDS's preparation imports


CARS = "Stanford Cars (ai.stanford.edu/~jkrause/cars; the URLs are dead, use a mirror)"
TFDS_SOURCES = {
    "flowers": TfdsSource(
        "oxford_flowers102",
        "flowers",
        (
            ("102flowers.tgz", 344_862_509, "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
            ("imagelabels.mat", 502, "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
            ("setid.mat", 14_989, "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"),
        ),
        ("train", "validation"),
        "test",
        box=False,
        needs=("scipy",),
    ),
    "cub": TfdsSource(
        "caltech_birds2011",
        "cub",
        (
            ("CUB_200_2011.tgz", 1_150_585_339, "https://data.caltech.edu/records/65de6-vp158"),
            ("segmentations.tgz", 39_272_883, "https://data.caltech.edu/records/w9d68-gec53"),
        ),
        ("train",),
        "test",
        box=True,
        needs=("cv2",),
    ),
    "cars": TfdsSource(
        "cars196",
        "cars",
        (
            ("cars_train.tgz", 979_269_282, CARS),
            ("cars_test.tgz", 977_350_468, CARS),
            ("car_devkit.tgz", 330_960, CARS),
            (
                "cars_test_annos_withlabels.mat",
                185_758,
                CARS,
            ),
        ),
        ("train",),
        "test",
        box=True,
        needs=("scipy",),
    ),
}
# Piggyback's ImageNet-to-Sketch folders (github.com/arunmallya/piggyback, its data links).
FOLDER_SOURCES = {"wikiart": "wikiart", "sketch": "sketches"}
PIGGYBACK = "Piggyback's ImageNet-to-Sketch archive (github.com/arunmallya/piggyback)"


@dataclasses.dataclass(frozen=True)
class ImageTask:
    """One image classification task, read offline.

    Attributes:
        name: a key of `DATASETS`.
        class_names: the classes, in label order.
        splits: `{"train": Split, "test": Split}`.
        cropped: the images are (or are cropped to) their object's box: use
            the preprocessing's `cropped` variant (Cars, CUB).
        description: where the data came from, for metrics and manifests.
    """

    name: str
    class_names: tuple
    splits: dict
    cropped: bool = False
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Split:
    """A split: `make()` -> `(encoded, label, box)` examples in a fixed order; `count` of them."""

    make: object
    count: int


def load_task(name, data_dir="", cache_dir=None, check_sizes=True):
    """The `ImageTask` `name` from `data_dir` (or the synthetic cache).

    Args:
        name: one of `DATASETS`.
        data_dir: the folder described in this module's docstring; unused
            by the synthetic domains.
        cache_dir: where the synthetic corpus goes (default
            `$SWR_KERAS_CACHE` or `~/.cache/swr_keras`).
        check_sizes: compare the splits with `PUBLISHED` (real sets only).

    Raises:
        FileNotFoundError: a file or folder to place is missing (the message
            names it and where it comes from).
        ValueError: an unknown name, or a file or split that is not the
            published one.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}.")
    if name in SYNTHETIC_DATASETS:
        return _synthetic_task(name, cache_dir)
    if not data_dir:
        raise ValueError(
            f"--dataset={name} reads its files from --data_dir, which is empty. Place them as "
            "README's 'Image transfer' shows and pass --data_dir=DIR."
        )
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir={data_dir} does not exist.")
    if name in FOLDER_SOURCES:
        task = _folder_task(name, os.path.join(data_dir, FOLDER_SOURCES[name]), PIGGYBACK)
    else:
        task = _tfds_task(name, data_dir)
    if check_sizes:
        check_published(task)
    return task


def check_published(task):
    """A one-line ValueError if `task`'s classes or split sizes are not the published ones."""
    published = PUBLISHED[task.name]
    found = (len(task.class_names), task.splits["train"].count, task.splits["test"].count)
    expected = (published.num_classes, published.train, published.test)
    if found != expected:
        raise ValueError(
            f"{task.name}: found {found[0]} classes and {found[1]:,} / {found[2]:,} "
            f"train / test images; the published set has {expected[0]} classes and "
            f"{expected[1]:,} / {expected[2]:,}. Check the files under --data_dir "
            f"({task.description})."
        )


def _synthetic_task(name, cache_dir):
    from swr_keras.kws.tasks import default_cache_dir

    domain = name[len(SYNTHETIC_PREFIX) :]
    root = synthetic_images.ensure_corpus(cache_dir or default_cache_dir())
    task = _folder_task(name, os.path.join(root, domain), "")
    # Where the cache is does not matter: the corpus is the same everywhere.
    description = f"synthetic image corpus {os.path.basename(root)}, domain {domain}"
    return dataclasses.replace(task, description=description)


def _folder_task(name, root, origin):
    """A task of `<root>/{train,test}/<class>/*` through TFDS's ImageFolder builder."""
    import tensorflow_datasets as tfds

    for split in ("train", "test"):
        folder = os.path.join(root, split)
        if not os.path.isdir(folder) or not os.listdir(folder):
            raise FileNotFoundError(
                f"{folder} is missing or empty: place the {split}/<class>/ image folders of "
                f"{name} there ({origin})."
            )
    builder = tfds.folder_dataset.ImageFolder(root)
    splits = {}
    for split in ("train", "test"):

        def make(split=split):
            data = builder.as_dataset(
                split=split,
                shuffle_files=False,
                decoders={"image": tfds.decode.SkipDecoding()},
            )
            return data.map(
                lambda e: (e["image"], tf.cast(e["label"], tf.int32), tf.constant(FULL_BOX)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )

        splits[split] = Split(make, builder.info.splits[split].num_examples)
    return ImageTask(
        name, tuple(builder.info.features["label"].names), splits, description=f"{origin}: {root}"
    )


def _tfds_task(name, data_dir):
    import tensorflow_datasets as tfds

    source = TFDS_SOURCES[name]
    manual_dir = os.path.join(data_dir, source.folder)
    tfds_dir = os.path.join(data_dir, "tfds")
    # Checked before TFDS sees the folder: it warns about an unprepared set on
    # stderr, which would bury the one-line error about a missing archive.
    prepared = glob.glob(os.path.join(tfds_dir, source.builder, "*", "dataset_info.json"))
    if not prepared:
        check_manual_files(name, manual_dir)
        for module in source.needs:
            if importlib.util.find_spec(module) is None:
                package = {"cv2": "opencv-python-headless"}.get(module, module)
                raise ValueError(
                    f"Preparing {source.builder} needs the Python package {package} "
                    f"(pip install {package}, or the 'image' extra of swr_keras)."
                )
    builder = tfds.builder(source.builder, data_dir=tfds_dir)
    if not prepared:
        print(f"== preparing TFDS {source.builder} from {manual_dir} (once)", flush=True)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    names = builder.info.features["label"].names
    splits = {
        "train": _tfds_split(builder, source.train_splits, source.box),
        "test": _tfds_split(builder, (source.test_split,), source.box),
    }
    return ImageTask(
        name,
        tuple(names),
        splits,
        cropped=source.box,
        description=f"TFDS {source.builder} prepared from {manual_dir}",
    )


def _tfds_split(builder, split_names, box):
    import tensorflow_datasets as tfds

    def make():
        data = None
        for split in split_names:
            part = builder.as_dataset(
                split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
            )
            data = part if data is None else data.concatenate(part)
        return data.map(
            lambda e: (
                e["image"],
                tf.cast(e["label"], tf.int32),
                tf.cast(e["bbox"], tf.float32) if box else tf.constant(FULL_BOX),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    # The datasets' cardinality: TFDS asserts it from the prepared files.
    return Split(make, int(make().cardinality()))


def check_manual_files(name, manual_dir):
    """Raises a one-line error naming the first archive of `name` that is missing or wrong."""
    for file_name, size, origin in TFDS_SOURCES[name].files:
        path = os.path.join(manual_dir, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{name}: {path} is missing. Place {file_name} from {origin} there "
                "(TFDS prepares the set from it, offline)."
            )
        if os.path.getsize(path) != size:
            raise ValueError(
                f"{name}: {path} has {os.path.getsize(path):,} bytes, not the {size:,} of "
                f"{file_name} from {origin}. Replace it with the original file."
            )
