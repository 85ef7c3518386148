"""The KWS transfer job: SWR's stages, its ablation and the two fine-tune baselines.

Every stage trains through `fit` with an `EpochCheckpoint`, so a killed job
run again with the same settings resumes from the last completed epoch of the
stage it was in. Stage 1 (super-net, policy network) is stored under a key
of the settings it depends on, so a new target cost reuses it; each target
cost's stage 2 (and each baseline) has its own checkpoint, named with its
epochs, and its result is kept once finished. Every checkpoint records the
settings it was trained with; `Job.check_resumable` refuses to resume one
under other settings.

Methods:
    `"swr"`: super-net (1a) -> policy network (1b) -> reparametrisation (2)
        for each target cost.
    `"not_staged"`: the ablation "not staged": policy and deltas learn
        together (`SWRTrainer`'s `"joint"` stage) for the epochs of 1a + 1b,
        then stage 2 as in `"swr"`.
    `"finetune_all"`: every weight of the pre-trained model (BN included)
        and a new classifier, Adam with cosine decay like SWR's stages.
    `"finetune_classifier"`: only the new classifier; the feature extractor
        is frozen, BN statistics included.
"""

import dataclasses
import hashlib
import json
import os

import keras
import numpy as np

from swr_keras import checkpointing
from swr_keras import cost as cost_lib
from swr_keras.kws import tasks
from swr_keras.merge import merge
from swr_keras.model_walk import reparam_layers
from swr_keras.models import task_model as task_model_lib
from swr_keras.reparametrize import reparametrize
from swr_keras.task_state import extract_task_state
from swr_keras.training import SWRTrainer, cosine_adam, fit_stage

METHODS = ("swr", "not_staged", "finetune_all", "finetune_classifier")
SWR_METHODS = ("swr", "not_staged")
CONTROLLABILITY_COSTS = tuple(round(0.1 * i, 1) for i in range(1, 10))
CHECKPOINT_VERSION = 2


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a job trains with; every field is a flag of `recipes/kws.py`."""

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

    def key(self, **extra):
        """A short hash of the settings that determine stage 1 (and `extra`)."""
        fields = dataclasses.asdict(self)
        fields.pop("reparam_epochs")
        fields.update(extra)
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


class Job:
    """One task, one pre-trained model, one method; trains and evaluates.

    Args:
        corpus: the task's `KwsCorpus` (`tasks.list_task`).
        pretrained: the pre-trained multi-lingual task model.
        settings: `Settings`.
        work_dir: checkpoints and TensorBoard logs go here.
        identity: extra strings that make stage 1 distinct (task, data,
            pre-trained file); part of the checkpoint key.
        verbose: Keras `fit` verbosity.
    """

    def __init__(self, corpus, pretrained, settings, work_dir, identity=(), verbose=2):
        self.corpus = corpus
        self.settings = settings
        self.work_dir = work_dir
        self.verbose = verbose
        self.identity = list(identity)
        self.key = settings.key(identity=self.identity)
        keras.utils.set_random_seed(settings.seed)
        self.base_model = task_model_lib.with_new_classifier(pretrained, len(corpus.class_names))
        self.steps = tasks.num_batches(corpus, "train", settings.batch_size, drop_remainder=True)
        if self.steps == 0:
            raise ValueError(
                f"The training split has fewer clips than one batch ({settings.batch_size}). "
                "Lower --batch_size."
            )
        self.test = tasks.evaluation_dataset(corpus, "test", batch_size=settings.batch_size)
        self.valid = tasks.evaluation_dataset(corpus, "valid", batch_size=settings.batch_size)
        self.input_shape = tuple(next(iter(self.test))[0].shape[1:])
        self.backbone_parameters = cost_lib.count_parameters(self.base_model)
        self.trainer = None

    # -- training ---------------------------------------------------------------
    def _directory(self, name):
        return os.path.join(
            self.work_dir, "checkpoints", f"{self.settings.method}-{self.key}", name
        )

    def _run(self, name, epochs):
        """What a stage's checkpoint records: the settings its training depends on."""
        settings = dataclasses.asdict(self.settings)
        settings.pop("reparam_epochs")  # Stage 1 is shared; stage 2 has `epochs`.
        return {
            "stage": name,
            "epochs": int(epochs),
            "identity": self.identity,
            # 2: the trainer's super-net state is among the saved variables; an
            # older checkpoint is refused in one line instead of failing to load.
            "checkpoint_version": CHECKPOINT_VERSION,
            **settings,
        }

    def _stage_one(self):
        """`(SWRTrainer stage, checkpoint name, epochs)` of stage 1, or of the joint ablation."""
        s = self.settings
        if s.method == "swr":
            return [
                ("supernet", "stage1a_supernet", s.supernet_epochs),
                ("policy", "stage1b_policy", s.policy_epochs),
            ]
        return [("joint", "joint_not_staged", s.supernet_epochs + s.policy_epochs)]

    def _stages(self, target_costs=()):
        """`(name, epochs)` of every stage this job trains for `target_costs`."""
        s = self.settings
        if s.method not in SWR_METHODS:
            return [(self._finetune_name(), s.reparam_epochs)]
        return [(name, epochs) for _, name, epochs in self._stage_one()] + [
            (self._reparam_name(c), s.reparam_epochs) for c in target_costs
        ]

    def _reparam_name(self, target_cost):
        return f"stage2_reparam_c{target_cost:.2f}_e{self.settings.reparam_epochs}"

    def _finetune_name(self):
        return f"{self.settings.method}_e{self.settings.reparam_epochs}"

    def check_resumable(self, target_costs=()):
        """Raises a one-line ValueError before any training if a checkpoint this
        job would resume was written under other settings (e.g. by an older
        version of the job in the same output directory)."""
        for name, epochs in self._stages(target_costs):
            checkpointing.check_resumable(self._directory(name), self._run(name, epochs))

    def _fit(self, model, name, epochs, fit):
        """Runs `fit(data, callbacks, initial_epoch)` with checkpoints; skips a finished stage."""
        directory = self._directory(name)
        checkpointing.check_resumable(directory, self._run(name, epochs))
        progress = checkpointing.read_progress(directory)
        if progress["complete"]:
            print(f"   {name}: finished earlier, reusing its checkpoint", flush=True)
            checkpointing.load_state(model, directory, include_optimizer=False)
            return
        done = progress["epochs_done"]
        print(
            f"== {name}: {epochs} epochs of {self.steps} steps"
            + (f", resuming after epoch {done}" if done else ""),
            flush=True,
        )
        data = tasks.epoch_datasets(
            self.corpus,
            batch_size=self.settings.batch_size,
            seed=self.settings.seed,
            first_epoch=done,
            epochs=epochs,
            augment=self.settings.augment,
        )
        callbacks = [
            checkpointing.EpochCheckpoint(directory, epochs, run=self._run(name, epochs)),
            keras.callbacks.TensorBoard(
                os.path.join(self.work_dir, "logs", name), write_graph=False
            ),
        ]
        fit(data, callbacks, done)

    def _fit_swr_stage(self, stage, name, epochs, target_cost=None):
        s = self.settings
        learning_rate = s.policy_learning_rate if stage == "policy" else s.learning_rate

        def fit(data, callbacks, initial_epoch):
            fit_stage(
                self.trainer,
                stage,
                data,
                epochs=epochs,
                learning_rate=learning_rate,
                target_cost=target_cost,
                steps_per_epoch=self.steps,
                temperature=s.temperature,
                loss=_loss(),
                callbacks=callbacks,
                initial_epoch=initial_epoch,
                verbose=self.verbose,
            )

        self._fit(self.trainer, name, epochs, fit)

    def train_policy(self):
        """Stage 1 (or the joint ablation); returns the trained `SWRTrainer`."""
        s = self.settings
        self.trainer = SWRTrainer(
            reparametrize(self.base_model, bn_affine=s.bn_affine),
            policy_loss_weight=s.policy_loss_weight,
            bn_affine=s.bn_affine,
            seed=s.seed,
        )
        for stage, name, epochs in self._stage_one():
            self._fit_swr_stage(stage, name, epochs)
        return self.trainer

    @staticmethod
    def controllability_costs():
        return CONTROLLABILITY_COSTS

    def settings_dict(self):
        return dataclasses.asdict(self.settings)

    def controllability(self, costs=CONTROLLABILITY_COSTS):
        """`{c: (gates, actual added-parameter ratio)}` of the binarised policy."""
        model = self.trainer.model
        return {
            c: (gates, cost_lib.added_parameter_ratio(model, gates))
            for c in costs
            for gates in [self.trainer.policy_network.binary_policy(c)]
        }

    def reparametrize_for(self, target_cost):
        """Stage 2 for one target cost; returns `(result row, merged model)`.

        A target cost finished by an earlier run is not retrained: its
        checkpoint is loaded and evaluated again.
        """
        name = self._reparam_name(target_cost)
        s = self.settings
        self.trainer.set_stage("reparam", target_cost=target_cost)
        self._fit_swr_stage("reparam", name, s.reparam_epochs, target_cost=target_cost)
        self.trainer.compile(loss=_loss(), metrics=["accuracy"])
        merged = merge(self.trainer.model)
        layers = reparam_layers(self.trainer.model)
        task = extract_task_state(self.trainer.model)
        batch = next(iter(self.test))[0]
        row = {
            "method": s.method,
            "target_cost": float(target_cost),
            **self._accuracies(self.trainer),
            "added_ratio": cost_lib.added_parameter_ratio(self.trainer.model),
            "reparametrised_layers": int(task.gates.sum()),
            "num_layers": len(layers),
            "gates": [int(g) for g in task.gates],
            "task_parameters": int(task.num_parameters),
            "mult_ratio": cost_lib.multiply_ratio(merged, self.base_model, self.input_shape),
            "merged_max_abs_diff": float(
                np.max(
                    np.abs(
                        merged(batch, training=False) - self.trainer.model(batch, training=False)
                    )
                )
            ),
        }
        return self._with_parameter_columns(row), merged

    def finetune(self):
        """A fine-tune baseline; returns `(result row, trained model)`."""
        s = self.settings
        classifier_only = s.method == "finetune_classifier"
        model = self.base_model
        task_model_lib.feature_extractor(model).trainable = not classifier_only
        model.compile(
            optimizer=cosine_adam(s.learning_rate, s.reparam_epochs * self.steps),
            loss=_loss(),
            metrics=["accuracy"],
        )

        def fit(data, callbacks, initial_epoch):
            model.fit(
                data,
                epochs=s.reparam_epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=self.steps,
                callbacks=callbacks,
                verbose=self.verbose,
            )

        self._fit(model, self._finetune_name(), s.reparam_epochs, fit)
        task_parameters = cost_lib.count_parameters(
            task_model_lib.classifier(model) if classifier_only else model
        )
        row = {
            "method": s.method,
            "target_cost": None,
            **self._accuracies(model),
            "task_parameters": int(task_parameters),
            "mult_ratio": 1.0,
        }
        return self._with_parameter_columns(row), model

    # -- evaluation -------------------------------------------------------------
    def _accuracies(self, model):
        return {
            f"{name}_accuracy": float(model.evaluate(data, verbose=0)[1])
            for name, data in (("test", self.test), ("validation", self.valid))
        }

    def _with_parameter_columns(self, row):
        row["backbone_parameters"] = self.backbone_parameters
        row["parameters_backbone_plus_task"] = self.backbone_parameters + row["task_parameters"]
        row["param_ratio_two_tasks"] = cost_lib.multi_task_parameter_ratio(
            self.backbone_parameters, [row["task_parameters"]] * 2
        )
        return row


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
