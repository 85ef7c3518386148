"""The contract every transfer method of the KWS job fulfils.

A method turns the pre-trained task model (feature extractor `f` + a new
classifier `g`, see `swr_keras.models.task_model`) into a trainable model,
trains it in named stages, and says what one task stores and what it deploys.
The job (`swr_keras.transfer_job.TransferJob`) runs any registered method the same way:

1. `build` once; every stage `fit`s and checkpoints this one model.
2. `shared_stages`, trained once per job (SWR's super-net and policy network).
3. For each variant -- each target cost of the SWR family (`takes_target_costs`),
   or the single variant `None` of the others -- `begin_variant`, then
   `variant_stages`.
4. `deploy` (a plain merged model where the method allows it, otherwise the
   model with its extra modules), `task_state` (what the task stores on top
   of the shared backbone), `result_columns` (the method's own columns).

Every stage trains through `fit` in `Method.fit`, with the job's callbacks
(per-epoch checkpoint, TensorBoard) and `initial_epoch`, so a killed job
resumes at the last completed epoch of any method's stage.
"""

import dataclasses

import keras

from swr_keras.losses import SparseLabelSmoothingCrossentropy


@dataclasses.dataclass(frozen=True)
class Stage:
    """One `fit` of a method.

    Attributes:
        name: the checkpoint's directory name under the job's work directory
            (and the TensorBoard run). Stage names must be unique within a
            method and change whenever the stage's schedule changes (e.g. end
            in `_e<epochs>`), so that a checkpoint of another schedule is
            never resumed.
        epochs: epochs of the stage.
        kind: what the method trains in it, for `Method.fit` (e.g. SWR's
            `"supernet"`); free-form.
        ignores: names of `Settings` fields a shared stage's training does
            not depend on (e.g. the policy's settings for SWR's super-net):
            jobs that differ only in them share the stage's checkpoint.
    """

    name: str
    epochs: int
    kind: str = ""
    ignores: tuple = ()


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a method without settings of its own."""


@dataclasses.dataclass
class FitContext:
    """What `Method.fit` needs besides the model and the data.

    Attributes:
        settings: the job's `Settings` (learning rate, epochs, seed, ...).
        options: the method's `Options` instance.
        steps_per_epoch: batches per epoch (the data stream is endless).
        callbacks: pass to `fit` (checkpoint, TensorBoard).
        initial_epoch: pass to `fit` (the resumed epoch).
        verbose: pass to `fit`.
        variant: the target cost of a variant stage, or `None`.
    """

    settings: object
    options: object
    steps_per_epoch: int
    callbacks: list
    initial_epoch: int
    verbose: object
    variant: object = None


class Method:
    """Base class of a transfer method; subclass it and `registry.register` it.

    Class attributes:
        name: the registry key and the `--method` value, lower_snake_case.
        label: the table's row label, e.g. `"fine-tune all"`.
        help: one sentence for `--help`: what the method trains and stores.
        takes_target_costs: True for the SWR family: one variant per
            `--target_cost`; False: one variant, `None`.
        deploys_merged: True if `deploy` returns a model of plain Keras
            layers with the backbone's cost (#Mult. 1.00x).
        has_policy: True if `controllability` answers (SWR's policy network).
        searches_policy: True if the method trains SWR's policy search, i.e.
            reads the job's `transfer_job.POLICY_SEARCH_SETTINGS` (stage 1a
            and 1b epochs, the policy's learning rate, loss weight and
            temperature). A method that does not is keyed and identified
            without them, so a longer policy stage never retrains it.
        ablations: the ablation settings of the job (`kws.job.ABLATIONS`,
            e.g. `"cost_weighting"`) the method honours; the job refuses
            any other one set away from its default.
        Options: a frozen dataclass of the method's own settings. Each field
            has a default and `metadata={"help": "..."}`; its name starts
            with `<name>_` (it becomes the flag `--<field name>`).
        reference: where the method's optimiser and schedule come from (its
            official code or the paper), for the "Training conditions" list
            under Table 1 (`training_conditions`).
        deviations: each way ours departs from `reference`, with its reason,
            one sentence each; `()` for none.
    """

    name = ""
    label = ""
    help = ""
    takes_target_costs = False
    deploys_merged = True
    has_policy = False
    searches_policy = False
    ablations = ()
    Options = NoOptions
    reference = "the SWR paper, section 4: Adam, cosine learning rate, no weight decay"
    deviations = ()

    # -- settings -----------------------------------------------------------------
    def options(self, values=None):
        """The `Options` instance from a dict of field values (defaults for the rest).

        Raises a one-line ValueError for an unknown field; subclasses add
        range checks in `check_options`.
        """
        values = dict(values or {})
        fields = {field.name for field in dataclasses.fields(self.Options)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(
                f"Method {self.name!r} has no option {unknown[0]!r}. Its options: "
                f"{', '.join(sorted(fields)) or 'none'}. Received: {values}"
            )
        options = self.Options(**values)
        self.check_options(options)
        return options

    def check_options(self, options):
        """Raises a one-line ValueError naming a bad option value and the fix."""

    def loss(self, options, settings=None):
        """The task loss of every stage (logits in), with the job's label smoothing."""
        del options
        smoothing = getattr(settings, "label_smoothing", 0.0)
        if smoothing:
            return SparseLabelSmoothingCrossentropy(smoothing)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def training_conditions(self, settings):
        """What the method trains with on the target task, for the list under Table 1.

        Args:
            settings: a job's settings as a cell records them
                (`Settings.recorded()`: a dict, method options under
                `"options"`).

        Returns:
            A dict: `optimizer`, `learning_rate`, `schedule`, `epochs` (on
            the target task), `source` (`reference`) and `deviations`.
        """
        return {
            "optimizer": job_optimizer(settings),
            "learning_rate": settings.get("learning_rate"),
            "schedule": "cosine to 0 over the stage's steps",
            "epochs": settings.get("reparam_epochs"),
            "source": self.reference,
            "deviations": tuple(self.deviations),
        }

    def recorded_options(self, settings):
        """The `Options` of recorded `settings`: its known fields, defaults for the rest."""
        fields = {field.name for field in dataclasses.fields(self.Options)}
        given = settings.get("options") or {}
        return self.options({k: v for k, v in given.items() if k in fields})

    # -- training -----------------------------------------------------------------
    def build(self, base_model, settings, options):
        """Returns the model every stage fits and checkpoints.

        Args:
            base_model: the pre-trained task model with a new classifier for
                the task's classes (`models.with_new_classifier`); the method
                may use it as is or wrap/copy it.
            settings: the job's `Settings`.
            options: the method's `Options`.
        """
        raise NotImplementedError

    def shared_stages(self, settings, options):
        """`[Stage]` trained once per job, before any variant."""
        del settings, options
        return []

    def variant_stages(self, settings, options, variant):
        """`[Stage]` of one variant (a target cost, or `None`)."""
        raise NotImplementedError

    def begin_variant(self, model, settings, options, variant):
        """Prepares `model` for a variant before its stages (or their checkpoints) load."""

    def fit(self, model, stage, data, context):
        """Trains `model` for one `Stage` through `fit`.

        Compile here (each stage has its own optimizer) and call `fit` with
        `epochs=stage.epochs`, `initial_epoch=context.initial_epoch`,
        `steps_per_epoch=context.steps_per_epoch` and
        `callbacks=context.callbacks` (plus any of your own).
        """
        raise NotImplementedError

    # -- what a task stores and deploys -------------------------------------------
    def deploy(self, model):
        """The deployable model (a Functional Keras model taking the features)."""
        raise NotImplementedError

    def task_state(self, model):
        """What one task stores on top of the backbone: a `StoredTask`."""
        raise NotImplementedError

    def restore(self, backbone, stored):
        """The deployable model of a task from the plain `backbone` and its `StoredTask`.

        `backbone` is the pre-trained task model with the task's (untrained)
        classifier; it is not modified.
        """
        raise NotImplementedError

    def row_label(self, settings):
        """The label of this method's rows under `settings` (a variant may add to `label`)."""
        del settings
        return self.label

    def result_columns(self, model, variant):
        """Extra columns of the result row (e.g. SWR's gates)."""
        del model, variant
        return {}

    def controllability(self, model, costs):
        """`{c: (gates, added ratio)}` for `has_policy` methods; `None` otherwise."""
        del model, costs
        return None

    def policy_layers(self, model):
        """The layers `controllability` decides over, for the policy map."""
        del model
        return []


def job_optimizer(settings):
    """The job's optimiser named by recorded `settings`: `"Adam"`, `"SGD (momentum 0.9)"`, ..."""
    name = settings.get("optimizer", "adam")
    text = f"SGD (momentum {settings.get('momentum', 0.9):g})" if name == "sgd" else "Adam"
    if settings.get("weight_decay"):
        text += f", weight decay {settings['weight_decay']:g}"
    return text
