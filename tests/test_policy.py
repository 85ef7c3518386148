"""Policy network, Gumbel-softmax gates and the policy loss (equation 2)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.losses import expected_cost, gated_cost


def test_policy_loss_equals_hand_computation():
    logits = np.array(
        [[[2.0, 0.0], [0.0, 1.0], [0.5, 0.5]], [[-1.0, 1.0], [3.0, 0.0], [0.0, 0.0]]], "float32"
    )
    weights = np.array([0.5, 0.3, 0.2], "float32")
    costs = np.array([[0.4], [0.9]], "float32")
    tau = 0.7
    first = np.exp(logits[..., 0] / tau) / np.exp(logits / tau).sum(-1)
    expected = np.mean(np.abs((first * weights).sum(-1) - costs[:, 0]))
    loss = swr_keras.policy_loss(logits, costs, weights, temperature=tau)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


def test_cost_weights_follow_kernel_sizes_or_are_equal(conv_net):
    layers = swr_keras.reparam_layers(swr_keras.reparametrize(conv_net))
    sizes = np.array([np.prod(layer.base_kernel.shape) for layer in layers], "float64")
    np.testing.assert_allclose(swr_keras.layer_cost_weights(layers), sizes / sizes.sum(), rtol=1e-6)
    np.testing.assert_allclose(swr_keras.layer_cost_weights(layers, "equal"), np.full(5, 0.2))
    with pytest.raises(ValueError, match="weighting"):
        swr_keras.layer_cost_weights(layers, "flops")


def test_hard_gumbel_samples_are_one_hot_and_carry_gradients():
    logits = tf.Variable(np.random.default_rng(0).normal(size=(64, 7, 2)).astype("float32"))
    with tf.GradientTape() as tape:
        sample = swr_keras.gumbel_softmax(logits, 0.5, seed=3)
        objective = tf.reduce_sum(sample[..., 0] * tf.range(7, dtype="float32"))
    values = sample.numpy()
    assert set(np.unique(values)) <= {0.0, 1.0}
    np.testing.assert_array_equal(values.sum(-1), 1.0)
    gradient = tape.gradient(objective, logits).numpy()
    assert np.abs(gradient).sum() > 0
    # A higher logit for "on" is picked more often: samples follow the logits.
    biased = swr_keras.gumbel_softmax(np.tile([[[2.0, -2.0]]], (2000, 1, 1)), 1.0, seed=1)
    assert 0.9 < float(np.mean(biased[..., 0])) < 1.0


def test_gumbel_samples_are_reproducible_with_a_seed():
    logits = np.zeros((16, 5, 2), "float32")
    first = swr_keras.gumbel_softmax(logits, 1.0, seed=keras.random.SeedGenerator(7))
    second = swr_keras.gumbel_softmax(logits, 1.0, seed=keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(first, second)


def test_binarisation_is_deterministic_threshold_on_first_probability():
    logits = np.array([[[0.3, 0.1], [0.1, 0.3], [-1.0, -2.0]]], "float32")
    np.testing.assert_array_equal(swr_keras.binarize(logits), [[1.0, 0.0, 1.0]])
    policy = swr_keras.PolicyNetwork(9, seed=0)
    logits = keras.ops.convert_to_numpy(policy(np.array([[0.3]], "float32")))[0]
    np.testing.assert_array_equal(policy.binary_policy(0.3), logits[:, 0] > logits[:, 1])
    assert policy.binary_policy([0.1, 0.5]).shape == (2, 9)


def test_policy_network_shapes_and_keras_round_trip(tmp_path):
    policy = swr_keras.PolicyNetwork(11, hidden_units=16, seed=4)
    costs = np.array([[0.0], [0.25], [1.0]], "float32")
    assert policy(costs).shape == (3, 11, 2)
    path = tmp_path / "policy.keras"
    policy.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(costs), policy(costs), atol=1e-6)
    assert loaded.get_config()["num_layers"] == 11


def test_seeded_policy_networks_are_identical():
    costs = np.linspace(0, 1, 5, dtype="float32")[:, None]
    np.testing.assert_array_equal(
        swr_keras.PolicyNetwork(4, seed=2)(costs), swr_keras.PolicyNetwork(4, seed=2)(costs)
    )


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), [0.2, 2.0]])
def test_bad_target_costs_raise_value_error_naming_the_value(bad):
    with pytest.raises(ValueError, match=r"target_cost must be in \[0, 1\].*Received"):
        swr_keras.PolicyNetwork(3).binary_policy(bad)


def test_bad_policy_network_arguments():
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        swr_keras.PolicyNetwork(0)


def test_expected_cost_and_added_ratio_agree_for_saturated_logits():
    weights = np.array([0.6, 0.3, 0.1], "float32")
    logits = np.array([[[50.0, -50.0], [-50.0, 50.0], [50.0, -50.0]]], "float32")
    np.testing.assert_allclose(expected_cost(logits, weights), [0.7], atol=1e-6)
    np.testing.assert_allclose(gated_cost(swr_keras.binarize(logits), weights), [0.7])


def test_budget_gates_take_the_preferred_layers_that_fit():
    # Margins order the layers 3, 0, 1, 2; layer 0 (0.5) does not fit in 0.45
    # after layer 3 (0.1) and is skipped, so 1 and 2 still use the rest.
    logits = np.array([[2.0, 0.0], [1.0, 0.0], [0.5, 0.0], [3.0, 0.0]])
    weights = np.array([0.5, 0.2, 0.15, 0.15])
    gates = swr_keras.budget_gates(logits, weights, 0.45)
    np.testing.assert_array_equal(gates, [0, 1, 0, 1])
    assert float(gates @ weights) <= 0.45
    np.testing.assert_array_equal(swr_keras.budget_gates(logits, weights, 1.0), [1, 1, 1, 1])
    np.testing.assert_array_equal(swr_keras.budget_gates(logits, weights, 0.0), [0, 0, 0, 0])
    # A negative margin does not veto a layer: the budget decides, not the sign.
    negative = swr_keras.budget_gates(-10.0 + logits, weights, 0.3)
    np.testing.assert_array_equal(negative, [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"shape \[4, 2\].*Received: logits.shape=\(3, 2\)"):
        swr_keras.budget_gates(logits[:3], weights, 0.5)
    with pytest.raises(ValueError, match="1.5"):
        swr_keras.budget_gates(logits, weights, 1.5)


def test_budget_policy_never_exceeds_the_budget_and_fills_it():
    rng = np.random.default_rng(0)
    policy = swr_keras.PolicyNetwork(num_layers=40, seed=0)
    weights = rng.uniform(0.001, 0.1, 40)
    weights /= weights.sum()
    costs = np.linspace(0.0, 1.0, 21)
    gates = policy.binary_policy(costs, cost_weights=weights)
    spent = gates @ weights
    assert np.all(spent <= costs + 1e-6)
    # Whatever is left is smaller than every layer left out.
    for c, g, s in zip(costs, gates, spent):
        left_out = weights[g == 0]
        assert left_out.size == 0 or c - s < left_out.min(), (c, s)
    # Without cost weights: the paper's threshold rule.
    np.testing.assert_array_equal(
        policy.binary_policy(costs), swr_keras.binarize(policy(costs.reshape(-1, 1)))
    )
