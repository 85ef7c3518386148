"""`SubSpectralNorm`: batch normalisation per frequency sub-band (BC-ResNet)."""

import keras
from keras import ops

from swr_keras.models.batch_norm import (
    TORCH_BN_EPSILON,
    TORCH_BN_MOMENTUM,
    FusedBatchNormalization,
)
from swr_keras.validation import check_positive_int


@keras.saving.register_keras_serializable(package="swr_keras")
class SubSpectralNorm(keras.layers.Layer):
    """Batch normalisation with separate statistics for each frequency sub-band.

    The frequency axis is cut into `num_sub_bands` equal, contiguous bands and
    every (band, channel) pair is normalised on its own, with its own moving
    statistics, scale and offset. Each band has its own
    `FusedBatchNormalization` over the channels, so everything the library
    does with BN applies to it: under `swr_keras.reparametrize` its moving
    statistics transfer per task and its gamma/beta stay frozen unless
    `bn_affine=True`. (The reference reshapes `[B, C, F, T]` to
    `[B, C * S, F / S, T]` and normalises `C * S` channels: its parameter
    `c * S + s` is parameter `c` of band `s` here.) Cutting the input into
    bands and joining them again copies contiguous blocks, which is cheaper
    than transposing bands next to channels.

    Args:
        num_sub_bands: number of frequency sub-bands `S` (5 in BC-ResNet).
        epsilon: added to the variance (the reference's 1e-5).
        momentum: momentum of the moving statistics, Keras convention.

    Input shape: `[batch, frequency, time, channels]`, frequency divisible
    by `num_sub_bands`. Output shape: the same.

    Example:

    ```python
    x = keras.Input((20, 101, 64))
    y = SubSpectralNorm(num_sub_bands=5)(x)
    ```
    """

    def __init__(
        self,
        num_sub_bands=5,
        epsilon=TORCH_BN_EPSILON,
        momentum=TORCH_BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_sub_bands = check_positive_int("num_sub_bands", num_sub_bands)
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.band_norms = [
            FusedBatchNormalization(
                epsilon=self.epsilon, momentum=self.momentum, name=f"band{band}_batch_norm"
            )
            for band in range(num_sub_bands)
        ]
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        frequencies = input_shape[1]
        if frequencies is None or input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs known frequency and channel sizes. "
                f"Received input shape {tuple(input_shape)}."
            )
        if frequencies % self.num_sub_bands:
            raise ValueError(
                f"Layer '{self.name}' cuts {frequencies} frequency bins into "
                f"{self.num_sub_bands} equal sub-bands, which does not divide. Use "
                "a frequency size divisible by num_sub_bands."
            )
        band_shape = (input_shape[0], frequencies // self.num_sub_bands, *input_shape[2:])
        for norm in self.band_norms:
            norm.build(band_shape)

    def call(self, inputs, training=None):
        bands = ops.split(inputs, self.num_sub_bands, axis=1)
        return ops.concatenate(
            [norm(band, training=training) for norm, band in zip(self.band_norms, bands)],
            axis=1,
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_sub_bands": self.num_sub_bands,
            "epsilon": self.epsilon,
            "momentum": self.momentum,
        }
