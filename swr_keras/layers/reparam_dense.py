"""`ReparamDense`: the reparametrised twin of `keras.layers.Dense`."""

import keras
from keras import ops

from swr_keras.layers.reparam_layer import ReparamLayer


@keras.saving.register_keras_serializable(package="swr_keras")
class ReparamDense(ReparamLayer):
    """Densely connected layer whose kernel is `w0 + gate * delta`.

    Args:
        units: output features.
        activation: activation after the bias.
        use_bias: whether the layer has a (frozen, pre-trained) bias.

    Input shape: N-D tensor `[batch, ..., input_dim]`.
    Output shape: `[batch, ..., units]`.
    """

    layer_arguments = ("units",)
    plain_layer_class = keras.layers.Dense

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(activation=activation, use_bias=use_bias, **kwargs)
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"units must be a positive integer. Received: units={units}")
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def kernel_shape(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                f"Layer '{self.name}' needs a known last input dimension. "
                f"Received input shape {tuple(input_shape)}."
            )
        return (input_shape[-1], self.units)

    def bias_size(self, input_shape):
        return self.units

    def apply_kernel(self, inputs, kernel):
        return ops.matmul(inputs, kernel)
