"""`PolicyNetwork`: maps a target cost to per-layer reparametrisation logits."""

import keras
import numpy as np
from keras import ops

from swr_keras.validation import check_target_cost


@keras.saving.register_keras_serializable(package="swr_keras")
class PolicyNetwork(keras.Model):
    """The policy network `h` of SWR (section 3.1 of the paper).

    Three Dense layers with ReLU in between take the target cost `c` (the
    share of reparametrisable parameters a task may add) and return two
    logits per reparametrised layer. The first logit votes for
    reparametrising the layer: the deployment policy is
    `b_l = softmax(h(c)_l)[0] > 0.5`, i.e. `logit_0 > logit_1`.

    The network is used only while training; the deployed model never needs it.

    Args:
        num_layers: number of reparametrised layers `L` it decides for.
        hidden_units: width of the two hidden Dense layers.
        seed: seed of the weight initialisers.

    Input shape: `[batch, 1]`, the target cost `c` in [0, 1].
    Output shape: `[batch, num_layers, 2]` logits.

    Example:

    ```python
    policy = PolicyNetwork(num_layers=43)
    gates = policy.binary_policy(0.3)  # [43] array of 0/1
    ```
    """

    def __init__(self, num_layers, hidden_units=64, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_layers) <= 0:
            raise ValueError(
                "num_layers must be a positive integer (the number of "
                f"reparametrised layers). Received: num_layers={num_layers}"
            )
        if int(hidden_units) <= 0:
            raise ValueError(
                f"hidden_units must be a positive integer. Received: hidden_units={hidden_units}"
            )
        self.num_layers = int(num_layers)
        self.hidden_units = int(hidden_units)
        self.seed = seed

        def initializer(offset):
            if seed is None:
                return "glorot_uniform"
            return keras.initializers.GlorotUniform(seed=seed + offset)

        self.hidden_1 = keras.layers.Dense(
            self.hidden_units, activation="relu", kernel_initializer=initializer(0), name="hidden_1"
        )
        self.hidden_2 = keras.layers.Dense(
            self.hidden_units, activation="relu", kernel_initializer=initializer(1), name="hidden_2"
        )
        self.logits = keras.layers.Dense(
            2 * self.num_layers, kernel_initializer=initializer(2), name="logits"
        )
        self.build((None, 1))

    def build(self, input_shape):
        self.hidden_1.build(input_shape)
        self.hidden_2.build((None, self.hidden_units))
        self.logits.build((None, self.hidden_units))
        self.built = True

    def call(self, target_cost):
        x = ops.reshape(ops.cast(target_cost, self.compute_dtype), (-1, 1))
        # Centred to [-1, 1]: with zero-initialised biases a ReLU network of a
        # non-negative input is linear in it at first (all policies start at
        # 0.5 for c = 0); centring lets the units bend where c = 0.5.
        x = 2.0 * x - 1.0
        x = self.logits(self.hidden_2(self.hidden_1(x)))
        return ops.reshape(x, (-1, self.num_layers, 2))

    def binary_policy(self, target_cost):
        """The deployment policy for concrete target cost(s).

        Args:
            target_cost: a float in [0, 1], or a 1-D sequence of them.

        Returns:
            `float32` NumPy array of 0/1: shape `[num_layers]` for a scalar
            input, `[len(target_cost), num_layers]` for a sequence.
        """
        checked = check_target_cost(target_cost)
        costs = np.asarray(checked, dtype="float32").reshape(-1, 1)
        gates = ops.convert_to_numpy(binarize(self(costs, training=False)))
        return gates[0] if np.ndim(target_cost) == 0 else gates

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_layers": self.num_layers, "hidden_units": self.hidden_units, "seed": self.seed}
        )
        return config


def binarize(logits):
    """Deterministic gates from policy logits: 1 where `softmax(logits)[0] > 0.5`.

    Args:
        logits: `[..., 2]` tensor.

    Returns:
        `[...]` float tensor of 0/1.
    """
    return ops.cast(ops.greater(logits[..., 0], logits[..., 1]), "float32")
