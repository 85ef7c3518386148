"""Controls without a policy: SWR's stage 2 on layers chosen by a fixed rule.

What does the learned policy add? These methods answer it by keeping
everything of SWR but the policy: the same reparametrised model
(`SWRTrainer`), the same stage-2 entry (`SWRTrainer.set_stage("reparam")`:
zero deltas, the start state SWR's stage 2 starts from), the same epochs
(`--reparam_epochs`), optimiser and loss, and the same stored task. Only the
gates differ, and no stage 1 is trained, since nothing here uses it:

- `smallest_first` ("smallest kernels first"): layers in increasing
  parameter count while they fit in the target cost
  (`policy_network.smallest_first_gates`).
- `random_layers` ("random layers at the same budget"): layers in a random
  order, kept while they fit (`policy_network.random_order_gates`). The
  order is drawn from the job's `--seed`, one order for every target cost
  of the job: each seed of a grid row is one draw, so the row's mean over
  seeds is a mean over as many draws, and every cell records its draw in
  its `gates` column.

Without stage 1 the trainer's start state is the pre-trained BN statistics
and the new classifier, which is what SWR's stage 2 restarts from (unless
SWR runs with `warm_start`, a variant).
"""

from swr_keras.methods.base import Stage
from swr_keras.methods.registry import register
from swr_keras.methods.swr import Swr
from swr_keras.reparametrize import reparametrize
from swr_keras.training import RANDOM, SMALLEST_FIRST, SWRTrainer


class _NoPolicy(Swr):
    """SWR's stage 2 on the gates of `rule` (a `training.BINARIZATIONS` control)."""

    rule = ""
    takes_target_costs = True
    has_policy = False
    searches_policy = False
    ablations = ()

    def build(self, base_model, settings, options):
        return SWRTrainer(
            reparametrize(base_model, bn_affine=settings.bn_affine),
            bn_affine=settings.bn_affine,
            binarization=self.rule,
            seed=settings.seed,
        )

    def shared_stages(self, settings, options):
        return []

    def variant_stages(self, settings, options, variant):
        return [
            Stage(
                f"stage2_{self.name}_c{variant:.2f}_e{settings.reparam_epochs}",
                settings.reparam_epochs,
                "reparam",
            )
        ]

    def begin_variant(self, model, settings, options, variant):
        model.set_stage("reparam", target_cost=variant)

    def controllability(self, model, costs):
        return None

    def policy_layers(self, model):
        return []


@register
class SmallestFirst(_NoPolicy):
    name = "smallest_first"
    label = "Smallest kernels first (no policy)"
    help = (
        "Control without a policy: SWR's stage 2 on the smallest kernels first, "
        "while they fit in the target cost; no stage 1."
    )
    rule = SMALLEST_FIRST


@register
class RandomLayers(_NoPolicy):
    name = "random_layers"
    label = "Random layers at the same budget (no policy)"
    help = (
        "Control without a policy: SWR's stage 2 on layers in a random order drawn from "
        "--seed, kept while they fit in the target cost; no stage 1."
    )
    rule = RANDOM
