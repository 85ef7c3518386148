"""The transfer job of every task: any registered method (`swr_keras.methods`), one task.

The job knows neither a method nor a task by name. A task is a `TaskData`
(the keyword-spotting tasks' is `swr_keras.kws.job.KwsData`, the image
tasks' `swr_keras.image.data.ImageData`); a method is an entry of the
registry. The job builds the method's model, trains the method's stages,
evaluates, and accounts for what every method stores the same way. Every
stage trains through `fit` with an `EpochCheckpoint`, so a killed job run
again with the same settings resumes from the last completed epoch of the
stage it was in. Shared stages (SWR's super-net and policy network) are
stored under a key of the settings they depend on, so a new target cost
reuses them; each variant's stages (a target cost's stage 2, a baseline's
one stage) have their own checkpoints, named with their epochs, and their
result is kept once finished. Every checkpoint records the settings it was
trained with; `TransferJob.check_resumable` refuses to resume one under
other settings.

Every stage trains under the job's `tf.distribute` strategy (one device by
default; `swr_keras.distribute`): models and optimizers are created in its
scope and `fit` distributes the batches. Under several workers only the
chief writes checkpoints, logs and task files; the others read the chief's
checkpoints to resume, so the work directory must be on shared storage.

Accounting, alike for every method: `task_parameters` is the learnable
tensors the task stores (`StoredTask.learnable`; BN running statistics are
not parameters), `task_bytes` the size of the stored task file (statistics
included), and `mult_ratio` is measured on the deployed model.
"""

import dataclasses
import hashlib
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from swr_keras import checkpointing, distribute, losses, training
from swr_keras import cost as cost_lib
from swr_keras import methods as methods_lib
from swr_keras.models import task_model as task_model_lib
from swr_keras.validation_curve import ValidationCurve

CONTROLLABILITY_COSTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
CHECKPOINT_VERSION = 4
# The ablation settings of `Settings` (a method honours those in `Method.ablations`).
ABLATIONS = ("cost_weighting", "supernet", "supernet_weight", "warm_start")


# Settings added after the KWS job had checkpoints: recorded (and part of the
# checkpoint key) only when they differ from these defaults, so the keys of
# runs made before them stay valid.
_LATER_DEFAULTS = {
    "optimizer": "adam",
    "momentum": 0.9,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "cost_weighting": losses.PARAMETERS,
    "supernet": True,
    "supernet_weight": False,
    "warm_start": False,
    "binarization": "threshold",
}
# The settings of SWR's policy search (stages 1a and 1b). A method that does
# not search (`Method.searches_policy`) never reads them: they are left out of
# its checkpoints' key and record, and of its grid cells' identity.
POLICY_SEARCH_SETTINGS = (
    "supernet_epochs",
    "policy_epochs",
    "policy_learning_rate",
    "policy_loss_weight",
    "temperature",
)
# Settings that change only the variant stages, which name them: left out of
# the shared stages' key and record so that those stages are shared.
_VARIANT_ONLY = ("reparam_epochs", "binarization")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a job trains with; every field is a flag of the recipes (`recipes/kws.py`,
    `recipes/sketch.py`).

    `options` holds the method's own settings (its `Options` fields) as a
    dict; empty for methods without any, which keeps their checkpoint keys
    as they were before methods had options. `optimizer` (`"adam"` or
    `"sgd"`, with `momentum`), `weight_decay` and `label_smoothing` apply to
    every stage of SWR and of the baselines that take the job's optimiser
    (`training.cosine_optimizer`); the KWS paper's setting is Adam without
    either, the image paper's SGD with label smoothing 0.3.

    The ablations of the paper's Table 2 and Fig. 2a (SWR family only, see
    `Method.ablations`): `cost_weighting="equal"` ("equal r_l": every
    layer's cost weight 1/L in the policy loss), `supernet=False` ("w/o
    super-net": the policy network learns on the pre-trained model, stage
    1a skipped) and `supernet_weight=True` ("+ super-net weight": stage 2
    starts from the super-net's deltas instead of zero). `warm_start=True`
    ("SWR, warm classifier", a variant beyond the paper) starts stage 2's
    classifier and BN statistics from the super-net's instead of from the
    pre-trained statistics and the new classifier every baseline starts from.
    """

    method: str = "swr"
    supernet_epochs: int = 2
    policy_epochs: int = 3
    reparam_epochs: int = 3
    learning_rate: float = 1e-3
    policy_learning_rate: float = 1e-2
    policy_loss_weight: float = 1.0
    temperature: tuple = (2.0, 0.5)
    bn_affine: bool = False
    batch_size: int = 50
    augment: bool = True
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    binarization: str = "threshold"
    cost_weighting: str = losses.PARAMETERS
    supernet: bool = True
    supernet_weight: bool = False
    warm_start: bool = False

    def __post_init__(self):
        weightings = (losses.PARAMETERS, losses.EQUAL)
        if self.cost_weighting not in weightings:
            raise ValueError(
                f"--cost_weighting must be one of {', '.join(weightings)}. "
                f"Received: cost_weighting={self.cost_weighting!r}"
            )
        if self.supernet_weight and not self.supernet:
            raise ValueError(
                "--supernet_weight starts stage 2 from the super-net's deltas, which "
                "--nosupernet does not train. Received: supernet=False, supernet_weight=True; "
                "drop one of the two flags."
            )

    def ablations(self):
        """`{name: value}` of the ablation settings that differ from their defaults."""
        return {
            name: getattr(self, name)
            for name in ABLATIONS
            if getattr(self, name) != _LATER_DEFAULTS[name]
        }

    def recorded(self):
        """The settings as a dict; `options` left out when empty, later fields at their default."""
        fields = dataclasses.asdict(self)
        if not fields["options"]:
            fields.pop("options")
        for name, default in _LATER_DEFAULTS.items():
            if fields[name] == default:
                fields.pop(name)
        return fields

    def key(self, ignore=(), **extra):
        """A short hash of the settings that determine a shared stage (and `extra`).

        `ignore` names settings the stage does not depend on (`Stage.ignores`),
        so that jobs differing only in those share the stage's checkpoint.
        """
        fields = self.recorded()
        for name in (*_VARIANT_ONLY, *ignore):
            fields.pop(name, None)
        fields.update(extra)
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def make_optimizer(self, learning_rate, total_steps):
        """The stage optimiser these settings name, cosine-annealed over `total_steps`."""
        return training.cosine_optimizer(
            learning_rate,
            total_steps,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )


def check_ablations(settings):
    """A one-line ValueError if `settings` sets an ablation its method does not honour."""
    method = methods_lib.get(settings.method)
    for name, value in settings.ablations().items():
        if name not in method.ablations:
            takers = " and ".join(m.name for m in methods_lib.methods() if name in m.ablations)
            raise ValueError(
                f"--{name} is an ablation of {takers}, not of --method={settings.method}. "
                f"Received: --{name}={value}"
            )


class TaskData:
    """What a job needs of a task; subclass it for a new kind of task.

    Attributes:
        class_names: the task's classes, in label order.

    Every dataset yields `(inputs, integer labels)` batches; the inputs are
    what the backbone takes (log-mel features, normalised images).
    """

    class_names = ()

    def num_train_batches(self, batch_size):
        """Full training batches per epoch."""
        raise NotImplementedError

    def training_batches(self, *, batch_size, seed, first_epoch, epochs, augment):
        """Training batches of epochs `first_epoch .. epochs - 1`, one stream.

        Each epoch's order and augmentation must be a function of `(seed,
        epoch)` only, so that a resumed run sees the batches an uninterrupted
        run saw; full batches only.
        """
        raise NotImplementedError

    def evaluation_batches(self, split, *, batch_size):
        """Batches of `"test"` or `"valid"` without augmentation, or `None` if the
        task has no such split."""
        raise NotImplementedError

    def representative_inputs(self, count, *, seed):
        """`count` un-augmented training inputs (NumPy), for int8 calibration."""
        raise NotImplementedError


class TransferJob:
    """One task, one pre-trained model, one method; trains and evaluates.

    Args:
        data: the task's `TaskData`.
        pretrained: the pre-trained task model (its classifier is replaced).
        settings: `Settings`; `settings.method` names a registered method.
        work_dir: checkpoints, TensorBoard logs and stored task states go here.
        identity: extra strings that make the shared stages distinct (task,
            data, pre-trained file); part of the checkpoint key.
        verbose: Keras `fit` verbosity.
        strategy: the `tf.distribute.Strategy` every stage trains under
            (`distribute.strategy_from_flag`); default: one device.
        validation_curve: score the validation split after every epoch of
            every stage, into the stage's TensorBoard logs
            (`validation_curve.ValidationCurve`): the curve that shows where a
            schedule has converged. Costs one validation pass per epoch and
            changes no result.

    Use: `check_resumable(target_costs)`, then `run(target_costs)` (or
    `train_shared()` and `train_variant(v)` for each of `variants(...)`).
    """

    def __init__(
        self,
        data,
        pretrained,
        settings,
        work_dir,
        identity=(),
        verbose=2,
        strategy=None,
        validation_curve=False,
    ):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = distribute.is_chief(self.strategy)
        distribute.check_batch_size(settings.batch_size, self.strategy)
        self.method = methods_lib.get(settings.method)
        self.options = self.method.options(settings.options)
        check_ablations(settings)
        self.data = data
        self.settings = settings
        self.work_dir = work_dir
        self.verbose = verbose
        self.validation_curve = bool(validation_curve)
        self.identity = list(identity)
        self.unread = () if self.method.searches_policy else POLICY_SEARCH_SETTINGS
        self.key = settings.key(ignore=self.unread, identity=self.identity)
        keras.utils.set_random_seed(settings.seed)
        with self.strategy.scope():
            self.base_model = task_model_lib.with_new_classifier(pretrained, len(data.class_names))
        self.steps = data.num_train_batches(settings.batch_size)
        if self.steps == 0:
            raise ValueError(
                f"The training split has fewer examples than one batch ({settings.batch_size}). "
                "Lower --batch_size."
            )
        self.test = data.evaluation_batches("test", batch_size=settings.batch_size)
        self.valid = data.evaluation_batches("valid", batch_size=settings.batch_size)
        self.input_shape = tuple(next(iter(self.test))[0].shape[1:])
        self.backbone_parameters = cost_lib.count_parameters(self.base_model)
        self.model = None

    # -- stages -----------------------------------------------------------------
    def _ignored(self, name):
        """The settings the shared stage `name` does not depend on (`Stage.ignores`)."""
        for stage in self.method.shared_stages(self.settings, self.options):
            if stage.name == name:
                return tuple(stage.ignores)
        return ()

    def _directory(self, name):
        """A stage's checkpoint directory, keyed by the settings it depends on.

        A shared stage that ignores some settings (SWR's super-net ignores
        the policy's) gets the key of the others, so every job that differs
        only in the ignored settings finds and reuses the same checkpoint.
        """
        ignored = self._ignored(name)
        key = (
            self.settings.key(ignore=(*ignored, *self.unread), identity=self.identity)
            if ignored
            else self.key
        )
        return os.path.join(self.work_dir, "checkpoints", f"{self.settings.method}-{key}", name)

    def _run(self, name, epochs):
        """What a stage's checkpoint records: the settings its training depends on."""
        settings = self.settings.recorded()
        for field in _VARIANT_ONLY:  # Shared stages outlive them; variant stages name them.
            settings.pop(field, None)
        for ignored in (*self._ignored(name), *self.unread):
            settings.pop(ignored, None)
        return {
            "stage": name,
            "epochs": int(epochs),
            "identity": self.identity,
            # 2: the SWR trainer's super-net state is among the saved variables;
            # 3: stage 2 deploys budget gates (`binarization`), not the threshold;
            # 4: SWR's stage 2 restarts its classifier and BN statistics (`warm_start`).
            # An older checkpoint is refused in one line instead of being reused.
            "checkpoint_version": CHECKPOINT_VERSION,
            **settings,
        }

    def variants(self, target_costs=()):
        """The target costs of a `takes_target_costs` method, else `[None]`."""
        return list(target_costs) if self.method.takes_target_costs else [None]

    def _stages(self, target_costs=()):
        """Every `Stage` this job trains for `target_costs`."""
        s, options = self.settings, self.options
        stages = list(self.method.shared_stages(s, options))
        for variant in self.variants(target_costs):
            stages += self.method.variant_stages(s, options, variant)
        return stages

    def check_resumable(self, target_costs=()):
        """Raises a one-line ValueError before any training if a checkpoint this
        job would resume was written under other settings (e.g. by an older
        version of the job in the same output directory), or if the workers of
        a multi-worker run see different checkpoints."""
        for stage in self._stages(target_costs):
            directory = self._directory(stage.name)
            checkpointing.check_resumable(directory, self._run(stage.name, stage.epochs))
            # Workers that see different checkpoints (no shared storage) cannot resume together.
            distribute.agree_across_workers(
                checkpointing.read_progress(directory)["epochs_done"], self.strategy
            )

    def _fit(self, stage, variant):
        """Trains one stage with checkpoints; loads a finished stage instead."""
        name, epochs = stage.name, stage.epochs
        directory = self._directory(name)
        checkpointing.check_resumable(directory, self._run(name, epochs))
        progress = checkpointing.read_progress(directory)
        # Every worker must resume the same epoch (the chief's checkpoints, shared).
        distribute.agree_across_workers(progress["epochs_done"], self.strategy)
        if progress["complete"]:
            print(f"   {name}: finished earlier, reusing its checkpoint", flush=True)
            checkpointing.load_state(self.model, directory, include_optimizer=False)
            return
        done = progress["epochs_done"]
        print(
            f"== {name}: {epochs} epochs of {self.steps} steps"
            + (f", resuming after epoch {done}" if done else ""),
            flush=True,
        )
        data = self.data.training_batches(
            batch_size=self.settings.batch_size,
            seed=self.settings.seed,
            first_epoch=done,
            epochs=epochs,
            augment=self.settings.augment,
        )
        callbacks = [
            checkpointing.EpochCheckpoint(
                directory, epochs, run=self._run(name, epochs), write=self.chief
            )
        ]
        if self.validation_curve:
            # Before TensorBoard, which writes the epoch logs it completes.
            callbacks.append(ValidationCurve(self.valid))
        if self.chief:
            callbacks.append(
                keras.callbacks.TensorBoard(
                    os.path.join(self.work_dir, "logs", name), write_graph=False
                )
            )
        context = methods_lib.FitContext(
            settings=self.settings,
            options=self.options,
            steps_per_epoch=self.steps,
            callbacks=callbacks,
            initial_epoch=done,
            verbose=self.verbose,
            variant=variant,
        )
        with distribute.training_scope(self.model, self.strategy):
            self.method.fit(self.model, stage, data, context)

    def train_shared(self):
        """Builds the method's model and trains its shared stages; returns the model."""
        with self.strategy.scope():
            self.model = self.method.build(self.base_model, self.settings, self.options)
        for stage in self.method.shared_stages(self.settings, self.options):
            self._fit(stage, None)
        return self.model

    def train_variant(self, variant=None):
        """Trains one variant (a target cost, or `None`); returns `(result row, deployed model)`.

        A variant finished by an earlier run is not retrained: its checkpoint
        is loaded and evaluated again.
        """
        if self.model is None:
            self.train_shared()
        s, options, model = self.settings, self.options, self.model
        self.method.begin_variant(model, s, options, variant)
        for stage in self.method.variant_stages(s, options, variant):
            self._fit(stage, variant)
        with self.strategy.scope():
            model.compile(loss=self.method.loss(options, s), metrics=["accuracy"])
        deployed = self.method.deploy(model)
        batch = next(iter(self.test))[0]
        row = {
            "method": s.method,
            "target_cost": None if variant is None else float(variant),
            **self._accuracies(model),
            **self.method.result_columns(model, variant),
            # Shapes only: `base_model` may be the trained model (fine-tuning).
            "mult_ratio": cost_lib.multiply_ratio(deployed, self.base_model, self.input_shape),
            "deployed_max_abs_diff": float(
                np.max(np.abs(deployed(batch, training=False) - model(batch, training=False)))
            ),
        }
        row.update(self._accounting(model, variant))
        return row, deployed

    def run(self, target_costs=()):
        """Yields `(result row, deployed model)` for every variant."""
        for variant in self.variants(target_costs):
            yield self.train_variant(variant)

    # -- policy (methods with `has_policy`) ---------------------------------------
    @staticmethod
    def controllability_costs():
        return CONTROLLABILITY_COSTS

    def settings_dict(self):
        return dataclasses.asdict(self.settings)

    def controllability(self, costs=CONTROLLABILITY_COSTS):
        """`{c: (gates, actual added-parameter ratio)}` of the binarised policy,
        or `None` for a method without a policy."""
        return self.method.controllability(self.model, costs)

    def policy_layers(self):
        return self.method.policy_layers(self.model)

    # -- evaluation and accounting ------------------------------------------------
    def _accuracies(self, model):
        return {
            f"{name}_accuracy": float(model.evaluate(data, verbose=0)[1])
            for name, data in (("test", self.test), ("validation", self.valid))
            if data is not None
        }

    def task_state_path(self, variant):
        name = self.settings.method
        # Ablations of one method share a work directory (and their stage 1).
        ablations = {**self.settings.ablations(), "bn_affine": self.settings.bn_affine}
        if self.method.has_policy and self.settings.binarization != _LATER_DEFAULTS["binarization"]:
            # "SWR + budget fill" shares SWR's work directory, not its task files.
            ablations["binarization"] = self.settings.binarization
        name += "".join(
            f"_{key}" if value is True else f"_{key}-{value}"
            for key, value in sorted(ablations.items())
            if value is not False
        )
        if variant is not None:
            name += f"_c{round(100 * variant):03d}"
        return os.path.join(self.work_dir, "task_states", f"{name}.npz")

    def _accounting(self, model, variant):
        """#Param. and bytes from what the task stores, the same for every method."""
        stored = self.method.task_state(model)
        path = self.task_state_path(variant)
        if self.chief:
            task_bytes = stored.save(path)
        else:  # the chief stores it; the size is measured on a scratch copy
            with tempfile.TemporaryDirectory() as scratch:
                task_bytes = stored.save(os.path.join(scratch, os.path.basename(path)))
        backbone = self.backbone_parameters
        return {
            "task_parameters": stored.num_parameters,
            "task_statistics": stored.num_statistics,
            "task_bytes": int(task_bytes),
            "task_state": path,
            "backbone_parameters": backbone,
            "parameters_backbone_plus_task": backbone + stored.num_parameters,
            "param_ratio_two_tasks": cost_lib.multi_task_parameter_ratio(
                backbone, [stored.num_parameters] * 2
            ),
        }
