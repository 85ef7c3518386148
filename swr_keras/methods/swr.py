"""SWR (the paper's method): super-net (1a) -> policy network (1b) -> reparametrisation (2).

Stage 1 is trained once per job and serves every target cost; stage 2
reparametrises, from zero deltas, the layers the policy picks for one target
cost. A task stores the picked layers' deltas, its classifier and the BN
running statistics (plus BN gamma/beta with `bn_affine`); it deploys merged
(`w0 + w'` folded into plain layers).
"""

import numpy as np

from swr_keras import cost as cost_lib
from swr_keras.merge import merge
from swr_keras.methods.base import Method, Stage
from swr_keras.methods.registry import register
from swr_keras.methods.stored_task import StoredTask
from swr_keras.model_walk import reparam_layers
from swr_keras.reparametrize import reparametrize
from swr_keras.task_state import TaskState, apply_task_state, extract_task_state
from swr_keras.training import SWRTrainer, fit_stage


@register
class Swr(Method):
    name = "swr"
    label = "SWR"
    help = (
        "SWR: super-net, policy network, then per target cost the deltas of the "
        "layers the policy picks; deploys merged."
    )
    takes_target_costs = True
    has_policy = True

    def build(self, base_model, settings, options):
        return SWRTrainer(
            reparametrize(base_model, bn_affine=settings.bn_affine),
            policy_loss_weight=settings.policy_loss_weight,
            bn_affine=settings.bn_affine,
            seed=settings.seed,
        )

    def shared_stages(self, settings, options):
        return [
            Stage("stage1a_supernet", settings.supernet_epochs, "supernet"),
            Stage("stage1b_policy", settings.policy_epochs, "policy"),
        ]

    def variant_stages(self, settings, options, variant):
        name = f"stage2_reparam_c{variant:.2f}_e{settings.reparam_epochs}"
        return [Stage(name, settings.reparam_epochs, "reparam")]

    def begin_variant(self, model, settings, options, variant):
        # Binarises the policy and restarts from the super-net state before
        # the stage's checkpoint (if any) is loaded over it.
        model.set_stage("reparam", target_cost=variant)

    def fit(self, model, stage, data, context):
        s = context.settings
        fit_stage(
            model,
            stage.kind,
            data,
            epochs=stage.epochs,
            learning_rate=s.policy_learning_rate if stage.kind == "policy" else s.learning_rate,
            target_cost=context.variant,
            steps_per_epoch=context.steps_per_epoch,
            temperature=s.temperature,
            loss=self.loss(context.options),
            callbacks=context.callbacks,
            initial_epoch=context.initial_epoch,
            verbose=context.verbose,
        )

    def deploy(self, model):
        return merge(model.model)

    def task_state(self, model):
        return _to_stored(extract_task_state(model.model))

    def restore(self, backbone, stored):
        return apply_task_state(backbone, _from_stored(stored))

    def result_columns(self, model, variant):
        gates = extract_task_state(model.model).gates
        return {
            "added_ratio": cost_lib.added_parameter_ratio(model.model),
            "reparametrised_layers": int(gates.sum()),
            "num_layers": len(reparam_layers(model.model)),
            "gates": [int(g) for g in gates],
        }

    def controllability(self, model, costs):
        return {
            c: (gates, cost_lib.added_parameter_ratio(model.model, gates))
            for c in costs
            for gates in [model.policy_network.binary_policy(c)]
        }

    def policy_layers(self, model):
        return reparam_layers(model.model)


def _to_stored(state):
    """`TaskState` -> `StoredTask`: deltas, classifier and BN gamma/beta are learnable;
    BN moving mean/variance are statistics; the gates and the layer count are other."""
    stored = StoredTask(
        other={
            "gates": np.asarray(state.gates, "uint8"),
            "num_weighted_layers": np.asarray(state.num_weighted_layers, "int64"),
        }
    )
    for position, delta in state.deltas.items():
        stored.learnable[f"delta/{position}"] = delta
    for kind in ("head", "low_rank"):  # the classifier; factored deltas (LoRA)
        for position, weights in getattr(state, kind).items():
            for j, value in enumerate(weights):
                stored.learnable[f"{kind}/{position}/{j}"] = value
    for position, values in state.batch_norm.items():
        # [mean, var] or [gamma, beta, mean, var]: the last two are statistics.
        for j, value in enumerate(values):
            group = stored.statistics if j >= len(values) - 2 else stored.learnable
            group[f"batch_norm/{position}/{j}"] = value
    return stored


def _from_stored(stored):
    state = TaskState(
        gates=np.asarray(stored.other["gates"], "float32"),
        num_weighted_layers=int(stored.other["num_weighted_layers"]),
    )
    groups = {}
    for name, value in {**stored.learnable, **stored.statistics}.items():
        kind, position, *index = name.split("/")
        if kind == "delta":
            state.deltas[int(position)] = value
        else:
            groups.setdefault((kind, int(position)), {})[int(index[0])] = value
    for (kind, position), members in groups.items():
        getattr(state, kind)[position] = [members[j] for j in sorted(members)]
    return state
