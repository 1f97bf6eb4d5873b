"""Selection-stability statistics: known values, the paper's formulas, and coverage by simulation.

The simulations use fixed seeds, so they are deterministic; their bands are set
wide enough (several Monte Carlo standard errors) to survive a change of seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genejobs.storage.stability import (
    Stability,
    compare_stabilities,
    false_selection_bound,
    mean_interval,
    nogueira,
    nogueira_from_sums,
    pi_for_bound,
    stability_curve,
    stopping_decision,
    wilson_interval,
)

pytestmark = pytest.mark.filterwarnings("error")


def paper_stability(selected: np.ndarray) -> tuple[float, float]:
    """The estimator and its variance written out run by run, as in the paper's reference code."""
    runs, features = selected.shape
    p_hat = selected.mean(axis=0)
    mean_size = p_hat.sum()
    sizes = selected.sum(axis=1)
    chance = (mean_size / features) * (1 - mean_size / features)
    value = 1 - runs / (runs - 1) * np.mean(p_hat * (1 - p_hat)) / chance
    phi = np.zeros(runs)
    for i in range(runs):
        phi[i] = (1 / chance) * (
            np.mean(selected[i] * p_hat)
            - sizes[i] * mean_size / features**2
            + value
            / 2
            * (
                2 * sizes[i] * mean_size / features**2
                - sizes[i] / features
                - mean_size / features
                + 1
            )
        )
    return value, 4 / runs**2 * np.sum((phi - phi.mean()) ** 2)


def population_stability(p: np.ndarray) -> float:
    """Φ for independent Bernoulli(p_f) selections: 1 − mean p(1 − p) / ((k/d)(1 − k/d))."""
    share = p.sum() / p.size
    return 1 - np.mean(p * (1 - p)) / (share * (1 - share))


# Wilson and t intervals


def test_wilson_known_values():
    lo, hi = wilson_interval([0, 5], [10, 10])
    z2 = stats.norm.ppf(0.975) ** 2
    assert lo[0] == 0.0
    assert hi[0] == pytest.approx(z2 / (10 + z2))
    assert hi[0] == pytest.approx(0.27753, abs=1e-5)
    assert (lo[1], hi[1]) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    for level in np.linspace(0.01, 0.99, 99):
        assert np.all(wilson_interval(0, [1, 7, 12345], level)[0] == 0.0)
        assert np.all(wilson_interval([1, 7, 12345], [1, 7, 12345], level)[1] == 1.0)
    assert (wilson_interval(0, 0)) == (0.0, 1.0)


def test_wilson_matches_scipy():
    for k, n in [(1, 7), (3, 40), (37, 40), (120, 400)]:
        for level in (0.9, 0.95, 0.99):
            expected = stats.binomtest(k, n).proportion_ci(level, method="wilson")
            assert wilson_interval(k, n, level) == pytest.approx((expected.low, expected.high))


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="level"):
        wilson_interval(1, 10, level=95)


def test_wilson_coverage_near_nominal():
    rng = np.random.default_rng(20180101)
    n = 200
    p = np.arange(0.05, 0.951, 0.05)
    k = rng.binomial(n, p, size=(2000, p.size))
    lo, hi = wilson_interval(k, n)
    coverage = ((lo <= p) & (p <= hi)).mean(axis=0)
    assert 0.93 <= coverage.mean() <= 0.97
    assert coverage.min() >= 0.90


def test_mean_interval_is_student_t():
    lo, hi = mean_interval([3.0, 10.0, 7.0], [1.5, 2.0, 4.0], [5, 30, 1])
    for i, (mean, sd, n) in enumerate([(3.0, 1.5, 5), (10.0, 2.0, 30)]):
        expected = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
        assert (lo[i], hi[i]) == pytest.approx(expected)
    assert math.isnan(lo[2]) and math.isnan(hi[2])


# Nogueira stability


def test_nogueira_hand_computed():
    # p̂ = (1, 3/4, 1/4, 0), every k_i = 2: Φ̂ = 1 − (4/3)(3/32)/(1/4) = 1/2;
    # φ_i − φ̄ = 4·((1/d)Σ_f Z_if p̂_f − 13/32) = (1/8, 1/8, −3/8, 1/8), variance = (4/16)(3/16).
    selected = [[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0]]
    result = nogueira(selected)
    half = stats.norm.ppf(0.975) * math.sqrt(3 / 64)
    assert (result.value, result.variance) == pytest.approx((0.5, 3 / 64))
    assert (result.lo, result.hi) == pytest.approx((0.5 - half, 0.5 + half))
    assert (result.runs, result.features) == (4, 4)


def test_nogueira_matches_paper_formulas_on_random_matrices():
    rng = np.random.default_rng(1)
    for _ in range(20):
        runs, features = rng.integers(2, 40), rng.integers(2, 60)
        selected = rng.random((runs, features)) < rng.uniform(0, 0.6, features)
        if not 0 < selected.sum() < selected.size:
            continue
        value, variance = paper_stability(selected.astype(float))
        result = nogueira(selected)
        assert result.value == pytest.approx(value, abs=1e-12)
        assert result.variance == pytest.approx(variance, abs=1e-12)


def test_identical_runs_are_perfectly_stable():
    result = nogueira(np.tile([True, False, True, False, False], (10, 1)))
    assert result.value == 1.0
    assert (result.variance, result.lo, result.hi) == pytest.approx((0.0, 1.0, 1.0), abs=1e-12)


@pytest.mark.parametrize(
    "selected",
    [np.ones((1, 5)), np.zeros((0, 5)), np.zeros((6, 5)), np.ones((6, 5))],
    ids=["one run", "no runs", "nothing selected", "everything selected"],
)
def test_nogueira_undefined_is_nan(selected):
    result = nogueira(selected)
    assert all(math.isnan(x) for x in (result.value, result.variance, result.lo, result.hi))
    assert (result.runs, result.features) == selected.shape


def test_nogueira_refuses_non_binary():
    with pytest.raises(ValueError, match="0/1"):
        nogueira([[0, 2], [1, 0]])
    with pytest.raises(ValueError, match="2-D"):
        nogueira([1, 0, 1])


def test_from_sums_agrees_with_the_matrix():
    """Sums built the way SQL would: from (run, feature) pairs, unselected features left out."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        runs, features = rng.integers(2, 50), rng.integers(5, 80)
        selected = rng.random((runs, features)) < rng.uniform(0, 0.5, features)
        selected[:, rng.integers(features)] = False
        selected[rng.integers(runs)] = False
        if not selected.any():
            continue
        run_ids, feature_ids = np.nonzero(selected)
        chosen, per_feature = np.unique(feature_ids, return_counts=True)
        frequency = dict(zip(chosen, per_feature / runs, strict=True))
        k = np.bincount(run_ids, minlength=runs)
        zp = np.bincount(run_ids, weights=[frequency[f] for f in feature_ids], minlength=runs)
        from_sums = nogueira_from_sums(list(frequency.values()), k, zp, features)
        direct = nogueira(selected)
        for field in ("value", "variance", "lo", "hi"):
            assert getattr(from_sums, field) == pytest.approx(getattr(direct, field), abs=1e-12)
        assert (from_sums.runs, from_sums.features) == (runs, features)


def test_from_sums_refuses_more_frequencies_than_features():
    with pytest.raises(ValueError, match="3 feature frequencies"):
        nogueira_from_sums([0.5, 0.5, 0.5], [1, 2], [0.5, 1.0], features=2)


def test_nogueira_interval_covers_population_stability():
    rng = np.random.default_rng(3)
    p = np.r_[np.full(5, 0.9), np.full(5, 0.5), np.full(20, 0.1)]
    truth = population_stability(p)
    covered = [
        (s := nogueira(rng.random((200, p.size)) < p)).lo <= truth <= s.hi for _ in range(1000)
    ]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_stability_curve_narrows():
    rng = np.random.default_rng(4)
    selected = rng.random((400, 30)) < np.r_[np.full(5, 0.9), np.full(25, 0.1)]
    curve = stability_curve(selected, [1, 25, 100, 400])
    assert [s.runs for s in curve] == [1, 25, 100, 400]
    assert math.isnan(curve[0].value)
    widths = [s.hi - s.lo for s in curve[1:]]
    assert widths == sorted(widths, reverse=True)
    assert curve[-1] == nogueira(selected)
    with pytest.raises(ValueError, match="outside"):
        stability_curve(selected, [401])


def test_compare_same_distribution_rejects_about_five_percent():
    rng = np.random.default_rng(5)
    p = np.r_[np.full(5, 0.9), np.full(5, 0.5), np.full(20, 0.1)]
    p_values = [
        compare_stabilities(
            nogueira(rng.random((100, p.size)) < p), nogueira(rng.random((100, p.size)) < p)
        )[1]
        for _ in range(500)
    ]
    assert 0.02 <= np.mean(np.less(p_values, 0.05)) <= 0.09
    # Roughly uniform: each quarter of [0, 1] holds about a quarter of the p-values.
    quarters = np.histogram(p_values, bins=4, range=(0, 1))[0] / len(p_values)
    assert np.all((quarters > 0.17) & (quarters < 0.33))


def test_compare_detects_different_stabilities():
    rng = np.random.default_rng(6)
    stable = nogueira(rng.random((100, 30)) < np.r_[np.full(5, 0.95), np.full(25, 0.02)])
    unstable = nogueira(rng.random((100, 30)) < np.full(30, 0.2))
    z, p_value = compare_stabilities(stable, unstable)
    assert z > 5 and p_value < 1e-6
    assert compare_stabilities(unstable, stable)[0] == pytest.approx(-z)


def test_compare_with_zero_variances():
    same = nogueira(np.tile([1, 0, 0], (5, 1)))
    assert compare_stabilities(same, same) == (0.0, 1.0)
    undefined = nogueira(np.zeros((5, 3)))
    assert all(math.isnan(x) for x in compare_stabilities(same, undefined))


# Stability selection error control


def test_false_selection_bound_known_values():
    assert false_selection_bound(10, 1000, 0.9) == pytest.approx(0.125)
    assert false_selection_bound(8, 100, 0.6) == pytest.approx(3.2)
    assert false_selection_bound(8, 100, 1.0) == pytest.approx(0.64)


@pytest.mark.parametrize("pi", [0.5, 0.3, 1.01])
def test_false_selection_bound_refuses_threshold_outside_range(pi):
    with pytest.raises(ValueError, match=r"pi must lie in \(0.5, 1\]"):
        false_selection_bound(10, 1000, pi)


def test_pi_for_bound_inverts_the_bound():
    for q, p, ev in [(10, 1000, 0.125), (8, 100, 3.2), (20, 5000, 1.0)]:
        pi = pi_for_bound(q, p, ev)
        assert 0.5 < pi <= 1
        assert false_selection_bound(q, p, pi) == pytest.approx(ev)
        assert false_selection_bound(q, p, min(1.0, pi + 0.01)) < ev
    assert pi_for_bound(10, 1000, 0.125) == pytest.approx(0.9)
    assert pi_for_bound(10, 100, 0.5) is None


def complementary_pairs(
    rng: np.random.Generator, pairs: int, q: int, n: int = 200, p: int = 100, informative: int = 5
) -> np.ndarray:
    """A 2·pairs x p selection matrix: each half of each pair keeps its top-q |correlation|."""
    x = rng.standard_normal((n, p))
    label = x[:, :informative].sum(axis=1) + 0.5 * rng.standard_normal(n)
    halves = np.argsort(rng.random((pairs, n)), axis=1).reshape(2 * pairs, n // 2)
    xh = x[halves] - x[halves].mean(axis=1, keepdims=True)
    yh = label[halves] - label[halves].mean(axis=1, keepdims=True)
    covariance = np.abs(np.einsum("bnp,bn->bp", xh, yh))
    correlation = covariance / np.sqrt((xh**2).sum(axis=1) * (yh**2).sum(axis=1)[:, None])
    selected = np.zeros((2 * pairs, p), dtype=bool)
    np.put_along_axis(selected, np.argsort(-correlation, axis=1)[:, :q], True, axis=1)
    return selected


def test_complementary_pairs_find_planted_genes_within_the_bound():
    rng = np.random.default_rng(7)
    q, p, pi, informative = 7, 100, 0.6, set(range(5))
    exact, found_all, false_counts = 0, 0, []
    for _ in range(30):
        frequency = complementary_pairs(rng, pairs=50, q=q).mean(axis=0)
        stable = set(np.flatnonzero(frequency >= pi).tolist())
        exact += stable == informative
        found_all += informative <= stable
        false_counts.append(len(stable - informative))
    assert exact >= 24
    assert found_all >= 28
    assert np.mean(false_counts) <= false_selection_bound(q, p, pi)


# Stopping rule


def steady(width: float) -> Stability:
    return Stability(0.8, (width / 2 / 1.96) ** 2, 0.8 - width / 2, 0.8 + width / 2, 400, 100)


def test_stops_when_every_interval_is_clear_of_the_threshold():
    counts = {"TP53": 390, "BRCA1": 380, "MYC": 3, "EGFR": 0}
    decision = stopping_decision(counts, 400, 0.6, 2, None, steady(0.2), 0.02, 200)
    assert decision.stop
    assert decision.top == {"TP53", "BRCA1"}
    assert "0.6" in decision.reason and "400 runs" in decision.reason
    assert "2 above" in decision.reason


def test_stops_when_top_set_and_stability_have_settled():
    counts = {"TP53": 400, "BRCA1": 240, "MYC": 10}
    decision = stopping_decision(counts, 400, 0.6, 2, {"BRCA1", "TP53"}, steady(0.018), 0.02, 200)
    assert decision.stop
    assert decision.reason == (
        "top-2 set unchanged since the previous round and stability interval "
        "width 0.018 < 0.02 after 400 runs"
    )


def test_keeps_running_while_intervals_straddle_and_the_top_set_moves():
    counts = {"TP53": 400, "BRCA1": 240, "MYC": 235, "EGFR": 250}
    decision = stopping_decision(counts, 400, 0.6, 2, {"TP53", "BRCA1"}, steady(0.018), 0.02, 200)
    assert not decision.stop
    assert decision.top == {"TP53", "EGFR"}
    assert "3 genes' intervals still straddle 0.6" in decision.reason
    assert "top-2 set changed since the previous round (1 new)" in decision.reason
    assert decision.reason.endswith("after 400 runs")


def test_keeps_running_while_the_stability_interval_is_wide():
    counts = {"TP53": 400, "BRCA1": 240}
    decision = stopping_decision(counts, 400, 0.6, 1, {"TP53"}, steady(0.031), 0.02, 200)
    assert not decision.stop
    assert "1 gene's interval still straddles 0.6" in decision.reason
    assert "stability interval width 0.031 is not below 0.02" in decision.reason


def test_keeps_running_before_the_minimum_runs():
    decision = stopping_decision({"TP53": 100}, 100, 0.6, 1, {"TP53"}, steady(0.0), 0.02, 200)
    assert not decision.stop
    assert decision.reason == "only 100 runs so far, fewer than the minimum 200"


def test_never_selected_genes_must_fall_below_the_threshold():
    # After 20 runs a never-selected gene's upper bound is 3.84/23.84 = 0.161 > 0.1.
    decision = stopping_decision({"TP53": 20}, 20, 0.1, 1, None, steady(0.5), 0.02, 10)
    assert not decision.stop
    assert "never-selected genes' upper bound 0.161 is not below 0.1" in decision.reason
    assert "no previous top-1 set" in decision.reason
    assert stopping_decision({"TP53": 40}, 40, 0.1, 1, None, steady(0.5), 0.02, 10).stop


def test_top_set_ties_break_by_gene_name():
    counts = {"MYC": 50, "EGFR": 50, "TP53": 80}
    decision = stopping_decision(counts, 100, 0.5, 2, None, steady(0.5), 0.02, 200)
    assert decision.top == {"TP53", "EGFR"}
