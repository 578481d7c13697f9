"""The generation benchmark's paired speedup against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from conftest import perf_script


@pytest.fixture(scope="module")
def generation():
    return perf_script("generation")


def test_the_speedup_is_the_geometric_mean_of_the_rounds_ratios_with_a_paired_t_interval(generation):
    baseline, today = [13.0, 2.0, 4.0, 3.0], [1.0, 1.0, 2.0, 1.0]  # the first round (compiling) is left out
    logs = np.log([2.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    result = generation.paired_speedup(baseline, today)
    assert result["rounds"] == 3
    assert result["speedup"] == pytest.approx(12 ** (1 / 3))
    assert result["low"] == pytest.approx(math.exp(logs.mean() - half))
    assert result["high"] == pytest.approx(math.exp(logs.mean() + half))


def test_two_rounds_are_both_kept_and_a_slower_today_is_a_speedup_below_one(generation):
    result = generation.paired_speedup([1.0, 1.0], [2.0, 4.0])
    assert result["rounds"] == 2
    assert result["speedup"] == pytest.approx(1 / math.sqrt(8))
