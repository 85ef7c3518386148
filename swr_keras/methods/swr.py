"""SWR (the paper's method): super-net (1a) -> policy network (1b) -> reparametrisation (2).

Stage 1 is trained once per job and serves every target cost; stage 2
reparametrises, from zero deltas, the layers the policy picks for one target
cost. A task stores the picked layers' deltas, its classifier and the BN
running statistics (plus BN gamma/beta with `bn_affine`); it deploys merged
(`w0 + w'` folded into plain layers).

The ablations of the paper's Table 2 and Fig. 2a are settings of the job
(`kws.job.Settings`): `cost_weighting="equal"` (equal r_l),
`supernet=False` (w/o super-net: no stage 1a, the policy network learns on
the pre-trained model, whose zero deltas make every gate equal for the
target loss) and `supernet_weight=True` (stage 2 starts from the super-net's
deltas). The super-net ignores the policy's settings and stage 1b ignores
stage 2's, so an ablation shares every stage it does not change.
"""

from swr_keras import cost as cost_lib
from swr_keras.merge import merge
from swr_keras.methods.base import Method, Stage
from swr_keras.methods.registry import register
from swr_keras.methods.stored_task import from_task_state, to_task_state
from swr_keras.model_walk import reparam_layers
from swr_keras.reparametrize import reparametrize
from swr_keras.task_state import apply_task_state, extract_task_state
from swr_keras.training import SWRTrainer, fit_stage

# What the super-net (stage 1a) does not depend on: the policy's settings
# and stage 2's. Stage 1b does not depend on stage 2's.
_STAGE2_SETTINGS = ("supernet_weight", "warm_start")
_SUPERNET_IGNORES = (
    "policy_epochs",
    "policy_learning_rate",
    "policy_loss_weight",
    "temperature",
    "cost_weighting",
    *_STAGE2_SETTINGS,
)


class ReparamMethod(Method):
    """What every method built on reparametrised layers stores and deploys.

    A task stores the gated layers' deltas, its classifier and BN (see
    `stored_task.from_task_state`), and deploys merged: `w0 + gate * w'` folded
    into plain layers. `model.model` is the reparametrised task model.
    """

    def deploy(self, model):
        return merge(model.model)

    def task_state(self, model):
        return from_task_state(extract_task_state(model.model))

    def restore(self, backbone, stored):
        return apply_task_state(backbone, to_task_state(stored))

    def result_columns(self, model, variant):
        gates = extract_task_state(model.model).gates
        return {
            "added_ratio": cost_lib.added_parameter_ratio(model.model),
            "reparametrised_layers": int(gates.sum()),
            "num_layers": len(reparam_layers(model.model)),
            "gates": [int(g) for g in gates],
        }


@register
class Swr(ReparamMethod):
    name = "swr"
    label = "SWR"
    help = (
        "SWR: super-net, policy network, then per target cost the deltas of the "
        "layers the policy picks; deploys merged."
    )
    takes_target_costs = True
    has_policy = True
    searches_policy = True
    ablations = ("cost_weighting", "supernet", "supernet_weight", "warm_start")

    def training_conditions(self, settings):
        search = settings.get("policy_epochs", 0) + (
            settings.get("supernet_epochs", 0) if settings.get("supernet", True) else 0
        )
        return {
            **super().training_conditions(settings),
            "schedule": (
                f"cosine to 0 over stage 2; stages 1a/1b ({search} epochs) only choose the gates "
                "and are the policy search's cost"
            ),
        }

    def build(self, base_model, settings, options):
        return SWRTrainer(
            reparametrize(base_model, bn_affine=settings.bn_affine),
            policy_loss_weight=settings.policy_loss_weight,
            cost_weighting=settings.cost_weighting,
            bn_affine=settings.bn_affine,
            binarization=settings.binarization,
            seed=settings.seed,
            warm_start=settings.warm_start,
        )

    def row_label(self, settings):
        label = self.label
        if settings.binarization == "budget":
            label += " + budget fill"
        if settings.warm_start:
            label += ", warm classifier"
        return label

    def shared_stages(self, settings, options):
        supernet = Stage(
            "stage1a_supernet", settings.supernet_epochs, "supernet", ignores=_SUPERNET_IGNORES
        )
        policy = Stage("stage1b_policy", settings.policy_epochs, "policy", _STAGE2_SETTINGS)
        return [supernet, policy] if settings.supernet else [policy]

    def variant_stages(self, settings, options, variant):
        name = f"stage2_reparam_c{variant:.2f}_e{settings.reparam_epochs}"
        if settings.binarization != "threshold":
            # Other gates, other stage 2; stage 1 is the same and is shared.
            name += f"_{settings.binarization}"
        return [Stage(name, settings.reparam_epochs, "reparam")]

    def begin_variant(self, model, settings, options, variant):
        # Binarises the policy and restarts from the start state (cold: the
        # pre-trained BN statistics and new classifier; warm: the super-net's)
        # before the stage's checkpoint (if any) is loaded over it.
        model.set_stage(
            "reparam", target_cost=variant, reinitialize_deltas=not settings.supernet_weight
        )

    def fit(self, model, stage, data, context):
        s = context.settings
        fit_stage(
            model,
            stage.kind,
            data,
            epochs=stage.epochs,
            learning_rate=s.policy_learning_rate if stage.kind == "policy" else s.learning_rate,
            target_cost=context.variant,
            reinitialize_deltas=not s.supernet_weight,
            steps_per_epoch=context.steps_per_epoch,
            temperature=s.temperature,
            loss=self.loss(context.options, s),
            optimizer=s.make_optimizer,
            callbacks=context.callbacks,
            initial_epoch=context.initial_epoch,
            verbose=context.verbose,
        )

    def controllability(self, model, costs):
        return {
            c: (gates, cost_lib.added_parameter_ratio(model.model, gates))
            for c in costs
            for gates in [model.deployment_policy(c)]
        }

    def policy_layers(self, model):
        return reparam_layers(model.model)
