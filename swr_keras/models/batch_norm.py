"""Batch normalisation computed by TensorFlow's fused kernel.

Keras 3's `BatchNormalization` composes moments, subtraction, scaling and
their gradients from separate TensorFlow ops. On a CPU these memory-bound
passes made up about half of a BC-ResNet-8 training step; TensorFlow's fused
kernel does the same work in one forward and one backward op.
"""

import keras
import tensorflow as tf
from keras import ops

# The reference implementations' BatchNorm2d defaults. PyTorch's momentum 0.1
# weighs the new batch, Keras' momentum weighs the running value.
TORCH_BN_EPSILON = 1e-5
TORCH_BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="swr_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on TensorFlow's fused kernel.

    It takes the same arguments, holds the same variables and normalises
    with the same formula; everything that treats BN layers specially (e.g.
    `swr_keras.reparametrize` freezing gamma/beta, task states storing the
    moving statistics) applies unchanged. Two things differ from the Keras
    layer, both matching PyTorch's `BatchNorm2d` (the reference backbones'):

    - 4D channels-last inputs on the TensorFlow backend run
      `FusedBatchNormV3` (other inputs fall back to the Keras computation);
    - in training the moving variance is updated with the unbiased batch
      variance (`n / (n - 1)` times the biased one Keras uses).

    With `synchronized=True` (set while a stage trains on several replicas,
    `swr_keras.distribute.training_scope`) the moments are the global
    batch's, computed outside the fused kernel.

    Defaults are the reference's epsilon 1e-5 and momentum 0.1 (Keras 0.9).

    Args:
        momentum, epsilon, and every other argument: as
            `keras.layers.BatchNormalization`.
    """

    def __init__(self, momentum=TORCH_BN_MOMENTUM, epsilon=TORCH_BN_EPSILON, **kwargs):
        super().__init__(momentum=momentum, epsilon=epsilon, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if self.synchronized and training and self.trainable and self._fusable(inputs, mask, True):
            return self._synchronized_call(inputs)
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        scale = self.gamma if self.scale else tf.ones((channels,), "float32")
        offset = self.beta if self.center else tf.zeros((channels,), "float32")
        if training and self.trainable:
            outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=scale,
                offset=offset,
                mean=tf.zeros((0,), "float32"),
                variance=tf.zeros((0,), "float32"),
                epsilon=self.epsilon,
                is_training=True,
            )
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=scale,
                offset=offset,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )
        return ops.cast(outputs, self.compute_dtype)

    def _synchronized_call(self, inputs):
        """Training over several replicas: the moments of the global batch (`synchronized`).

        The fused kernel sees one replica's batch only; Keras' synchronised
        moments are all-reduced (and differentiated) across replicas. The
        moving variance stays unbiased, over the global batch's count.
        """
        x = ops.cast(inputs, "float32")
        mean, variance = ops.moments(x, axes=[0, 1, 2], synchronized=True)
        count = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
        context = tf.distribute.get_replica_context()
        if context is not None:
            count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
        outputs = ops.batch_normalization(
            x,
            mean,
            variance,
            axis=-1,
            offset=self.beta if self.center else None,
            scale=self.gamma if self.scale else None,
            epsilon=self.epsilon,
        )
        unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + unbiased * (1.0 - self.momentum)
        )
        return ops.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask, synchronized_ok=False):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and (synchronized_ok or not self.synchronized)
        )
