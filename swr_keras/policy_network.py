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

    def binary_policy(self, target_cost, cost_weights=None):
        """The deployment policy for concrete target cost(s).

        Args:
            target_cost: a float in [0, 1], or a 1-D sequence of them.
            cost_weights: `None` for the paper's rule (`logit_0 > logit_1`);
                the layers' `r_l` (`swr_keras.losses.layer_cost_weights`) to
                binarise to the budget instead (`budget_gates`).

        Returns:
            `float32` NumPy array of 0/1: shape `[num_layers]` for a scalar
            input, `[len(target_cost), num_layers]` for a sequence.
        """
        checked = check_target_cost(target_cost)
        costs = np.asarray(checked, dtype="float32").reshape(-1, 1)
        logits = self(costs, training=False)
        if cost_weights is None:
            gates = ops.convert_to_numpy(binarize(logits))
        else:
            logits = ops.convert_to_numpy(logits)
            gates = np.stack(
                [budget_gates(row, cost_weights, c) for row, c in zip(logits, costs[:, 0])]
            )
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


def budget_gates(logits, cost_weights, target_cost):
    """Gates that spend at most the budget, in the order the policy prefers.

    The paper's rule (`binarize`) turns the policy's probabilities into gates
    one layer at a time, so the deployed cost is the trained expected cost
    only where every probability is near 0 or 1. Trained briefly, the policy
    leaves layers near 0.5 and keeps the most useful large layers on at any
    cost; the deployed ratio then misses small budgets (measured in BUILD.md,
    "Controllability"). Here the layers are taken in decreasing order of the
    policy's margin `logit_0 - logit_1` and each is kept if the total still
    fits within `target_cost`; layers that do not fit are skipped, so smaller
    ones later in the order can still use the rest of the budget.

    Args:
        logits: `[num_layers, 2]` policy logits for one target cost.
        cost_weights: `[num_layers]` costs `r_l`, summing to 1.
        target_cost: the budget `c` in [0, 1].

    Returns:
        `float32` NumPy array `[num_layers]` of 0/1 with
        `sum(gates * cost_weights) <= target_cost`.
    """
    logits = np.asarray(logits, dtype="float64")
    weights = np.asarray(cost_weights, dtype="float64").reshape(-1)
    if logits.shape != (weights.size, 2):
        raise ValueError(
            f"budget_gates needs logits of shape [{weights.size}, 2] for {weights.size} "
            f"cost weights. Received: logits.shape={logits.shape}"
        )
    # Stable: equal margins keep the layer order, so the result is deterministic.
    return fill_in_order(
        np.argsort(logits[:, 1] - logits[:, 0], kind="stable"), weights, target_cost
    )


def fill_in_order(order, cost_weights, target_cost):
    """Gates of the layers taken in `order`, each kept if the total still fits.

    A layer that does not fit is skipped and the next ones are still tried,
    so the deployed ratio is at most `target_cost` and below it by less than
    the smallest layer left out.

    Args:
        order: a permutation of the layer indices `0 .. num_layers - 1`.
        cost_weights: `[num_layers]` costs `r_l`, summing to 1.
        target_cost: the budget `c` in [0, 1].

    Returns:
        `float32` NumPy array `[num_layers]` of 0/1.
    """
    weights = np.asarray(cost_weights, dtype="float64").reshape(-1)
    order = np.asarray(order).reshape(-1)
    if sorted(order.tolist()) != list(range(weights.size)):
        raise ValueError(
            f"order must be a permutation of the {weights.size} layer indices. "
            f"Received: order={order.tolist()}"
        )
    budget = float(check_target_cost(float(target_cost)))
    gates = np.zeros(weights.size, "float32")
    spent = 0.0
    for index in order:
        # The tolerance absorbs float rounding of weights that sum to 1 (c = 1).
        if spent + weights[index] <= budget + 1e-9:
            gates[index] = 1.0
            spent += weights[index]
    return gates


def smallest_first_gates(cost_weights, target_cost):
    """A control without a policy: the smallest kernels first, while they fit.

    Layers are taken in increasing `r_l` (equal sizes in layer order) and kept
    while the total fits in `target_cost`: the most layers any rule can fit
    in the budget, with no knowledge of the task. A learned policy has to
    beat it to show what it adds.

    Args:
        cost_weights: `[num_layers]` costs `r_l`, summing to 1.
        target_cost: the budget `c` in [0, 1].

    Returns:
        `float32` NumPy array `[num_layers]` of 0/1.
    """
    weights = np.asarray(cost_weights, dtype="float64").reshape(-1)
    return fill_in_order(np.argsort(weights, kind="stable"), weights, target_cost)


def random_order_gates(cost_weights, target_cost, seed):
    """A control without a policy: layers in a seeded random order, kept while they fit.

    One order per seed serves every target cost. Layers that do not fit are
    skipped, as budget gates skip them, so the ratio lands just under `c`
    and the control spends the budget as "SWR + budget fill" does.

    Args:
        cost_weights: `[num_layers]` costs `r_l`, summing to 1.
        target_cost: the budget `c` in [0, 1].
        seed: an int; the draw (`np.random.default_rng(seed)`'s permutation).

    Returns:
        `float32` NumPy array `[num_layers]` of 0/1.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"random_order_gates needs an int seed (its draw). Received: seed={seed!r}"
        )
    weights = np.asarray(cost_weights, dtype="float64").reshape(-1)
    order = np.random.default_rng(int(seed)).permutation(weights.size)
    return fill_in_order(order, weights, target_cost)
