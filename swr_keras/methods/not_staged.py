"""The paper's ablation "not staged": policy and deltas learn together, then stage 2 as SWR.

`SWRTrainer`'s `"joint"` stage trains for the epochs of 1a + 1b; everything
else (stage 2, what a task stores, deployment) is SWR's.
"""

from swr_keras.methods.base import Stage
from swr_keras.methods.registry import register
from swr_keras.methods.swr import Swr


@register
class NotStaged(Swr):
    name = "not_staged"
    label = "not staged"
    help = (
        "Ablation of SWR: policy network and deltas co-optimised in one stage "
        "(epochs of 1a + 1b), then SWR's stage 2."
    )

    def shared_stages(self, settings, options):
        epochs = settings.supernet_epochs + settings.policy_epochs
        return [Stage("joint_not_staged", epochs, "joint")]
