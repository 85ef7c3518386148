"""The two-stage training of SWR (section 3.2) as one Keras model.

`SWRTrainer` wraps a reparametrised model and its policy network and trains
them with `fit` in four stages:

- `"supernet"` (1a): every gate is 1; the deltas and the classifier learn the
  task with the target loss.
- `"policy"` (1b): the super-net is frozen (BN statistics included); the
  policy network learns from `c ~ U(0, 1)` per example with
  `L_target + lambda * L_policy`, hard Gumbel-softmax gates in the target
  loss and softmax probabilities in the policy loss.
- `"reparam"` (2): the policy is frozen and binarised for one target cost;
  the deltas restart from zero and only the gated deltas, the BN statistics
  and the classifier train.
- `"joint"`: the "not staged" ablation; policy and deltas learn together.

Call `set_stage(...)`, then `compile(...)`, then `fit(...)` -- or use
`fit_stage`, which also sets up the cosine learning rate and temperature.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from swr_keras import distribute
from swr_keras.gumbel import gumbel_softmax
from swr_keras.layers import ReparamLayer, example_gates
from swr_keras.losses import (
    PARAMETERS,
    gated_cost,
    layer_cost_weights,
    policy_loss,
)
from swr_keras.model_walk import (
    batch_norm_layers,
    reparam_layers,
    set_batch_norm_affine_trainable,
    weighted_leaf_layers,
)
from swr_keras.policy_network import (
    PolicyNetwork,
    binarize,
    random_order_gates,
    smallest_first_gates,
)
from swr_keras.validation import check_built, check_target_cost

SUPERNET = "supernet"
POLICY = "policy"
REPARAM = "reparam"
JOINT = "joint"
STAGES = (SUPERNET, POLICY, REPARAM, JOINT)
BUDGET = "budget"
THRESHOLD = "threshold"
# The controls without a policy (`swr_keras.methods.no_policy`): the gates
# ignore the policy network.
SMALLEST_FIRST = "smallest_first"
RANDOM = "random"
BINARIZATIONS = (THRESHOLD, BUDGET, SMALLEST_FIRST, RANDOM)


@keras.saving.register_keras_serializable(package="swr_keras")
class SWRTrainer(keras.Model):
    """Trains a reparametrised model and its policy network stage by stage.

    Args:
        model: a reparametrised model (`swr_keras.reparametrize`).
        policy_network: a `PolicyNetwork` with one output per reparametrised
            layer; a new one is created if omitted.
        policy_loss_weight: `lambda` of the total loss (1 for KWS in the paper).
        cost_weighting: `"parameters"` (the paper's `r_l`) or `"equal"`.
        bn_affine: also train BN gamma/beta (ablation "+BN-affine").
        stage: the initial stage, one of `"supernet"`, `"policy"`,
            `"reparam"`, `"joint"`.
        target_cost: the target cost used at inference in the policy and
            joint stages (and the one `"reparam"` was set up for).
        temperature: initial Gumbel-softmax temperature.
        binarization: how `"reparam"` chooses its gates: `"threshold"`
            (the paper's `softmax(h(c))[0] > 0.5`, the default), `"budget"`
            (`swr_keras.budget_gates`: the policy's preferred layers within
            the target cost, a variant "SWR + budget fill"), or, ignoring
            the policy (controls): `"smallest_first"`
            (`swr_keras.policy_network.smallest_first_gates`) or `"random"`
            (`random_order_gates`, drawn with `seed`, 0 if `None`).
        seed: seed of the policy network and of the sampling of `c` and of
            the Gumbel noise.
        warm_start: where `"reparam"` starts its classifier and BN
            statistics. `False` (the default): from the pre-trained BN
            statistics and the classifier the trainer was built with, the
            state every baseline of a comparison starts from, so that stage 2
            trains the final model from the same start and for the same epochs
            as they do (stages 1a and 1b only choose the gates). `True`: from
            the super-net's (a variant: "SWR, warm classifier").

    Example:

    ```python
    trainer = SWRTrainer(swr_keras.reparametrize(pretrained), seed=0)
    for stage in ("supernet", "policy"):
        swr_keras.fit_stage(trainer, stage, train_ds, epochs=30, learning_rate=1e-3)
    swr_keras.fit_stage(trainer, "reparam", train_ds, epochs=30,
                        learning_rate=1e-3, target_cost=0.1)
    deployable = swr_keras.merge(trainer.model)
    ```
    """

    def __init__(
        self,
        model,
        policy_network=None,
        *,
        policy_loss_weight=1.0,
        cost_weighting=PARAMETERS,
        bn_affine=False,
        stage=SUPERNET,
        target_cost=0.5,
        temperature=2.0,
        binarization=THRESHOLD,
        seed=None,
        warm_start=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_built(model)
        layers = reparam_layers(model)
        if not layers:
            raise ValueError(
                f"Model '{model.name}' has no reparametrised layer. Pass the model "
                "returned by swr_keras.reparametrize(pretrained_model)."
            )
        if policy_network is None:
            policy_network = PolicyNetwork(len(layers), seed=seed)
        if policy_network.num_layers != len(layers):
            raise ValueError(
                f"policy_network decides for {policy_network.num_layers} layers but the "
                f"model has {len(layers)} reparametrised layers. Create it with "
                f"PolicyNetwork(num_layers={len(layers)})."
            )
        if not policy_loss_weight >= 0:
            raise ValueError(
                "policy_loss_weight must be >= 0. "
                f"Received: policy_loss_weight={policy_loss_weight}"
            )
        self.model = model
        self.policy_network = policy_network
        self.policy_loss_weight = float(policy_loss_weight)
        self.cost_weighting = cost_weighting
        self.bn_affine = bool(bn_affine)
        self.binarization = check_binarization(binarization)
        self.seed = seed
        self.warm_start = bool(warm_start)
        self.cost_weights = layer_cost_weights(layers, cost_weighting)
        self.parameter_weights = layer_cost_weights(layers, PARAMETERS)
        self.temperature = keras.Variable(
            float(temperature), trainable=False, dtype="float32", name="temperature"
        )
        self.target_cost = keras.Variable(
            check_target_cost(target_cost), trainable=False, dtype="float32", name="target_cost"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.policy_loss_tracker = keras.metrics.Mean(name="policy_loss")
        self.added_ratio_tracker = keras.metrics.Mean(name="added_ratio")
        # The state every "reparam" entry restarts from, kept as non-trainable
        # variables so that it is saved with the model (`.keras`, checkpoints):
        # a trainer reloaded after one target cost's stage 2 still starts the
        # next cost from the super-net, not from the last cost's BN statistics
        # and classifier.
        self.supernet_state = [
            keras.Variable(
                np.zeros(v.shape, v.dtype),
                trainable=False,
                dtype=v.dtype,
                name=f"supernet_{index:03d}",
            )
            for index, v in enumerate(self._supernet_variables())
        ]
        self.supernet_state_saved = keras.Variable(
            False, trainable=False, dtype="bool", name="supernet_state_saved"
        )
        # The pre-trained BN statistics and the new classifier, as built: a
        # cold stage 2 (`warm_start=False`) restarts from them. Variables too,
        # so a reloaded trainer (or a resumed job) still has them after
        # stage 1 trained the live ones.
        self.initial_state = [
            keras.Variable(
                ops.convert_to_numpy(v), trainable=False, dtype=v.dtype, name=f"initial_{index:03d}"
            )
            for index, v in enumerate(self._start_variables())
        ]
        self.stage = _check_stage(stage)
        self._apply_trainability()
        self.built = True  # both sub-models are built; nothing is created lazily

    # -- stages ----------------------------------------------------------------
    def set_stage(self, stage, target_cost=None, reinitialize_deltas=True):
        """Switches to `stage`; call `compile` again before `fit`.

        Entering `"reparam"` binarises the policy for `target_cost`, sets each
        layer's gate, and restores the start state: the BN statistics and
        classifier as built (or the super-net's, with `warm_start=True`), with
        the deltas reset to zero -- or kept from the super-net with
        `reinitialize_deltas=False` (ablation "+super-net weight"). Every
        `"reparam"` entry starts from that same state, so the target costs of
        one run do not depend on their order.

        Args:
            stage: `"supernet"`, `"policy"`, `"reparam"` or `"joint"`.
            target_cost: required for `"reparam"`; for the others it sets the
                cost used at inference.
            reinitialize_deltas: zero the deltas when entering `"reparam"`.
        """
        stage = _check_stage(stage)
        if target_cost is not None:
            self.target_cost.assign(check_target_cost(target_cost))
        elif stage == REPARAM:
            raise ValueError(
                'The "reparam" stage needs a target cost. Received: target_cost=None; '
                "pass e.g. set_stage('reparam', target_cost=0.1)."
            )
        layers = reparam_layers(self.model)
        if stage in (SUPERNET, JOINT):
            # These stages change the super-net: the next "reparam" entry
            # must start from what they train, not from an older snapshot.
            self.supernet_state_saved.assign(False)
        if stage == REPARAM:
            self._restore_supernet_state(reinitialize_deltas)
            gates = self.deployment_policy(float(self.target_cost.numpy()))
        else:
            gates = np.ones(len(layers), "float32")
        for layer, gate in zip(layers, gates):
            layer.gate.assign(gate)
        self.stage = stage
        self._apply_trainability()
        # The trainable variables changed: the optimizer must be rebuilt.
        self.compiled = False

    def deployment_policy(self, target_cost):
        """The 0/1 gates stage 2 deploys for `target_cost` (see `binarization`)."""
        if self.binarization == SMALLEST_FIRST:
            return smallest_first_gates(self.parameter_weights, check_target_cost(target_cost))
        if self.binarization == RANDOM:
            seed = 0 if self.seed is None else self.seed
            return random_order_gates(self.parameter_weights, check_target_cost(target_cost), seed)
        # The costs the policy was trained with: under the "equal r_l"
        # ablation the budget counts layers, as that policy learned to.
        weights = self.cost_weights if self.binarization == BUDGET else None
        return self.policy_network.binary_policy(target_cost, cost_weights=weights)

    def fit(self, *args, **kwargs):
        # Variable trainability is not saved with a model; re-derive it from
        # the stage and the (now loaded) gates before training.
        self._apply_trainability()
        return super().fit(*args, **kwargs)

    def _apply_trainability(self):
        stage = self.stage
        for layer in reparam_layers(self.model):
            layer.kernel_delta.trainable = stage in (SUPERNET, JOINT) or (
                stage == REPARAM and float(layer.gate.numpy()) == 1.0
            )
        for variable in self._head_variables():
            variable.trainable = stage != POLICY
        set_batch_norm_affine_trainable(self.model, self.bn_affine and stage != POLICY)
        for variable in self.policy_network.variables:
            variable.trainable = stage in (POLICY, JOINT)

    def _head_variables(self):
        """Variables of the task's own layers: trainable leaves other than Reparam/BN."""
        return [
            variable
            for layer in weighted_leaf_layers(self.model)
            if layer.trainable
            and not isinstance(layer, (ReparamLayer, keras.layers.BatchNormalization))
            for variable in layer.weights
        ]

    def _supernet_variables(self):
        """The state "reparam" restarts from: deltas, BN variables, classifier.

        Every weight of the task's own layers is included, frozen or not:
        which layers are frozen is not always saved with a model (a custom
        layer's inner layers), and the snapshot must have the same variables
        whenever the trainer is built. Restoring a frozen weight is a no-op.
        """
        deltas = [layer.kernel_delta for layer in reparam_layers(self.model)]
        return deltas + self._start_variables()

    def _restore_supernet_state(self, reinitialize_deltas):
        variables = self._supernet_variables()
        if not bool(self.supernet_state_saved.numpy()):
            for saved, variable in zip(self.supernet_state, variables):
                saved.assign(variable)
            self.supernet_state_saved.assign(True)
        else:
            for variable, saved in zip(variables, self.supernet_state):
                variable.assign(saved)
        if not self.warm_start:
            for variable, initial in zip(self._start_variables(), self.initial_state):
                variable.assign(initial)
        if reinitialize_deltas:
            for layer in reparam_layers(self.model):
                layer.kernel_delta.assign(np.zeros(layer.kernel_delta.shape, "float32"))

    def _start_variables(self):
        """What a cold stage 2 restarts: every BN variable and the task layers' weights."""
        variables = [v for layer in batch_norm_layers(self.model) for v in layer.weights]
        return variables + [v for layer in _task_layers(self.model) for v in layer.weights]

    # -- forward ---------------------------------------------------------------
    def call(self, inputs, training=False):
        if self.stage in (POLICY, JOINT):
            batch = ops.shape(keras.tree.flatten(inputs)[0])[0]
            costs = ops.full((batch, 1), self.target_cost)
            gates = binarize(self.policy_network(costs, training=False))
            with example_gates(reparam_layers(self.model), gates):
                return self.model(inputs, training=False)
        return self.model(inputs, training=training)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        gated = self.stage in (POLICY, JOINT)
        with tf.GradientTape() as tape:
            if gated:
                batch = ops.shape(keras.tree.flatten(x)[0])[0]
                # Drawn for the global batch, each replica keeping its rows
                # (swr_keras.distribute): on one device, keras.random.uniform.
                costs = distribute.replica_uniform((batch, 1), self.seed_generator)
                logits = self.policy_network(costs, training=True)
                soft_and_hard = gumbel_softmax(
                    logits,
                    self.temperature,
                    hard=True,
                    uniform=distribute.replica_uniform(ops.shape(logits), self.seed_generator),
                )
                gates = soft_and_hard[..., 0]
                with example_gates(reparam_layers(self.model), gates):
                    # In the policy stage the super-net is frozen: BN in inference mode.
                    y_pred = self.model(x, training=self.stage == JOINT)
            else:
                y_pred = self.model(x, training=True)
            loss = self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            if gated:
                cost_loss = policy_loss(logits, costs, self.cost_weights, self.temperature)
                # A mean over this replica's examples, scaled as Keras scales
                # the compiled loss: the replicas' gradients sum to the global mean's.
                loss = loss + self.policy_loss_weight * distribute.scale_loss(cost_loss)
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))

        # Metrics sum over replicas: each adds its own (unscaled) mean, weighted by its batch.
        local_batch = ops.shape(keras.tree.flatten(x)[0])[0]
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(distribute.unscale_loss(loss), sample_weight=local_batch)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if gated:
            self.policy_loss_tracker.update_state(cost_loss, sample_weight=local_batch)
            self.added_ratio_tracker.update_state(
                gated_cost(ops.stop_gradient(gates), self.parameter_weights)
            )
            logs["policy_loss"] = self.policy_loss_tracker.result()
            logs["added_ratio"] = self.added_ratio_tracker.result()
        else:
            logs.pop("policy_loss", None)
            logs.pop("added_ratio", None)
        return logs

    def test_step(self, data):
        logs = super().test_step(data)
        logs.pop("policy_loss", None)
        logs.pop("added_ratio", None)
        return logs

    # -- serialisation ---------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "policy_network": keras.saving.serialize_keras_object(self.policy_network),
                "policy_loss_weight": self.policy_loss_weight,
                "cost_weighting": self.cost_weighting,
                "bn_affine": self.bn_affine,
                "binarization": self.binarization,
                "stage": self.stage,
                "target_cost": float(self.target_cost.numpy()),
                "temperature": float(self.temperature.numpy()),
                "seed": self.seed,
                "warm_start": self.warm_start,
                # A `.keras` file does not remember that a custom layer's inner
                # layers were frozen by `reparametrize`; without this they
                # would train after a reload.
                "frozen_layers": [
                    index
                    for index, layer in enumerate(_task_layers(self.model))
                    if not layer.trainable
                ],
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        layers = _task_layers(config["model"])
        for index in config.pop("frozen_layers", ()):
            layers[index].trainable = False
        config["policy_network"] = keras.saving.deserialize_keras_object(config["policy_network"])
        return cls(**config)


def _task_layers(model):
    """Leaf layers with weights that are neither reparametrised nor BN."""
    return [
        layer
        for layer in weighted_leaf_layers(model)
        if not isinstance(layer, (ReparamLayer, keras.layers.BatchNormalization))
    ]


def check_binarization(binarization):
    if binarization not in BINARIZATIONS:
        raise ValueError(
            f"binarization must be one of {BINARIZATIONS}. Received: binarization={binarization!r}"
        )
    return binarization


def _check_stage(stage):
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}. Received: stage={stage!r}")
    return stage


class TemperatureSchedule(keras.callbacks.Callback):
    """Cosine-anneals `SWRTrainer.temperature` from `start` to `end` over `fit`.

    Updated every batch; with `initial_epoch` (resuming) it continues where
    the interrupted run was.

    Args:
        start: temperature at the first step (2.0 in the paper).
        end: temperature at the last step (0.5 in the paper).
    """

    def __init__(self, start=2.0, end=0.5):
        super().__init__()
        if not (start > 0 and end > 0):
            raise ValueError(f"Temperatures must be > 0. Received: start={start}, end={end}")
        self.start = float(start)
        self.end = float(end)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        epochs = self.params.get("epochs") or 1
        steps = self.params.get("steps")
        if steps:
            progress = (self._epoch * steps + batch) / max(epochs * steps - 1, 1)
        else:
            progress = self._epoch / max(epochs - 1, 1)
        progress = min(max(progress, 0.0), 1.0)
        value = self.end + 0.5 * (self.start - self.end) * (1.0 + math.cos(math.pi * progress))
        self.model.temperature.assign(value)


def cosine_adam(learning_rate, total_steps):
    """Adam without weight decay, learning rate cosine-annealed to 0 over `total_steps`.

    The optimizer of every SWR stage in the paper (KWS); baselines trained
    beside SWR should use it too, for a like-for-like comparison.
    """
    return cosine_optimizer(learning_rate, total_steps)


OPTIMIZERS = ("adam", "sgd")


def cosine_optimizer(
    learning_rate, total_steps, *, optimizer="adam", momentum=0.9, weight_decay=0.0
):
    """Adam or SGD with momentum, learning rate cosine-annealed to 0 over `total_steps`.

    The paper's KWS stages use Adam without weight decay (`cosine_adam`), its
    image stages SGD (momentum 0.9) with weight decay 1e-4 or 0, following
    the TAPS and Rep-Net code.

    Args:
        learning_rate: the initial learning rate.
        total_steps: optimizer steps over which it decays to 0.
        optimizer: `"adam"` or `"sgd"`.
        momentum: SGD's momentum (Adam ignores it).
        weight_decay: decoupled weight decay (Keras' `weight_decay`); 0 for none.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: optimizer={optimizer!r}"
        )
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0. Received: weight_decay={weight_decay}")
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(int(total_steps), 1)
    )
    if optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=schedule, momentum=momentum, weight_decay=weight_decay or None
        )
    return keras.optimizers.Adam(learning_rate=schedule, weight_decay=weight_decay or None)


def fit_stage(
    trainer,
    stage,
    train_data,
    *,
    epochs,
    learning_rate,
    target_cost=None,
    validation_data=None,
    steps_per_epoch=None,
    temperature=(2.0, 0.5),
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
    callbacks=(),
    initial_epoch=0,
    reinitialize_deltas=True,
    verbose="auto",
    run_eagerly=False,
    optimizer=None,
):
    """Runs one SWR stage: `set_stage`, compile with Adam + cosine decay, `fit`.

    The learning rate is cosine-annealed from `learning_rate` to 0 over the
    stage and the temperature from `temperature[0]` to `temperature[1]`, as in
    the paper (KWS: Adam, no weight decay; images: pass `optimizer`).

    Args:
        trainer: an `SWRTrainer`.
        stage: `"supernet"`, `"policy"`, `"reparam"` or `"joint"`.
        train_data: a `tf.data.Dataset` of `(x, y)` batches (or anything
            `fit` takes).
        epochs: epochs of this stage.
        learning_rate: initial learning rate.
        target_cost: the target cost for `"reparam"`.
        validation_data, callbacks, initial_epoch, verbose: passed to `fit`.
        steps_per_epoch: needed when `train_data` has no known length.
        temperature: `(start, end)` of the temperature annealing.
        loss, metrics: passed to `compile`.
        reinitialize_deltas: see `SWRTrainer.set_stage`.
        run_eagerly: passed to `compile`; tracing dominates the time of a
            few steps on a large model (tests), not of a real training run.
        optimizer: `None` for `cosine_adam`, or a function `(learning_rate,
            total_steps) -> optimizer` (e.g. `Settings.make_optimizer` of a
            job, or `functools.partial(cosine_optimizer, optimizer="sgd")`).

    Returns:
        The `History` of `fit`.
    """
    if int(epochs) <= 0:
        raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0. Received: learning_rate={learning_rate}")
    steps = steps_per_epoch
    if steps is None:
        cardinality = (
            int(tf.data.experimental.cardinality(train_data))
            if isinstance(train_data, tf.data.Dataset)
            else -1
        )
        if cardinality <= 0:
            raise ValueError(
                "fit_stage needs the number of batches per epoch for its cosine "
                "schedule; the dataset's length is unknown. Pass steps_per_epoch=..."
            )
        steps = cardinality
    trainer.set_stage(stage, target_cost=target_cost, reinitialize_deltas=reinitialize_deltas)
    make_optimizer = cosine_adam if optimizer is None else optimizer
    trainer.compile(
        optimizer=make_optimizer(learning_rate, int(epochs) * int(steps)),
        loss=loss,
        metrics=list(metrics),
        run_eagerly=run_eagerly,
    )
    return trainer.fit(
        train_data,
        epochs=int(epochs),
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation_data,
        callbacks=[TemperatureSchedule(*temperature), *callbacks],
        verbose=verbose,
    )
