"""The paper's ablation "not staged": policy network and deltas co-optimised in one stage.

SWR trains in two stages because "co-optimizing h and {w'_l} results in
sub-optimal convergence" (section 3.2); the ablation does exactly that and
nothing more: one `"joint"` stage (`SWRTrainer`) in which the policy
network, every delta, the BN statistics and the classifier learn together
from `c ~ U(0, 1)` with `L_target + lambda * L_policy`. It has no second
stage: for a target cost the policy is binarised and the co-optimised
deltas of the picked layers are the task (a second stage would make it
staged). The joint stage trains for the epochs SWR spends on one target
cost (1a + 1b + 2), and the policy network learns at SWR's stage-1b rate
(`policy_learning_rate`) while the rest learns at `learning_rate`, both
cosine-annealed, so that the two rows of Table 2 differ in the staging only.
What a task stores and deploys is SWR's.
"""

import keras

from swr_keras.methods.base import Stage
from swr_keras.methods.registry import register
from swr_keras.methods.swr import Swr
from swr_keras.training import TemperatureSchedule


@register
class NotStaged(Swr):
    name = "not_staged"
    label = "not staged"
    help = (
        "Ablation of SWR: policy network and deltas co-optimised in one stage (epochs of "
        "1a + 1b + 2), evaluated at each target cost's binarised policy without a stage 2."
    )
    ablations = ("cost_weighting",)

    def shared_stages(self, settings, options):
        epochs = settings.supernet_epochs + settings.policy_epochs + settings.reparam_epochs
        # The name carries the epochs: `reparam_epochs` is part of this shared stage.
        return [Stage(f"joint_not_staged_e{epochs}", epochs, "joint")]

    def variant_stages(self, settings, options, variant):
        return []

    def begin_variant(self, model, settings, options, variant):
        # The binarised policy's gates over the co-optimised deltas, BN
        # statistics and classifier, as the joint stage left them: every
        # target cost starts from that same state.
        model.set_stage("reparam", target_cost=variant, reinitialize_deltas=False)

    def fit(self, model, stage, data, context):
        s = context.settings
        total_steps = stage.epochs * context.steps_per_epoch
        model.set_stage("joint")
        model.compile(
            optimizer=PolicyRateAdam(
                keras.optimizers.schedules.CosineDecay(s.learning_rate, decay_steps=total_steps),
                policy_variables=model.policy_network.trainable_variables,
                policy_rate_scale=s.policy_learning_rate / s.learning_rate,
            ),
            loss=self.loss(context.options),
            metrics=["accuracy"],
        )
        model.fit(
            data,
            epochs=stage.epochs,
            initial_epoch=context.initial_epoch,
            steps_per_epoch=context.steps_per_epoch,
            callbacks=[TemperatureSchedule(*s.temperature), *context.callbacks],
            verbose=context.verbose,
        )


class PolicyRateAdam(keras.optimizers.Adam):
    """Adam whose learning rate is `policy_rate_scale` times larger for the policy network.

    One optimizer for the joint stage, so that its state checkpoints like
    any stage's, with two rates: `learning_rate` (a schedule) for the
    deltas and the classifier, and the same schedule scaled for the policy
    network's variables (SWR's stage-1b rate over its stage-1a rate).

    Args:
        learning_rate: the rate (or schedule) of every variable but the policy's.
        policy_variables: the policy network's trainable variables.
        policy_rate_scale: the policy's rate over `learning_rate`, > 0.
    """

    def __init__(self, learning_rate, policy_variables, policy_rate_scale, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not policy_rate_scale > 0:
            raise ValueError(
                f"policy_rate_scale must be > 0. Received: policy_rate_scale={policy_rate_scale}"
            )
        self.policy_rate_scale = float(policy_rate_scale)
        self._policy_variables = list(policy_variables)
        self._policy_indices = frozenset()

    def build(self, variables):
        super().build(variables)
        self._policy_indices = frozenset(
            self._get_variable_index(variable) for variable in self._policy_variables
        )

    def update_step(self, gradient, variable, learning_rate):
        if self._get_variable_index(variable) in self._policy_indices:
            learning_rate = learning_rate * self.policy_rate_scale
        super().update_step(gradient, variable, learning_rate)
