"""An `ImageTask` as a transfer job's `TaskData`: normalised image batches.

Training: each epoch shuffles the split with the seed `(seed, epoch)` and
augments every example with the stateless seed `(seed, epoch, index)`
(`image_preprocessing.training_image`), so a resumed run sees the batches an
uninterrupted one saw. Evaluation: resize + centre crop in listing order.
"""

import numpy as np
import tensorflow as tf

from swr_keras import transfer_job
from swr_keras.data import image_preprocessing
from swr_keras.image.datasets import SHUFFLE_BUFFER


class ImageData(transfer_job.TaskData):
    """Batches of an `ImageTask` for a backbone of input `image_size` x `image_size`.

    Args:
        task: the `ImageTask` (`datasets.load_task`).
        image_size: the backbone's input height and width (224 for ResNet-50).
        normalization: the backbone's input convention, `"imagenet"` or
            `"caffe"` (`image_preprocessing.normalize`).
        area_range: the training crop's share of the image area (reference:
            8-100 %; small synthetic objects need a larger minimum).
    """

    def __init__(
        self,
        task,
        image_size,
        normalization="imagenet",
        area_range=image_preprocessing.AREA_RANGE,
    ):
        self.task = task
        self.class_names = task.class_names
        self.image_size = int(image_size)
        self.normalization = image_preprocessing.check_normalization(normalization)
        self.area_range = tuple(area_range)

    def num_train_batches(self, batch_size):
        return self.task.splits["train"].count // batch_size

    def _decoded(self, encoded, box):
        image = image_preprocessing.decode(encoded)
        if self.task.cropped:
            image = _crop_to_box(image, box)
        return image

    def _epoch(self, epoch_seed, batch_size, augment):
        split = self.task.splits["train"]
        data = split.make().shuffle(
            min(split.count, SHUFFLE_BUFFER), seed=epoch_seed, reshuffle_each_iteration=False
        )
        size, cropped = self.image_size, self.task.cropped

        def prepare(index, example):
            encoded, label, box = example
            image = self._decoded(encoded, box)
            if augment:
                seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
                image = image_preprocessing.training_image(
                    image, size, seed, cropped=cropped, area_range=self.area_range
                )
            else:
                image = image_preprocessing.evaluation_image(image, size, cropped)
            return image_preprocessing.normalize(image, self.normalization), label

        return (
            data.enumerate()
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True)
        )

    def training_batches(self, *, batch_size, seed, first_epoch, epochs, augment):
        # The epoch seed as the KWS job forms it: a function of (seed, epoch) only.
        per_epoch = [
            self._epoch(seed * 100003 + epoch, batch_size, augment)
            for epoch in range(first_epoch, epochs)
        ]
        stream = per_epoch[0]
        for data in per_epoch[1:]:
            stream = stream.concatenate(data)
        return stream.prefetch(tf.data.AUTOTUNE)

    def evaluation_batches(self, split, *, batch_size):
        if split not in self.task.splits:
            return None
        size, cropped = self.image_size, self.task.cropped

        def prepare(encoded, label, box):
            image = image_preprocessing.evaluation_image(self._decoded(encoded, box), size, cropped)
            return image_preprocessing.normalize(image, self.normalization), label

        return (
            self.task.splits[split]
            .make()
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def representative_inputs(self, count, *, seed):
        data = self._epoch(seed * 100003, 1, augment=False).take(count)
        return np.concatenate([x for x, _ in data.as_numpy_iterator()])

    def encoded_examples(self, split, count):
        """The first `count` `(encoded bytes, label)` of `split`, as served models receive them."""
        pairs = [(e, label) for e, label, _ in self.task.splits[split].make().take(count)]
        return [e.numpy() for e, _ in pairs], np.array([int(label) for _, label in pairs])


def _crop_to_box(image, box):
    """Crops `image` to `box` = `[ymin, xmin, ymax, xmax]` in [0, 1] (at least one pixel)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    top = tf.cast(tf.floor(box[0] * shape[0]), tf.int32)
    left = tf.cast(tf.floor(box[1] * shape[1]), tf.int32)
    bottom = tf.maximum(tf.cast(tf.math.ceil(box[2] * shape[0]), tf.int32), top + 1)
    right = tf.maximum(tf.cast(tf.math.ceil(box[3] * shape[1]), tf.int32), left + 1)
    return image[top:bottom, left:right]
