"""TAPS, Task-Adaptive Parameter Sharing (Wallingford et al., CVPR 2022), the baseline.

Faithful to the official code (MattWallingford/TAPS, `models/taps_net.py`,
`train_sequential.py`):

- every reparametrisable layer of the feature extractor, stem included,
  computes `w0 + I(s) * delta` with `delta` zero-initialised, one score `s`
  per layer initialised at 0.15 and `I(s) = [s >= 0.1]` with a
  straight-through gradient (`swr_keras.layers.ScoreGatedConv2D` and twins);
- BN affine parameters and running statistics train, the classifier is new;
- the loss is cross-entropy, plus `lambda * mean_l |s_l|` once the warm-up
  epochs are over;
- SGD with momentum 0.9, no weight decay, cosine-annealed learning rate, for
  every trained variable. The optimiser matters for the result: Adam scales
  each score's step to about its learning rate whatever `lambda` is, while
  under SGD `lambda` sets how fast the scores of unneeded layers sink below
  the threshold -- the sensitivity the SWR paper reports.

After training, `swr_keras.merge` folds `w0 + I(s) * delta` into plain layers
(#Mult. of the backbone) and `swr_keras.extract_task_state` stores the deltas
of the layers left on.
"""

import math

import keras
import numpy as np
from keras import ops

from swr_keras import distribute
from swr_keras.layers.score_gated import SCORE_GATED_TWINS, ScoreGated
from swr_keras.model_walk import iter_layers
from swr_keras.reparametrize import reparametrize
from swr_keras.validation import check_built

WARMUP_EPOCHS = 2
# The official loop regularises `if epoch > warmup_epochs` (2) over epochs
# 0..30: 3 unregularised epochs of 31. As a fraction of the training it
# carries over to the job's shorter schedules (`TAPSTrainer(warmup_fraction=)`).
WARMUP_FRACTION = 3 / 31
SPARSITY_WEIGHT = 1.0
LEARNING_RATE = 5e-3
MOMENTUM = 0.9


def taps_reparametrize(model):
    """Returns the TAPS twin of a pre-trained task model; `model` is untouched.

    Every Conv2D, DepthwiseConv2D and Dense of the feature extractor becomes
    its score-gated twin (frozen `w0`, zero delta, score 0.15); BN layers train
    gamma, beta and their statistics; the classifier stays as it is and
    trains; every other weight is frozen. The result computes exactly what
    `model` computes.
    """
    return reparametrize(model, bn_affine=True, twins=SCORE_GATED_TWINS)


def score_gated_layers(model):
    """The TAPS layers of `model`, in graph order."""
    return [layer for layer in iter_layers(model) if isinstance(layer, ScoreGated)]


def scores(model):
    """The scores `s_l` of the TAPS layers, as a float32 NumPy array."""
    return np.array([float(layer.score.numpy()) for layer in score_gated_layers(model)], "float32")


def sparsity_loss(layers):
    """`mean_l |s_l|` over TAPS layers: the official `sum |s| / num_layers`."""
    return ops.mean(ops.stack([ops.abs(layer.score) for layer in layers]))


def sgd(learning_rate, total_steps, momentum=MOMENTUM, gradient_accumulation_steps=None):
    """TAPS' optimiser: SGD with momentum, no weight decay, cosine-annealed to 0.

    The official code sums the gradients of 8 batches before a step (it
    calls `backward` every batch and `step` every 8th). Keras averages
    accumulated gradients, so with `gradient_accumulation_steps=k` the
    learning rate is multiplied by `k` to take the same step.

    Args:
        learning_rate: the initial learning rate of one batch's gradient.
        total_steps: batches of the whole training, for the cosine decay.
        momentum: SGD momentum (official: 0.9).
        gradient_accumulation_steps: `None` (a step per batch) or an int >= 2.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0. Received: learning_rate={learning_rate}")
    scale = 1
    if gradient_accumulation_steps is not None:
        if int(gradient_accumulation_steps) < 2:
            raise ValueError(
                "gradient_accumulation_steps must be None or an integer >= 2. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}"
            )
        scale = int(gradient_accumulation_steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate * scale, decay_steps=max(int(total_steps) // scale, 1)
    )
    return keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=momentum,
        gradient_accumulation_steps=gradient_accumulation_steps,
    )


@keras.saving.register_keras_serializable(package="swr_keras")
class TAPSTrainer(keras.Model):
    """Trains a TAPS model with cross-entropy plus the delayed score sparsity loss.

    The sparsity term `sparsity_weight * mean_l |s_l|` is added to the
    training loss from epoch `warmup_epochs` on (0-based; before, the weight
    is 0), or, with `warmup_fraction`, from training step
    `warmup_steps(total)` on: the first `ceil(warmup_fraction * total)` of
    the `epochs * steps_per_epoch` steps of `fit` are unregularised. `fit`
    switches it with the epoch (and step), so a run resumed with
    `initial_epoch` is regularised exactly as an uninterrupted one. Each
    epoch's logs carry `added_ratio`, the share of reparametrisable kernel
    parameters whose layers are on (`I(s) = 1`).

    Args:
        model: a TAPS model (`taps_reparametrize`).
        sparsity_weight: `lambda` (official default 1; its scripts use 0.1-1).
        warmup_epochs: epochs trained on the cross-entropy alone (official: 2).
            Ignored when `warmup_fraction` is given.
        warmup_fraction: `None`, or the share in [0, 1) of `fit`'s steps
            trained on the cross-entropy alone (official: 3 epochs of 31,
            `WARMUP_FRACTION`); it scales the official warm-up to any
            schedule.

    Example:

    ```python
    trainer = TAPSTrainer(taps_reparametrize(pretrained), sparsity_weight=1.0)
    trainer.compile(optimizer=sgd(5e-3, epochs * steps), loss=loss, metrics=["accuracy"])
    trainer.fit(train_ds, epochs=epochs)
    deployable = swr_keras.merge(trainer.model)
    ```
    """

    def __init__(
        self,
        model,
        *,
        sparsity_weight=SPARSITY_WEIGHT,
        warmup_epochs=WARMUP_EPOCHS,
        warmup_fraction=None,
        **kw,
    ):
        super().__init__(**kw)
        check_built(model)
        layers = score_gated_layers(model)
        if not layers:
            raise ValueError(
                f"Model '{model.name}' has no TAPS layer. Pass the model returned by "
                "swr_keras.taps.taps_reparametrize(pretrained_model)."
            )
        if not sparsity_weight >= 0:
            raise ValueError(
                f"sparsity_weight must be >= 0. Received: sparsity_weight={sparsity_weight}"
            )
        if (
            isinstance(warmup_epochs, bool)
            or int(warmup_epochs) != warmup_epochs
            or warmup_epochs < 0
        ):
            raise ValueError(
                f"warmup_epochs must be an integer >= 0. Received: warmup_epochs={warmup_epochs}"
            )
        if warmup_fraction is not None and not 0 <= warmup_fraction < 1:
            raise ValueError(
                "warmup_fraction must be None or in [0, 1). "
                f"Received: warmup_fraction={warmup_fraction}"
            )
        self.model = model
        self.sparsity_weight = float(sparsity_weight)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_fraction = None if warmup_fraction is None else float(warmup_fraction)
        self.active_sparsity_weight = keras.Variable(
            0.0, trainable=False, dtype="float32", name="active_sparsity_weight"
        )
        self.sparsity_tracker = keras.metrics.Mean(name="sparsity_loss")
        self.built = True

    def start_epoch(self, epoch):
        """Sets the sparsity weight for 0-based `epoch`: 0 in warm-up, then `lambda`."""
        weight = self.sparsity_weight if epoch >= self.warmup_epochs else 0.0
        self.active_sparsity_weight.assign(weight)

    def warmup_steps(self, total_steps):
        """Steps of `total_steps` before the sparsity loss: `ceil(warmup_fraction * total)`."""
        # Rounded first so that 3/31 of 31 * n steps is 3 * n, not 3 * n + 1.
        return math.ceil(round(self.warmup_fraction * total_steps, 6))

    def start_step(self, step, total_steps):
        """Sets the sparsity weight for 0-based training `step` of `total_steps` (fraction mode)."""
        on = step >= self.warmup_steps(total_steps)
        self.active_sparsity_weight.assign(self.sparsity_weight if on else 0.0)

    def added_ratio(self):
        """Share of the TAPS layers' kernel parameters whose delta is on."""
        layers = score_gated_layers(self.model)
        sizes = np.array([np.prod(layer.base_kernel.shape) for layer in layers], "float64")
        on = np.array([float(np.asarray(layer.effective_gate())) for layer in layers])
        return float(np.sum(on * sizes) / np.sum(sizes))

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )
        if not training:
            return loss
        sparsity = sparsity_loss(score_gated_layers(self.model))
        self.sparsity_tracker.update_state(sparsity)
        # Every replica computes the same penalty; scaled so that their summed
        # gradients count it once (swr_keras.distribute.scale_loss).
        penalty = distribute.scale_loss(sparsity)
        return loss + ops.cast(self.active_sparsity_weight, loss.dtype) * penalty

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = [_TAPSEpochs(), *(callbacks or [])]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "sparsity_weight": self.sparsity_weight,
                "warmup_epochs": self.warmup_epochs,
                "warmup_fraction": self.warmup_fraction,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


class _TAPSEpochs(keras.callbacks.Callback):
    """Switches the sparsity weight per epoch (per step with a warm-up fraction), logs the ratio.

    Runs first among `fit`'s callbacks, so checkpoint and TensorBoard
    callbacks see `added_ratio` in the epoch's logs.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.model.warmup_fraction is None:
            self.model.start_epoch(epoch)
        else:
            self.on_train_batch_begin(0)

    def on_train_batch_begin(self, batch, logs=None):
        if self.model.warmup_fraction is None:
            return
        steps, epochs = self.params.get("steps"), self.params["epochs"]
        if steps:
            self.model.start_step(self._epoch * steps + batch, epochs * steps)
        else:
            # Unknown epoch length: the same fraction, in whole epochs.
            self.model.start_step(self._epoch, epochs)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["added_ratio"] = self.model.added_ratio()
