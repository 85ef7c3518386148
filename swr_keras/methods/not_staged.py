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
        model.set_stage("joint")
        optimizer = with_policy_rate(
            s.make_optimizer(s.learning_rate, stage.epochs * context.steps_per_epoch),
            model.policy_network.trainable_variables,
            s.policy_learning_rate / s.learning_rate,
        )
        model.compile(optimizer=optimizer, loss=self.loss(context.options, s), metrics=["accuracy"])
        model.fit(
            data,
            epochs=stage.epochs,
            initial_epoch=context.initial_epoch,
            steps_per_epoch=context.steps_per_epoch,
            callbacks=[TemperatureSchedule(*s.temperature), *context.callbacks],
            verbose=context.verbose,
        )


def with_policy_rate(optimizer, policy_variables, policy_rate_scale):
    """A copy of `optimizer` whose learning rate is `policy_rate_scale` times larger for the policy.

    One optimizer for the joint stage, so that its state checkpoints like
    any stage's, with two rates: the job's (a cosine schedule) for the
    deltas and the classifier, and the same schedule scaled for the policy
    network's variables (SWR's stage-1b rate over its stage-1a rate).

    Args:
        optimizer: a Keras optimizer (the job's `Settings.make_optimizer`).
        policy_variables: the policy network's trainable variables.
        policy_rate_scale: the policy's rate over the others', > 0.
    """
    if not policy_rate_scale > 0:
        raise ValueError(
            f"policy_rate_scale must be > 0. Received: policy_rate_scale={policy_rate_scale}"
        )
    base = type(optimizer)
    cls = type(f"PolicyRate{base.__name__}", (_PolicyRate, base), {})
    copy = cls.from_config(optimizer.get_config())
    copy.policy_rate_scale = float(policy_rate_scale)
    copy.policy_variables = list(policy_variables)
    return copy


class _PolicyRate:
    """Mixed into a Keras optimizer: scales the learning rate of `policy_variables`."""

    policy_rate_scale = 1.0
    policy_variables = ()
    _policy_indices = frozenset()

    def build(self, variables):
        super().build(variables)
        self._policy_indices = frozenset(
            self._get_variable_index(variable) for variable in self.policy_variables
        )

    def update_step(self, gradient, variable, learning_rate):
        if self._get_variable_index(variable) in self._policy_indices:
            learning_rate = learning_rate * self.policy_rate_scale
        super().update_step(gradient, variable, learning_rate)
