"""The reference image preprocessing, shared by training, evaluation and serving.

As Piggyback's ImageNet-to-Sketch loaders (followed by TAPS and the paper):

- training: a random-resized crop (area 8-100 % of the image, aspect 3/4-4/3)
  resized to `size` x `size`, and a random horizontal flip;
- evaluation: resize the shorter side to `size / 0.875` (256 for 224), then
  a centre crop of `size` x `size`;
- the `cropped` variant, for images already cropped to their object's box
  (Cars and CUB): resize to `size` x `size` without any crop, plus the flip
  in training;
- normalisation with ImageNet's mean and standard deviation on RGB in [0, 1]
  (`"imagenet"`, torchvision's convention), or Keras' ImageNet ResNet-50
  convention (`"caffe"`: BGR in [0, 255] minus the mean pixel).

Every random choice is stateless, seeded by `(seed, example index)`, so an
epoch's batches are the same in a resumed run. `serving_images` applies the
evaluation path to encoded JPEG/PNG bytes, so a served model sees exactly
what evaluation saw.
"""

import tensorflow as tf

NORMALIZATIONS = ("imagenet", "caffe")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CENTRE_CROP_FRACTION = 0.875
AREA_RANGE = (0.08, 1.0)
ASPECT_RANGE = (3 / 4, 4 / 3)


def check_normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {', '.join(NORMALIZATIONS)}. "
            f"Received: normalization={normalization!r}"
        )
    return normalization


def decode(encoded):
    """Encoded JPEG/PNG/GIF/BMP bytes -> `uint8 [height, width, 3]` (greyscale expanded)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def normalize(images, normalization="imagenet"):
    """RGB images with values in [0, 255] -> the backbone's input convention (float32)."""
    check_normalization(normalization)
    images = tf.cast(images, tf.float32)
    if normalization == "imagenet":
        return (images / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return images[..., ::-1] - CAFFE_MEAN_BGR


def evaluation_image(image, size, cropped=False):
    """Resize + centre crop (or, `cropped`, resize to `size` x `size`); float32 in [0, 255]."""
    image = tf.cast(image, tf.float32)
    if cropped:
        return tf.image.resize(image, (size, size), antialias=True)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    shorter = round(size / CENTRE_CROP_FRACTION)
    scale = shorter / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    image = tf.image.resize(image, new_shape, antialias=True)
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def training_image(image, size, seed, cropped=False, area_range=AREA_RANGE):
    """Random-resized crop (or, `cropped`, a plain resize) and a random flip.

    Args:
        image: `uint8 [height, width, 3]`.
        size: output height and width.
        seed: int32 `[2]`, the stateless seed of this example.
        cropped: the variant for images already cropped to their object.
        area_range: the crop's share of the image area (reference: 8-100 %).

    Returns:
        float32 `[size, size, 3]` in [0, 255].
    """
    seed = tf.cast(seed, tf.int32)
    if cropped:
        image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    else:
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.zeros([1, 0, 4]),
            seed=seed,
            min_object_covered=0.0,
            aspect_ratio_range=ASPECT_RANGE,
            area_range=area_range,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        image = tf.slice(image, begin, crop_size)
        image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.image.stateless_random_flip_left_right(image, seed=seed + [0, 1])


def serving_images(encoded, size, normalization="imagenet", cropped=False):
    """A batch of encoded images (string `[batch]`) -> the model's normalised inputs."""
    return tf.map_fn(
        lambda data: normalize(evaluation_image(decode(data), size, cropped), normalization),
        encoded,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
    )
