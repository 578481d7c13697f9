"""Paired statistics for benchmark findings: per-seed differences, Holm correction, verdicts.

A benchmark grid runs several rows (settings) over the same seeds, and the rows
of one seed share the training subset and the validation queries. A finding
such as "row T scores higher R@1 than row B" is therefore judged on the per-seed
paired differences ``d_s = T_s - B_s``: whatever a seed does to both rows alike
cancels. The seed is the unit of replication (it redraws initialisation, data
order, augmentation and subsets), so the interval and the test are the paired t
over seeds, not a bootstrap over the queries of one trained model.

A grid tests several findings at once, so their p-values are adjusted with
Holm's step-down procedure (:func:`holm`), which controls the family-wise error
rate whatever the dependence between findings. :func:`verdict` turns one
finding's difference and adjusted p-value into a word. See docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

VERDICTS = ("reproduced", "opposite", "inconclusive", "not run")
"""The fixed verdicts; :func:`verdict` may also say ``"no effect larger than X"``."""


@dataclass(frozen=True)
class PairedDifference:
    """Summary of treatment - baseline over the seeds that have both values."""

    n: int  # number of seeds with both values
    mean: float  # mean of treatment - baseline
    std: float  # sample std (ddof=1) of the differences
    low: float  # lower end of the two-sided paired-t confidence interval
    high: float  # upper end
    p: float  # two-sided p-value of the paired t-test (H0: mean difference 0)
    confidence: float


def paired_difference(baseline: Sequence[float], treatment: Sequence[float],
                      confidence: float = 0.95) -> PairedDifference:
    """Paired-t summary of ``treatment - baseline``, aligned by position (same position = same seed).

    Pairs where either value is NaN or infinite are dropped (a seed that did not
    run in one row says nothing about the difference). With one pair the mean is
    reported but std, interval and p are NaN; with none everything is NaN. When
    all differences are equal the t statistic is 0/0 or x/0 and scipy returns
    NaN, so that case is decided here: a mean of exactly 0 gives p = 1 and the
    interval [0, 0], any other mean gives p = 0 and the interval [mean, mean].
    """
    b = np.asarray(baseline, dtype=float)
    t = np.asarray(treatment, dtype=float)
    if b.ndim != 1 or t.ndim != 1:
        raise ValueError(f"baseline and treatment must be 1-D, got shapes {b.shape} and {t.shape}")
    if len(b) != len(t):
        raise ValueError(f"baseline has {len(b)} values but treatment has {len(t)}; "
                         "they must be aligned by seed")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    keep = np.isfinite(b) & np.isfinite(t)
    b, t = b[keep], t[keep]
    d = t - b
    n = int(d.size)
    nan = math.nan
    if n == 0:
        return PairedDifference(0, nan, nan, nan, nan, nan, confidence)
    if n == 1:
        return PairedDifference(1, float(d[0]), nan, nan, nan, nan, confidence)
    if np.all(d == d[0]):  # std 0: decided explicitly (scipy gives NaN for 0/0)
        mean = float(d[0])
        return PairedDifference(n, mean, 0.0, mean, mean, 1.0 if mean == 0.0 else 0.0, confidence)
    result = stats.ttest_rel(t, b)
    interval = result.confidence_interval(confidence)
    return PairedDifference(n, float(np.mean(d)), float(np.std(d, ddof=1)), float(interval.low),
                            float(interval.high), float(result.pvalue), confidence)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the original order.

    With the m finite p-values sorted ascending, ``adj_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))``.
    Rejecting where the adjusted value is below alpha controls the family-wise
    error rate at alpha without assuming the tests are independent. NaN entries
    (findings that could not be computed) stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def verdict(difference: PairedDifference, expected_sign: int, adjusted_p: float, alpha: float = 0.05,
            margin: float | None = None) -> str:
    """One word for a finding: did the expected direction (+1 "higher", -1 "lower") show?

    In order: ``"not run"`` when fewer than two seeds have both values or the
    adjusted p is NaN; ``"reproduced"`` when ``adjusted_p < alpha`` and the mean
    difference has the expected sign; ``"opposite"`` when ``adjusted_p < alpha``
    and it has the other sign; ``"no effect larger than {margin:g}"`` when a
    margin is given and the confidence interval lies strictly inside
    (-margin, +margin); otherwise ``"inconclusive"`` (the data cannot tell,
    which is not evidence of no effect).
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 (higher) or -1 (lower), got {expected_sign!r}")
    if margin is not None and not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    if difference.n < 2 or math.isnan(adjusted_p):
        return "not run"
    if adjusted_p < alpha:
        return "reproduced" if np.sign(difference.mean) == expected_sign else "opposite"
    if margin is not None and -margin < difference.low and difference.high < margin:
        return f"no effect larger than {margin:g}"
    return "inconclusive"
