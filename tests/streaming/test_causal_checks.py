"""`to_streaming` refuses each way a model can look ahead in time, and only those."""

import keras
import pytest

from swr_keras.models.causal_padding import CausalTimePadding
from swr_keras.streaming import to_streaming


def tiny_model(*convolutions):
    """Causal padding, then the given `Conv2D` layers, a global pool and a classifier."""
    inputs = keras.Input((8, None, 1))
    x = CausalTimePadding(2)(inputs)
    for convolution in convolutions:
        x = convolution(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="tiny")


def test_causal_convolutions_stream():
    # A kernel 3 frames long after 2 frames of causal padding; "same" in frequency only.
    model = tiny_model(
        keras.layers.Conv2D(4, (3, 3), name="causal"),
        keras.layers.Conv2D(4, (3, 1), strides=(2, 1), padding="same", name="frequency_only"),
    )
    assert to_streaming(model, window_frames=5) is not None


@pytest.mark.parametrize(
    "convolution, reason",
    [
        (keras.layers.Conv2D(4, (3, 3), strides=(1, 2), name="conv"), "strides time by 2"),
        (keras.layers.Conv2D(4, (3, 3), padding="same", name="conv"), "padding='same'"),
        (keras.layers.MaxPooling2D((1, 2), name="conv"), "strides time by 2"),
    ],
)
def test_a_look_ahead_in_time_is_refused(convolution, reason):
    model = tiny_model(convolution)
    with pytest.raises(ValueError, match=rf"Layer 'conv' of model 'tiny' .*{reason}.* not causal"):
        to_streaming(model, window_frames=5)
