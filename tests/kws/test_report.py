"""Reports of a KWS run: layer kinds, the Fig. 2 plots, Table 1, intervals."""

import math
import os
import sys

import keras
import matplotlib
import matplotlib.image
import numpy as np
import pytest
from scipy import stats

import swr_keras
from swr_keras.kws import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BC_RESNET_8_LAYERS = 43
COSTS = (0.1, 0.3, 0.5, 0.7, 0.9)


@pytest.fixture(scope="module")
def bc_resnet_layers():
    model = swr_keras.reparametrize(swr_keras.models.BCResNet(tau=1, num_classes=3))
    return swr_keras.reparam_layers(model)


@pytest.fixture
def policy_inputs():
    """Names and kinds shaped like BC-ResNet-8, and random gates per cost."""
    kinds = (
        ["regular"]
        + ["pointwise", "depthwise", "depthwise", "pointwise"] * 10
        + ["depthwise", "pointwise"]
    )
    names = [f"layer_{i}" for i in range(len(kinds))]
    rng = np.random.default_rng(0)
    gates = {c: (rng.random(len(kinds)) < c).astype(int) for c in COSTS}
    return names, kinds, gates


def read_png(path):
    with open(path, "rb") as file:
        assert file.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    return matplotlib.image.imread(path)


def assert_no_temporary_files(directory, expected):
    assert sorted(os.listdir(directory)) == sorted(expected)


# -- layer_kind ----------------------------------------------------------------
def test_layer_kind_of_bc_resnet_matches_kernel_shapes(bc_resnet_layers):
    kinds = [report.layer_kind(layer) for layer in bc_resnet_layers]

    depthwise = [
        isinstance(layer, swr_keras.layers.ReparamDepthwiseConv2D) for layer in bc_resnet_layers
    ]
    one_by_one = [
        isinstance(layer, swr_keras.layers.ReparamConv2D)
        and tuple(layer.base_kernel.shape[:2]) == (1, 1)
        for layer in bc_resnet_layers
    ]
    assert len(kinds) == BC_RESNET_8_LAYERS
    assert [kind == "depthwise" for kind in kinds] == depthwise
    assert [kind == "pointwise" for kind in kinds] == one_by_one
    # BC-ResNet-8: one 5x5 stem conv, 12 blocks x 2 + the head's depth-wise
    # convs, 12 blocks + 4 transitions + the head's 1x1 convs.
    assert kinds.count("regular") == 1
    assert tuple(bc_resnet_layers[kinds.index("regular")].kernel_size) == (5, 5)
    assert kinds.count("depthwise") == 25
    assert kinds.count("pointwise") == 17


def test_layer_kind_of_dense_and_of_a_plain_layer():
    assert report.layer_kind(swr_keras.layers.ReparamDense(4)) == "dense"
    with pytest.raises(ValueError, match="reparam_layers"):
        report.layer_kind(keras.layers.Dense(4))


# -- plots ---------------------------------------------------------------------
def test_policy_map_writes_a_png_atomically(tmp_path, policy_inputs):
    names, kinds, gates = policy_inputs
    path = tmp_path / "plots" / "policy_map.png"

    returned = report.plot_policy_map(names, kinds, gates, path, title="BC-ResNet-8")

    assert returned == str(path)
    image = read_png(path)
    height, width = image.shape[:2]
    assert width > height >= 300  # one column per layer: a wide figure
    assert width >= 900
    assert_no_temporary_files(path.parent, ["policy_map.png"])


def test_policy_map_depends_on_the_gates(tmp_path, policy_inputs):
    names, kinds, gates = policy_inputs
    gates = {c: gates[c] for c in (0.1, 0.5)}  # two rows draw faster than five
    flipped = {c: 1 - g for c, g in gates.items()}
    all_off = {c: np.zeros_like(g) for c, g in gates.items()}
    all_on = {c: np.ones_like(g) for c, g in gates.items()}
    images = {}
    for label, gate_set in [
        ("same", gates),
        ("again", gates),
        ("flipped", flipped),
        ("off", all_off),
        ("on", all_on),
    ]:
        images[label] = read_png(
            report.plot_policy_map(names, kinds, gate_set, tmp_path / f"{label}.png")
        )

    np.testing.assert_array_equal(images["same"], images["again"])
    assert images["same"].shape == images["flipped"].shape
    assert not np.array_equal(images["same"], images["flipped"])

    def blue_pixels(image):  # the depth-wise colour, #1f77b4
        rgb = image[..., :3]
        return int(
            np.sum(np.all(np.abs(rgb - [0x1F / 255, 0x77 / 255, 0xB4 / 255]) < 0.02, axis=-1))
        )

    # The legend shows the colour even with every gate off; filled cells add many more.
    assert blue_pixels(images["on"]) > 10 * blue_pixels(images["off"]) > 0


def test_policy_map_rejects_bad_inputs(tmp_path, policy_inputs):
    names, kinds, gates = policy_inputs
    path = tmp_path / "map.png"
    with pytest.raises(ValueError, match="one gate per layer"):
        report.plot_policy_map(names, kinds, {0.1: [1, 0]}, path)
    with pytest.raises(ValueError, match="only 0 and 1"):
        report.plot_policy_map(names, kinds, {0.1: np.full(len(names), 0.5)}, path)
    with pytest.raises(ValueError, match="Unknown layer kinds"):
        report.plot_policy_map(names, ["conv"] * len(names), gates, path)
    with pytest.raises(ValueError, match="equal length"):
        report.plot_policy_map(names[:-1], kinds, gates, path)
    assert not path.exists()


def test_controllability_plot_with_one_or_several_series(tmp_path):
    costs = [0.1, 0.3, 0.5]
    one = report.plot_controllability(costs, [0.09, 0.33, 0.48], tmp_path / "one.png")
    several = report.plot_controllability(
        costs,
        {"SWR": [0.09, 0.33, 0.48], "equal r_l": [0.2, 0.5, 0.7]},
        tmp_path / "several.png",
        title="GSC2",
    )

    first, second = read_png(one), read_png(several)
    assert first.shape == second.shape
    assert 300 <= first.shape[0] <= 600 and 300 <= first.shape[1] <= 600
    assert not np.array_equal(first, second)
    assert_no_temporary_files(tmp_path, ["one.png", "several.png"])
    with pytest.raises(ValueError, match="one ratio per target cost"):
        report.plot_controllability(costs, {"SWR": [0.1]}, tmp_path / "bad.png")


def test_plots_leave_matplotlib_global_state_alone(tmp_path, policy_inputs):
    backend = matplotlib.get_backend(auto_select=False)
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    interactive = matplotlib.is_interactive()

    names, kinds, gates = policy_inputs
    report.plot_policy_map(names, kinds, gates, tmp_path / "map.png")
    report.plot_controllability([0.1, 0.5], [0.1, 0.5], tmp_path / "ratio.png")

    assert matplotlib.get_backend(auto_select=False) == backend
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded
    assert matplotlib.is_interactive() == interactive


# -- format_table --------------------------------------------------------------
def test_format_table_formats_every_column():
    table = report.format_table(
        [
            {
                "method": "SWR c=0.50",
                "accuracy": 0.985,
                "accuracy_ci": 0.001,
                "param_ratio": 2.04,
                "task_parameters": 123456,
                "task_bytes": 654321,
                "mult_ratio": 1.0,
                "layers": (21, 43),
                "target_cost": 0.5,
                "added_ratio": 0.4834,
            },
            {"method": "fine-tune classifier", "accuracy": 0.95, "layers": None},
        ]
    )
    lines = table.split("\n")

    assert len(lines) == 4
    assert lines[0].split() == [
        "method",
        "acc(%)",
        "#Param.(2",
        "tasks)",
        "+params",
        "bytes",
        "#Mult.",
        "layers",
        "target",
        "c",
        "actual",
    ]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == [
        "SWR",
        "c=0.50",
        "98.5",
        "(0.1)",
        "2.04x",
        "123,456",
        "654,321",
        "1.00x",
        "21/43",
        "0.50",
        "0.483",
    ]
    assert lines[3].split() == ["fine-tune", "classifier", "95.0"] + ["-"] * 7
    # Fixed width: every column ends at the same position on every line.
    assert len({len(line) for line in (lines[0], lines[2])}) == 1
    assert lines[3].index("95.0") + 4 == lines[2].index("(0.1)") + 5


def test_format_table_rejects_unknown_keys_and_percentages():
    with pytest.raises(ValueError, match="Unknown table keys"):
        report.format_table([{"method": "x", "acuracy": 0.9}])
    with pytest.raises(ValueError, match="divide percentages by 100"):
        report.format_table([{"method": "x", "accuracy": 98.5}])


# -- confidence_interval_95 ----------------------------------------------------
def test_confidence_interval_of_three_seeds():
    mean, half_width = report.confidence_interval_95([98.4, 98.6, 98.5])

    assert mean == pytest.approx(98.5)
    assert half_width == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert half_width == pytest.approx(0.24841, abs=1e-5)


def test_confidence_interval_matches_scipy():
    values = np.random.default_rng(1).normal(0.97, 0.01, size=7)
    mean, half_width = report.confidence_interval_95(values)

    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert mean == pytest.approx((low + high) / 2)
    assert half_width == pytest.approx((high - low) / 2, rel=1e-6)


def test_confidence_interval_of_one_seed_is_zero_wide():
    assert report.confidence_interval_95([0.9]) == (0.9, 0.0)
    with pytest.raises(ValueError, match="at least one value"):
        report.confidence_interval_95([])


@pytest.mark.parametrize("degrees_of_freedom", [*range(1, 41), 50, 100, 1000, 10**6])
def test_student_t_quantile_matches_scipy(degrees_of_freedom):
    assert report.student_t_975(degrees_of_freedom) == pytest.approx(
        stats.t.ppf(0.975, degrees_of_freedom), abs=1e-6
    )
