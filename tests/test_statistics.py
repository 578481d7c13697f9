"""Tests for cvbench.evaluation.statistics against independent computations and seeded simulations.

The paired-t numbers are recomputed by hand here (numpy for mean and std,
scipy.stats.t for the quantile and the tail) and also checked against
scipy.stats.ttest_rel. The simulations draw whole grids at once with a seeded
numpy Generator and compute the t statistics vectorised; paired_difference is
checked against that vectorised computation on the first replicates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cvbench.evaluation.statistics import VERDICTS, PairedDifference, holm, paired_difference, verdict

# ------------------------------------------------------------------ independent computations


def by_hand(d: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float, float]:
    """(mean, std, low, high, p) of the paired t over the last axis, from the textbook formulas."""
    n = d.shape[-1]
    mean = d.mean(-1)
    std = d.std(-1, ddof=1)
    se = std / np.sqrt(n)
    q = stats.t.ppf(0.5 + confidence / 2, n - 1)
    p = 2 * stats.t.sf(np.abs(mean / se), n - 1)
    return mean, std, mean - q * se, mean + q * se, p


def holm_by_loop(p: list[float]) -> list[float]:
    """The Holm formula written out with loops over the finite p-values."""
    idx = [i for i, x in enumerate(p) if not math.isnan(x)]
    ranked = sorted(idx, key=lambda i: p[i])
    m = len(ranked)
    out = [math.nan] * len(p)
    for i, k in enumerate(ranked):
        out[k] = max(min(1.0, (m - j) * p[ranked[j]]) for j in range(i + 1))
    return out


def close(pd: PairedDifference, mean, std, low, high, p, rel: float = 1e-9) -> None:
    assert pd.mean == pytest.approx(mean, rel=rel, abs=1e-12)
    assert pd.std == pytest.approx(std, rel=rel, abs=1e-12)
    assert pd.low == pytest.approx(low, rel=rel, abs=1e-12)
    assert pd.high == pytest.approx(high, rel=rel, abs=1e-12)
    assert pd.p == pytest.approx(p, rel=rel, abs=1e-15)


# ------------------------------------------------------------------ paired_difference


def test_textbook_differences_one_to_five():
    # d = 1..5: mean 3, std sqrt(2.5) = 1.58114, se = 0.70711, t = 4.24264 on 4 df;
    # t_{0.975,4} = 2.77645 gives 3 -+ 1.96324; two-sided p = 2 P(T_4 > 4.24264) = 0.013236.
    pd = paired_difference([10, 20, 30, 40, 50], [11, 22, 33, 44, 55])
    assert pd.n == 5 and pd.confidence == 0.95
    assert pd.mean == pytest.approx(3.0)
    assert pd.std == pytest.approx(1.5811388, abs=1e-6)
    assert pd.low == pytest.approx(1.0367568, abs=1e-6)
    assert pd.high == pytest.approx(4.9632432, abs=1e-6)
    assert pd.p == pytest.approx(0.0132356, abs=1e-6)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_matches_hand_computation_and_ttest_rel(n, confidence):
    rng = np.random.default_rng(100 * n + int(confidence * 100))
    base = rng.normal(50, 5, n)
    treat = base + rng.normal(0.7, 1.3, n)
    pd = paired_difference(base.tolist(), treat.tolist(), confidence)
    assert pd.n == n and pd.confidence == confidence
    close(pd, *by_hand(treat - base, confidence))
    ref = stats.ttest_rel(treat, base)
    ci = ref.confidence_interval(confidence)
    assert pd.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert (pd.low, pd.high) == pytest.approx((ci.low, ci.high), rel=1e-12)


def test_lower_treatment_gives_negative_mean_and_interval():
    pd = paired_difference([5.0, 6.0, 7.0, 8.0], [3.0, 4.5, 4.0, 6.5])
    close(pd, *by_hand(np.array([-2.0, -1.5, -3.0, -1.5])))
    assert pd.mean < 0 and pd.high < 0


def test_nan_and_infinite_pairs_are_dropped():
    base = [1.0, math.nan, 3.0, 4.0, 5.0, 2.0, math.inf]
    treat = [2.5, 9.0, math.nan, 5.0, 7.5, 2.5, 1.0]
    pd = paired_difference(base, treat)
    kept = np.array([2.5, 5.0, 7.5, 2.5]) - np.array([1.0, 4.0, 5.0, 2.0])
    assert pd.n == 4
    close(pd, *by_hand(kept))


def test_one_pair_has_a_mean_and_nothing_else():
    pd = paired_difference([1.0, math.nan, 2.0], [math.nan, 3.0, 2.75])
    assert pd.n == 1 and pd.mean == 0.75
    assert all(math.isnan(x) for x in (pd.std, pd.low, pd.high, pd.p))


@pytest.mark.parametrize("base,treat", [([], []), ([math.nan, 1.0], [2.0, math.nan])])
def test_no_pairs_is_all_nan(base, treat):
    pd = paired_difference(base, treat)
    assert pd.n == 0
    assert all(math.isnan(x) for x in (pd.mean, pd.std, pd.low, pd.high, pd.p))


def test_equal_nonzero_differences_are_certain():
    pd = paired_difference([1.0, 2.0, 4.0], [1.5, 2.5, 4.5])
    assert (pd.n, pd.mean, pd.std, pd.low, pd.high, pd.p) == (3, 0.5, 0.0, 0.5, 0.5, 0.0)


def test_identical_rows_have_p_one():
    pd = paired_difference([0.3, 0.1, 0.7], [0.3, 0.1, 0.7])
    assert (pd.n, pd.mean, pd.std, pd.low, pd.high, pd.p) == (3, 0.0, 0.0, 0.0, 0.0, 1.0)


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"3 values.*treatment has 2"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.1, math.nan])
def test_confidence_outside_open_unit_interval_is_rejected(confidence):
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1.0, 2.0], [2.0, 4.0], confidence)


# ------------------------------------------------------------------ holm


def test_holm_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 = 0.02, 0.03, 0.06, 0.04;
    # the running max makes the last 0.06.
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # sorted 0.01, 0.2, 0.9 -> 0.03, 0.4, 0.9
    np.testing.assert_allclose(holm([0.2, 0.9, 0.01]), [0.4, 0.9, 0.03], rtol=1e-12)


def test_holm_caps_at_one():
    # 2 * 0.5 = 1.0, then 0.6 is raised to the running max 1.0; 3 * 0.4 = 1.2 -> 1.
    np.testing.assert_array_equal(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_array_equal(holm([0.4, 0.45, 0.9]), [1.0, 1.0, 1.0])


def test_holm_nan_passthrough_does_not_count():
    out = holm([math.nan, 0.01, 0.04, math.nan])
    assert math.isnan(out[0]) and math.isnan(out[3])
    np.testing.assert_allclose(out[1:3], [0.02, 0.04], rtol=1e-12)  # m = 2, not 4
    assert np.isnan(holm([math.nan, math.nan])).all()
    assert holm([]).shape == (0,)


def test_holm_matches_loop_and_is_monotone():
    rng = np.random.default_rng(7)
    for _ in range(50):
        p = rng.uniform(0, 0.2, rng.integers(1, 12))
        p[rng.uniform(size=p.size) < 0.2] = np.nan
        p[rng.uniform(size=p.size) < 0.2] = 0.05  # ties
        out = holm(p.tolist())
        np.testing.assert_allclose(out, holm_by_loop(p.tolist()), rtol=1e-12, equal_nan=True)
        ok = ~np.isnan(p)
        order = np.argsort(p[ok], kind="stable")
        assert np.all(np.diff(out[ok][order]) >= 0)  # order of p is kept
        assert np.all(out[ok] >= p[ok]) and np.all(out[ok] <= np.minimum(1, ok.sum() * p[ok]))


# ------------------------------------------------------------------ verdict


def diff(mean: float, low: float, high: float, n: int = 5) -> PairedDifference:
    return PairedDifference(n=n, mean=mean, std=1.0, low=low, high=high, p=0.01, confidence=0.95)


def test_verdict_each_branch():
    up, down = diff(2.0, 1.0, 3.0), diff(-2.0, -3.0, -1.0)
    assert verdict(up, +1, 0.01) == "reproduced"
    assert verdict(down, -1, 0.01) == "reproduced"
    assert verdict(up, -1, 0.01) == "opposite"
    assert verdict(down, +1, 0.049) == "opposite"
    assert verdict(up, +1, 0.05) == "inconclusive"  # strictly below alpha
    assert verdict(up, +1, 0.02, alpha=0.01) == "inconclusive"
    small = diff(0.1, -0.4, 0.6)
    assert verdict(small, +1, 0.7, margin=1.0) == "no effect larger than 1"
    assert verdict(diff(0.05, -0.1, 0.2), +1, 0.7, margin=0.25) == "no effect larger than 0.25"
    assert verdict(small, +1, 0.7, margin=0.6) == "inconclusive"  # the interval touches +margin
    assert verdict(diff(0.1, -0.5, 0.5), +1, 0.7, margin=0.5) == "inconclusive"
    assert verdict(small, +1, 0.7) == "inconclusive"
    assert verdict(diff(2.0, 1.0, 3.0, n=1), +1, 0.01) == "not run"
    assert verdict(up, +1, math.nan) == "not run"
    assert set(VERDICTS) == {"reproduced", "opposite", "inconclusive", "not run"}


def test_verdict_significance_beats_margin():
    # A significant result is reported as such even when its interval fits inside the margin.
    assert verdict(diff(0.2, 0.1, 0.3), +1, 0.001, margin=1.0) == "reproduced"


def test_verdict_rejects_bad_sign_and_margin():
    with pytest.raises(ValueError, match="expected_sign"):
        verdict(diff(1.0, 0.5, 1.5), 0, 0.01)
    with pytest.raises(ValueError, match="margin"):
        verdict(diff(1.0, 0.5, 1.5), 1, 0.5, margin=0.0)


def test_verdict_from_real_data():
    pd = paired_difference([10, 20, 30, 40, 50], [11, 22, 33, 44, 55])
    assert verdict(pd, +1, holm([pd.p])[0]) == "reproduced"
    assert verdict(pd, +1, holm([pd.p] + [0.5] * 8)[0]) == "inconclusive"  # 9 * 0.0132 > 0.05


# ------------------------------------------------------------------ simulation

SEEDS, FINDINGS = 5, 9


def grids(rng: np.random.Generator, count: int, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(baseline, treatment), shape (count, FINDINGS, SEEDS): a shared seed effect (sd 2) in both
    rows of a seed, independent noise (sd 1) per value; ``effect`` is added to finding 0's treatment."""
    seed = rng.normal(0.0, 2.0, (count, FINDINGS, SEEDS))
    base = seed + rng.normal(0.0, 1.0, seed.shape)
    treat = seed + rng.normal(0.0, 1.0, seed.shape)
    treat[:, 0] += effect
    return base, treat


def agrees(base: np.ndarray, treat: np.ndarray, stats_: tuple, replicates: int = 5) -> None:
    """paired_difference agrees with the vectorised computation on the first replicates."""
    for r in range(replicates):
        for f in range(FINDINGS):
            close(paired_difference(base[r, f], treat[r, f]), *(s[r, f] for s in stats_), rel=1e-7)


def test_null_false_alarm_rates():
    rng = np.random.default_rng(2024)
    base, treat = grids(rng, 4000)
    s = by_hand(treat - base)
    agrees(base, treat, s)
    p = s[4]
    # One finding per grid: 4000 Bernoulli(0.05) draws have sd sqrt(0.05 * 0.95 / 4000) = 0.0034,
    # so [0.04, 0.06] is about 3 sd either side.
    assert 0.04 <= np.mean(p[:, 0] < 0.05) <= 0.06
    # Family-wise: 9 independent null findings per grid, Holm-adjusted. The rate is
    # 1 - (1 - 0.05/9)^9 = 0.0489 (sd 0.0034 over 4000 grids); 0.06 is about 3 sd above it and
    # 0.035 about 4 sd below (an over-strict correction would fall under it).
    alarms = np.array([np.any(holm(row) < 0.05) for row in p])
    assert 0.035 <= alarms.mean() <= 0.06
    # Without the correction the same grids raise a false alarm far more often (1 - 0.95^9 = 0.37).
    assert np.mean(np.any(p < 0.05, axis=1)) > 0.3


def test_planted_effect_power_and_sign():
    rng = np.random.default_rng(99)
    replicates, effect = 2000, 2.0  # 2 noise sds
    base, treat = grids(rng, replicates, effect)
    s = by_hand(treat - base)
    agrees(base, treat, s)
    mean, std, low, high, p = s
    words = []
    for r in range(replicates):
        pd = PairedDifference(SEEDS, mean[r, 0], std[r, 0], low[r, 0], high[r, 0], p[r, 0], 0.95)
        words.append(verdict(pd, +1, holm(p[r])[0]))
    words = np.array(words)
    # Expected power: the seed effect cancels, so each difference is N(2, sd sqrt(2)); t is
    # noncentral t with 4 df and noncentrality 2 / sqrt(2) * sqrt(5) = 3.162. Holm over 9 rejects
    # the planted finding (nearly always the smallest p) when 9 p < 0.05, i.e. t > t_{1-0.05/18,4}
    # = 5.437: power = nct.sf(5.437, 4, 3.162) = 0.181 (a null p below it changes this by far less
    # than the sd). Over 2000 replicates the sd is sqrt(0.181 * 0.819 / 2000) = 0.0086; the bounds
    # are 4 sd either side (the upper one fails if the correction is skipped: power 0.66 then).
    power = stats.nct.sf(stats.t.ppf(1 - 0.05 / 18, SEEDS - 1), SEEDS - 1, effect / math.sqrt(2) * math.sqrt(SEEDS))
    assert power == pytest.approx(0.181, abs=0.001)
    sd = math.sqrt(power * (1 - power) / replicates)
    assert power - 4 * sd <= np.mean(words == "reproduced") <= power + 4 * sd
    assert np.mean(words == "opposite") < 0.01
    assert set(words) <= {"reproduced", "inconclusive", "opposite"}
