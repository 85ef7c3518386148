"""`claims.md`: the paper's claims checked on finished cells, paired by seed."""

import numpy as np
import pytest
from scipy import stats

from swr_keras.kws import claims, reproduce, tables

from .conftest import write_result_record

BACKBONE = "bc_resnet8"  # synthetic cell records; nothing trains


def lines_of(path):
    """`{(left, right, task): [seeds, left, right, difference, verdict]}` of claims.md's table."""
    return {key: [*parts[:4], parts[5]] for key, parts in table_of(path).items()}


def table_of(path):
    """`{(left, right, task): [seeds, left, right, difference, p (Holm), verdict]}`."""
    found = {}
    for line in path.read_text().splitlines():
        parts = [part.strip() for part in line.strip("|").split("|")]
        if len(parts) == 9 and parts[0] not in ("Left", "---"):
            found[tuple(parts[:3])] = parts[3:]
    return found


def write(results_dir, costs=(0.1, 0.5)):
    tables.write_all(str(results_dir), BACKBONE, ("1", "2"), (), (0, 1, 2), costs, "cmd")
    return results_dir / "claims.md"


SWR_01 = "SWR (two-stage), c=0.1"


def test_a_difference_is_paired_by_seed_with_students_t(tmp_path):
    swr = (0.90, 0.80, 0.86)
    full = (0.88, 0.81, 0.82)
    for seed in range(3):
        write_result_record(str(tmp_path), "gsc2", "swr", 0.1, seed, swr[seed], param_ratio=1.08)
        write_result_record(str(tmp_path), "gsc2", "finetune_all", None, seed, full[seed])
    found = lines_of(write(tmp_path))
    differences = 100 * (np.array(swr) - np.array(full))
    half = stats.t.ppf(0.975, df=2) * np.std(differences, ddof=1) / np.sqrt(3)
    assert found[(SWR_01, "fine-tune all", "GSC2")] == [
        "0,1,2",
        f"{100 * np.mean(swr):.1f}",
        f"{100 * np.mean(full):.1f}",
        f"{differences.mean():+.1f} ({half:.1f})",
        "not told apart",
    ]
    # Nothing finished on MC-KWS: every column says so.
    assert found[(SWR_01, "fine-tune all", "MC-KWS")] == ["-"] * 5
    # The only comparison of GSC2's headline family with cells: Holm leaves its p-value
    # (scipy's paired t-test, an independent route).
    p = stats.ttest_rel(100 * np.array(swr), 100 * np.array(full)).pvalue
    assert table_of(tmp_path / "claims.md")[(SWR_01, "fine-tune all", "GSC2")][4] == f"{p:.3f}"


def test_only_the_seeds_both_cells_finished_are_paired(tmp_path):
    for seed, accuracy in enumerate((0.90, 0.50, 0.92)):
        write_result_record(str(tmp_path), "mc_kws", "swr", 0.1, seed, accuracy)
    for seed, accuracy in ((0, 0.85), (2, 0.868)):
        write_result_record(str(tmp_path), "mc_kws", "spottune", None, seed, accuracy)
    seeds, left, right, difference, verdict = lines_of(write(tmp_path))[
        (SWR_01, "SpotTune", "MC-KWS")
    ]
    # Seed 1 (SWR only, and far off) takes no part: SWR's mean is over seeds 0 and 2.
    assert (seeds, left, right) == ("0,2", "91.0", "85.9")
    # Seed 1 has no SpotTune cell; with SWR's seed 1 (50 %) counted, SWR's mean would be 77.3.
    half = stats.t.ppf(0.975, df=1) * np.std([5.0, 5.2], ddof=1) / np.sqrt(2)
    assert difference == f"+5.1 ({half:.1f})"
    assert verdict == "higher"


@pytest.mark.parametrize(
    "left, right, expected",
    [
        ((0.90, 0.91, 0.92), (0.80, 0.80, 0.81), "higher"),
        ((0.80, 0.80, 0.81), (0.90, 0.91, 0.92), "lower"),
        ((0.90, 0.80, 0.85), (0.85, 0.85, 0.85), "not told apart"),
        ((0.90,), (0.80,), "one seed"),
        # Seeds that agree exactly give an interval of no width: no certainty, said so.
        ((0.90, 0.85), (0.85, 0.80), "same difference on every seed"),
        ((0.90, 0.85), (0.90, 0.85), "equal on every seed"),
    ],
)
def test_the_verdict_is_read_off_the_interval(tmp_path, left, right, expected):
    # An ablation: outside the headline family, so read off the interval, not Holm's p.
    for seed, (mine, theirs) in enumerate(zip(left, right)):
        write_result_record(str(tmp_path), "gsc2", "swr", 0.5, seed, mine)
        write_result_record(str(tmp_path), "gsc2", "not_staged", 0.5, seed, theirs)
    found = table_of(write(tmp_path))
    line = found[("SWR (two-stage), c=0.5", "Not staged (co-optimize), c=0.5", "GSC2")]
    assert line[-2:] == ["-", expected]


def test_every_ablation_is_compared_with_two_stage_swr_at_each_cost(tmp_path):
    for seed in range(2):
        write_result_record(str(tmp_path), "gsc2", "swr", 0.3, seed, 0.9)
        write_result_record(str(tmp_path), "gsc2", "not_staged", 0.3, seed, 0.8 + seed / 100)
    found = lines_of(write(tmp_path, costs=(0.1, 0.3, 0.5)))
    ablation = found[("SWR (two-stage), c=0.3", "Not staged (co-optimize), c=0.3", "GSC2")]
    assert ablation[:3] == ["0,1", "90.0", "80.5"] and ablation[-1] == "higher"
    labels = {row.label for row in reproduce.TABLE2_ROWS if row.name != "swr"}
    for cost in (0.1, 0.3, 0.5):
        for label in labels:
            assert (f"SWR (two-stage), c={cost:g}", f"{label}, c={cost:g}", "MC-KWS") in found
    # Budgeted rows of Table 1 (LoRA) are compared at SWR's own budget.
    assert (SWR_01, "Keras LoRA, c=0.1", "GSC2") in found


@pytest.mark.parametrize(
    "param_ratio, mult_ratio, parameters, computation",
    [
        (1.08, 1.0, "holds", "holds"),
        (1.19, 1.0, "does not hold", "holds"),
        (1.05, 1.3, "holds", "does not hold"),
    ],
)
def test_the_cost_claims_at_c_01(tmp_path, param_ratio, mult_ratio, parameters, computation):
    for task in ("gsc2", "mc_kws"):
        write_result_record(str(tmp_path), task, "swr", 0.1, 0, 0.9, param_ratio, mult_ratio)
    text = write(tmp_path).read_text()
    extra = f"{100 * (param_ratio - 1):.1f} % extra for the two tasks"
    assert extra in text
    assert f"({parameters} as the paper's #Param. column counts it" in text
    assert f"#Mult. {mult_ratio:.2f}x of the backbone per task ({computation})" in text


def test_the_best_baseline_is_one_of_the_papers(tmp_path):
    write_result_record(str(tmp_path), "gsc2", "taps", None, 0, 0.91)
    write_result_record(str(tmp_path), "gsc2", "finetune_all", None, 0, 0.89)
    # Neither the pre-trained model untouched nor this project's LoRA is a baseline of the paper.
    write_result_record(str(tmp_path), "gsc2", "multilingual", None, 0, 0.95)
    write_result_record(str(tmp_path), "gsc2", "lora", 0.1, 0, 0.99)
    text = write(tmp_path).read_text()
    assert "- GSC2: TAPS, 91.0 %" in text
    assert "- MC-KWS: - (no baseline finished)." in text
    assert "- SWR, c=0.1: - (no cell finished)." in text


def test_the_summary_holds_the_headline_claims_with_a_column_per_task(tmp_path):
    for seed in range(3):
        for task, step in (("gsc2", 0.02), ("mc_kws", -0.01)):
            write_result_record(str(tmp_path), task, "swr", 0.1, seed, 0.90, param_ratio=1.08)
            write_result_record(str(tmp_path), task, "finetune_all", None, seed, 0.88 + step * seed)
        write_result_record(str(tmp_path), "gsc2", "bn_affine", 0.1, seed, 0.5)
    found = lines_of(write(tmp_path))
    cells = tables.Cells(reproduce.read_cells(str(tmp_path / "cells")))
    summary = claims.summary_markdown(cells, BACKBONE, (0, 1, 2), (0.1, 0.5))
    lines = summary.splitlines()
    assert lines[0] == "| Left | Right | GSC2 | MC-KWS |"
    # Each task's column is claims.md's own difference and verdict for that task.
    table = table_of(tmp_path / "claims.md")
    columns = [
        ", ".join(
            [found[(SWR_01, "fine-tune all", task)][3]]
            + [f"p (Holm) {table[(SWR_01, 'fine-tune all', task)][4]}"]
            + [found[(SWR_01, "fine-tune all", task)][4]]
        )
        for task in ("GSC2", "MC-KWS")
    ]
    assert f"| {SWR_01} | fine-tune all | {columns[0]}, n=3 | {columns[1]}, n=3 |" in lines
    assert columns[0].endswith("not told apart") and columns[1].endswith("higher")
    # The headline only: SWR against Table 1 and not staged, not the other ablations.
    rights = {line.split(" | ")[1] for line in lines[2:] if line.startswith("| ")}
    assert "Not staged (co-optimize), c=0.1" in rights and "SpotTune" in rights
    assert not any("BN-affine" in right or "equal r_l" in right for right in rights)
    assert "SWR (two-stage), c=0.5 | fine-tune all | - | -" in summary
    assert lines[-1].startswith("- Under 10 % extra parameters: #Param. 1.08x")


def test_holm_against_a_hand_worked_example():
    """Holm's step-down adjustment, worked by hand.

    p = (0.01, -, 0.04, 0.03, 0.005): four p-values (the comparison without one
    takes no part), so m = 4. Sorted: 0.005, 0.01, 0.03, 0.04, multiplied by
    m, m-1, m-2, m-3 = 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04; each kept at least
    as large as the one before (step-down): 0.02, 0.03, 0.06, 0.06. In the
    input order: (0.03, -, 0.06, 0.06, 0.02). At 0.05, 0.005 and 0.01 are
    significant, 0.03 and 0.04 (below 0.05 unadjusted) are not.
    And (0.5, 0.6): 2 x 0.5 = 1.0, then max(1.0, 0.6) = 1.0; capped at 1.
    """
    adjusted = claims.holm([0.01, None, 0.04, 0.03, 0.005])
    assert adjusted[1] is None
    np.testing.assert_allclose(
        [adjusted[i] for i in (0, 2, 3, 4)], [0.03, 0.06, 0.06, 0.02], rtol=0, atol=1e-12
    )
    assert claims.holm([0.5, 0.6]) == [1.0, 1.0]
    assert claims.holm([]) == [] and claims.holm([None]) == [None]


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 45])
def test_the_paired_p_value_is_students_t(df):
    for t in (0.0, 0.4, 1.5, 3.2, -3.2, 12.0):
        assert claims.student_t_two_sided_p(t, df) == pytest.approx(
            2 * stats.t.sf(abs(t), df), abs=1e-9
        )
    with pytest.raises(ValueError, match="degrees_of_freedom must be a positive integer"):
        claims.student_t_two_sided_p(1.0, 0)


def test_the_headline_family_is_holm_corrected_per_task(tmp_path):
    # Per-seed differences in points. GSC2: SWR c=0.1 beats fine-tune all by (2, 3, 4)
    # and TAPS by (4, 6, 8); SWR c=0.5 is within (0.2, -0.1, 0.05) of fine-tune all: a
    # family of three. MC-KWS: SWR c=0.1 against fine-tune all, by (2, 3, 4), a family of
    # one, and against the multi-lingual model (not in the family) by the same.
    swr = {"gsc2": (2.0, 3.0, 4.0), "mc_kws": (2.0, 3.0, 4.0)}
    near = (0.2, -0.1, 0.05)
    for seed in range(3):
        for task in ("gsc2", "mc_kws"):
            write_result_record(str(tmp_path), task, "finetune_all", None, seed, 0.8)
            write_result_record(str(tmp_path), task, "swr", 0.1, seed, 0.8 + swr[task][seed] / 100)
        write_result_record(
            str(tmp_path), "gsc2", "taps", None, seed, 0.8 - swr["gsc2"][seed] / 100
        )
        write_result_record(str(tmp_path), "gsc2", "swr", 0.5, seed, 0.8 + near[seed] / 100)
        write_result_record(str(tmp_path), "mc_kws", "multilingual", None, seed, 0.8)
    found = table_of(write(tmp_path))

    def p(steps):  # scipy's paired t-test: an independent route to each unadjusted p
        return stats.ttest_rel(np.array(steps), np.zeros(3)).pvalue

    p_full, p_taps, p_near = p((2, 3, 4)), p((4, 6, 8)), p(near)
    assert p_full == pytest.approx(p_taps) and p_full < 0.05 < p_near  # each alone: "higher"
    # Holm over GSC2's three, by hand: sorted p_full = p_taps < p_near, times 3, 2, 1,
    # each at least the one before.
    first = 3 * p_full
    expected = {"fine-tune all": first, "TAPS": max(first, 2 * p_taps)}
    assert first > 0.05  # corrected, neither is significant
    for right, adjusted in expected.items():
        assert found[(SWR_01, right, "GSC2")][4:] == [f"{adjusted:.3f}", "not told apart"]
    # The whole interval of c=0.5's difference lies inside +-1 point: equivalent.
    half = stats.t.ppf(0.975, df=2) * np.std(near, ddof=1) / np.sqrt(3)
    assert abs(np.mean(near)) + half < 1.0
    line = found[("SWR (two-stage), c=0.5", "fine-tune all", "GSC2")]
    assert line[4:] == [f"{max(first, p_near):.3f}", "equivalent within 1 point"]
    # MC-KWS is its own family of one: its p-value stays unadjusted, and is significant.
    assert found[(SWR_01, "fine-tune all", "MC-KWS")][4:] == [f"{p_full:.3f}", "higher"]
    # Outside the family: no p (Holm), the interval's verdict.
    assert found[(SWR_01, "Multi-lingual model", "MC-KWS")][4:] == ["-", "higher"]


@pytest.mark.parametrize(
    "mean, half, adjusted, expected",
    [
        (3.0, 1.0, 0.01, "higher"),
        (-3.0, 1.0, 0.01, "lower"),
        (0.5, 0.3, 0.01, "higher, by under 1 point"),  # interval (0.2, 0.8)
        (0.2, 0.5, 0.40, "equivalent within 1 point"),  # interval (-0.3, 0.7)
        (0.2, 0.9, 0.40, "not told apart"),  # interval (-0.7, 1.1): reaches past +1
        (3.0, 1.0, 0.06, "not told apart"),  # the interval excludes 0; Holm's p does not
    ],
)
def test_a_headline_verdict_is_read_off_holms_p(mean, half, adjusted, expected):
    difference = {"seeds": [0, 1, 2], "mean": mean, "half": half}
    assert claims.holm_verdict(difference, adjusted) == expected
    # Without a p-value (one seed), the interval's words.
    assert claims.holm_verdict({"seeds": [0], "mean": mean, "half": 0.0}, None) == "one seed"
