"""The controls without a policy (`swr_keras.methods.no_policy`) and the rows of Table 2."""

import dataclasses

import numpy as np
import pytest

import swr_keras
from swr_keras import methods
from swr_keras.kws import reproduce
from swr_keras.kws.job import Settings
from swr_keras.losses import layer_cost_weights
from swr_keras.policy_network import random_order_gates, smallest_first_gates

# A cost table worked by hand: sorted by size the layers are 1 (0.05), 3
# (0.05), 4 (0.10), 2 (0.20), 0 (0.30), 5 (0.30), cumulated 0.05, 0.10, 0.20,
# 0.40, 0.70, 1.00.
WEIGHTS = np.array([0.30, 0.05, 0.20, 0.05, 0.10, 0.30])
SMALLEST_FIRST = {
    0.0: [0, 0, 0, 0, 0, 0],
    0.07: [0, 1, 0, 0, 0, 0],
    0.25: [0, 1, 0, 1, 1, 0],
    0.4: [0, 1, 1, 1, 1, 0],
    0.69: [0, 1, 1, 1, 1, 0],
    0.7: [1, 1, 1, 1, 1, 0],
    1.0: [1, 1, 1, 1, 1, 1],
}


@pytest.mark.parametrize("cost", sorted(SMALLEST_FIRST))
def test_smallest_first_takes_the_smallest_kernels_while_they_fit(cost):
    np.testing.assert_array_equal(smallest_first_gates(WEIGHTS, cost), SMALLEST_FIRST[cost])


def test_random_layers_are_a_seeded_draw_within_the_budget():
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.001, 0.1, 43)
    weights /= weights.sum()
    costs = np.linspace(0.0, 1.0, 21)
    for seed in range(5):
        # The draw's first layer is the permutation's first: on whenever it fits.
        first = np.random.default_rng(seed).permutation(43)[0]
        for c in costs:
            gates = random_order_gates(weights, c, seed)
            np.testing.assert_array_equal(gates, random_order_gates(weights, c, seed))
            spent = float(gates @ weights)
            assert spent <= c + 1e-9
            left_out = weights[gates == 0]
            assert left_out.size == 0 or c - spent < left_out.min(), (seed, c, spent)
            assert gates[first] == float(weights[first] <= c + 1e-9)
    draws = {tuple(random_order_gates(weights, 0.3, seed)) for seed in range(5)}
    assert len(draws) == 5
    # Not the smallest kernels first, which fits the most layers.
    assert all(sum(d) < smallest_first_gates(weights, 0.3).sum() for d in draws)
    with pytest.raises(ValueError, match="Received: seed=None"):
        random_order_gates(weights, 0.3, None)


def test_a_bad_order_is_refused():
    from swr_keras.policy_network import fill_in_order

    with pytest.raises(ValueError, match=r"permutation of the 3 layer indices.*\[0, 0, 1\]"):
        fill_in_order([0, 0, 1], [0.2, 0.3, 0.5], 0.5)


@pytest.mark.parametrize(
    "name, rule",
    [
        ("smallest_first", lambda w, c, seed: smallest_first_gates(w, c)),
        ("random_layers", random_order_gates),
    ],
)
def test_a_control_trains_only_swr_stage_2_on_its_rule(conv_net, name, rule):
    method = methods.get(name)
    settings = Settings(method=name, seed=3, reparam_epochs=4)
    options = method.options()
    # No stage 1: nothing of it would be used.
    assert method.shared_stages(settings, options) == []
    (stage,) = method.variant_stages(settings, options, 0.3)
    assert stage.kind == "reparam" and stage.epochs == 4
    assert not method.has_policy and method.takes_target_costs
    trainer = method.build(conv_net, settings, options)
    method.begin_variant(trainer, settings, options, 0.3)
    layers = swr_keras.reparam_layers(trainer.model)
    gates = [float(layer.gate.numpy()) for layer in layers]
    np.testing.assert_array_equal(gates, rule(layer_cost_weights(layers), 0.3, 3))
    assert trainer.stage == "reparam"
    # Only the gated deltas learn, as in SWR's stage 2.
    assert [layer.kernel_delta.trainable for layer in layers] == [g == 1.0 for g in gates]
    # The job's seed is the draw.
    drawn = set()
    for seed in range(4):
        other = method.build(conv_net, dataclasses.replace(settings, seed=seed), options)
        method.begin_variant(other, settings, options, 0.3)
        gates = [float(layer.gate.numpy()) for layer in swr_keras.reparam_layers(other.model)]
        np.testing.assert_array_equal(gates, rule(layer_cost_weights(layers), 0.3, seed))
        drawn.add(tuple(gates))
    # One rule for every seed; one draw per seed (seeds 0 and 1 differ at c = 0.3).
    assert len(drawn) == 1 if name == "smallest_first" else len(drawn) > 1


def test_the_rows_of_table_2_and_their_settings():
    rows = {row.name: row for row in reproduce.TABLE2_ROWS}
    assert rows["swr"].changes == ()  # SWR's own row: the paper's threshold, the default
    assert Settings().binarization == "threshold"
    assert dict(rows["swr_budget"].changes) == {"binarization": "budget"}
    assert rows["swr_budget"].method == "swr" and rows["swr_budget"].label == "SWR + budget fill"
    for name in ("smallest_first", "random_layers"):
        assert rows[name].method == name and rows[name].changes == ()
        assert "no policy" in rows[name].label
    cells = reproduce.grid("bc_resnet8", tables=("2",), tasks=("gsc2",))
    for name in ("swr_budget", "smallest_first", "random_layers"):
        assert sorted(c.target_cost for c in cells if c.row == name) == [0.1, 0.3, 0.5]
    assert not {"smallest_first", "random_layers", "swr_budget"} & {
        row.name for row in reproduce.table1_rows()
    }
    # The threshold rule plots Fig. 2a for all three of its series.
    for name in reproduce.FIGURE2_ROWS:
        assert "binarization" not in dict(rows[name].changes)


def test_budget_fill_is_labelled_as_a_variant():
    swr = methods.get("swr")
    assert swr.row_label(Settings()) == "SWR"
    assert swr.row_label(dataclasses.replace(Settings(), binarization="budget")) == (
        "SWR + budget fill"
    )
    threshold = swr.variant_stages(Settings(), swr.options(), 0.1)[0].name
    budget = swr.variant_stages(Settings(binarization="budget"), swr.options(), 0.1)[0].name
    assert threshold != budget


def test_budget_fill_stores_its_task_apart_from_swr():
    from types import SimpleNamespace

    from swr_keras.transfer_job import TransferJob

    def path(method, **changes):
        job = SimpleNamespace(
            settings=Settings(method=method, **changes), method=methods.get(method), work_dir="w"
        )
        return TransferJob.task_state_path(job, 0.1)

    assert path("swr") == "w/task_states/swr_c010.npz"
    assert path("swr", binarization="budget") == "w/task_states/swr_binarization-budget_c010.npz"
    assert path("smallest_first") == "w/task_states/smallest_first_c010.npz"
