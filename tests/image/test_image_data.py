"""Image tasks read offline: preprocessing, ImageFolder sets, TFDS sets from manual files."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from swr_keras.data import image_preprocessing
from swr_keras.image import data as data_lib
from swr_keras.image import datasets

from .conftest import TINY_SIZES


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_evaluation_resizes_the_shorter_side_and_crops_the_centre():
    # A 40 x 80 image whose columns count up: the centre crop keeps the middle columns.
    image = np.tile(np.arange(80, dtype=np.uint8)[None, :, None] * 3, (40, 1, 3))
    out = image_preprocessing.evaluation_image(image, 14).numpy()
    assert out.shape == (14, 14, 3)
    # Resized to 16 x 32 (14 / 0.875 = 16; column j ~ 7.5 j), cropped to columns 9..22 of 32.
    assert 60 < out[7, 0, 0] < 80 and 155 < out[7, -1, 0] < 175
    cropped = image_preprocessing.evaluation_image(image, 14, cropped=True).numpy()
    assert cropped.shape == (14, 14, 3) and cropped[7, 0, 0] < 10 and cropped[7, -1, 0] > 225


def test_training_crops_are_a_function_of_the_seed():
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3)).astype(np.uint8)
    first = image_preprocessing.training_image(image, 20, tf.constant([5, 7])).numpy()
    again = image_preprocessing.training_image(image, 20, tf.constant([5, 7])).numpy()
    other = image_preprocessing.training_image(image, 20, tf.constant([5, 8])).numpy()
    assert first.shape == (20, 20, 3)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 1


def test_normalizations_are_imagenet_mean_std_and_caffe_bgr():
    pixel = np.array([[[255.0, 0.0, 128.0]]])
    imagenet = image_preprocessing.normalize(pixel, "imagenet").numpy()[0, 0]
    np.testing.assert_allclose(
        imagenet,
        (np.array([1.0, 0.0, 128 / 255]) - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225),
        rtol=1e-5,
    )
    caffe = image_preprocessing.normalize(pixel, "caffe").numpy()[0, 0]
    np.testing.assert_allclose(caffe, [128 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-5)
    with pytest.raises(ValueError, match="Received: normalization='torch'"):
        image_preprocessing.normalize(pixel, "torch")


def test_a_synthetic_domain_reads_through_imagefolder(image_cache):
    task = datasets.load_task("synthetic_sketch", cache_dir=image_cache)
    assert len(task.class_names) == 10 and task.class_names[0] == "arrow"
    assert task.splits["train"].count == 10 * TINY_SIZES["sketch"].train
    data = data_lib.ImageData(task, 16)
    assert data.num_train_batches(8) == 3
    images, labels = next(iter(data.evaluation_batches("test", batch_size=20)))
    assert images.shape == (20, 16, 16, 3) and sorted(set(labels.numpy())) == list(range(10))
    assert data.evaluation_batches("valid", batch_size=4) is None
    # A resumed run sees the batches of an uninterrupted one from its epoch on.
    whole = list(data.training_batches(batch_size=8, seed=3, first_epoch=0, epochs=2, augment=True))
    resumed = list(
        data.training_batches(batch_size=8, seed=3, first_epoch=1, epochs=2, augment=True)
    )
    assert len(whole) == 6 and len(resumed) == 3
    for (x, y), (x2, y2) in zip(whole[3:], resumed):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(whole[0][1], whole[3][1])  # epochs are shuffled differently


def _write_folder(root, classes, counts):
    for split, count in counts.items():
        for index, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            os.makedirs(folder)
            for n in range(count):
                pixels = np.full((12, 9, 3), 20 * index + n, np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{n}.jpg"))


def test_piggyback_folders_are_checked_against_the_published_sizes(tmp_path):
    _write_folder(str(tmp_path / "sketches"), ["airplane", "zebra"], {"train": 2, "test": 1})
    with pytest.raises(
        ValueError,
        match="sketch: found 2 classes and 4 / 2 train / test images; "
        "the published set has 250 classes and 16,000 / 4,000",
    ):
        datasets.load_task("sketch", str(tmp_path))
    task = datasets.load_task("sketch", str(tmp_path), check_sizes=False)
    assert task.class_names == ("airplane", "zebra")
    encoded, label, box = next(iter(task.splits["test"].make()))
    assert image_preprocessing.decode(encoded).shape == (12, 9, 3) and box.shape == (4,)


def test_missing_piggyback_folder_names_it(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"wikiart/train is missing or empty: place the "
        r"train/<class>/ image folders of wikiart there \(Piggyback",
    ):
        datasets.load_task("wikiart", str(tmp_path))


def _place_manual_files(root, name, skip=None, wrong=None):
    """The archives TFDS prepares `name` from, as sparse files of the right size (no data)."""
    source = datasets.TFDS_SOURCES[name]
    os.makedirs(os.path.join(root, source.folder), exist_ok=True)
    for file_name, size, _ in source.files:
        if file_name != skip:
            with open(os.path.join(root, source.folder, file_name), "wb") as file:
                file.truncate(size + (1 if file_name == wrong else 0))


@pytest.mark.parametrize(
    "name, missing, origin",
    [
        ("flowers", "setid.mat", "robots.ox.ac.uk"),
        ("cars", "cars_train.tgz", "Stanford Cars"),
        ("cub", "CUB_200_2011.tgz", "data.caltech.edu"),
    ],
)
def test_a_missing_or_wrong_archive_is_named_with_where_it_comes_from(
    tmp_path, name, missing, origin
):
    _place_manual_files(str(tmp_path), name, skip=missing)
    with pytest.raises(
        FileNotFoundError, match=f"{missing} is missing. Place {missing} from .*{origin}"
    ):
        datasets.load_task(name, str(tmp_path))
    _place_manual_files(str(tmp_path), name, wrong=missing)
    with pytest.raises(ValueError, match=f"{missing} has .* bytes, not the"):
        datasets.load_task(name, str(tmp_path))


def test_flowers_trains_on_train_plus_validation_under_mock_data(tmp_path):
    _place_manual_files(str(tmp_path), "flowers")
    with tfds.testing.mock_data(num_examples=5):
        task = datasets.load_task("flowers", str(tmp_path), check_sizes=False)
        assert len(task.class_names) == 102 and not task.cropped
        assert (task.splits["train"].count, task.splits["test"].count) == (10, 5)
        images, labels = next(
            iter(data_lib.ImageData(task, 16).evaluation_batches("test", batch_size=5))
        )
        assert images.shape == (5, 16, 16, 3) and labels.shape == (5,)


def test_cars_are_cropped_to_their_box_under_mock_data(tmp_path):
    _place_manual_files(str(tmp_path), "cars")
    # Left half black, right half white; the box holds the right half only.
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 20:] = 255

    def as_dataset(self, split, **kwargs):
        del self, split, kwargs
        return tf.data.Dataset.from_tensor_slices(
            {
                "image": [_png(pixels)] * 3,
                "label": np.array([0, 1, 195], np.int64),
                "bbox": np.array([[0.0, 0.5, 1.0, 1.0]] * 3, np.float32),
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        task = datasets.load_task("cars", str(tmp_path), check_sizes=False)
        assert len(task.class_names) == 196 and task.cropped
        images, labels = next(
            iter(data_lib.ImageData(task, 8).evaluation_batches("test", batch_size=3))
        )
    # Normalised white everywhere: the black half was cropped away.
    white = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(images.numpy(), np.broadcast_to(white, images.shape), atol=1e-4)
    assert list(labels.numpy()) == [0, 1, 195]
