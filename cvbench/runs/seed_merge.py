"""``cvbench leaderboard --group-by``: the runs of one setting, over their seeds, as one row of mean ± interval.

The seed is the unit of replication (docs/statistics.md), so a setting's
number is the mean over its seeds with the two-sided 95% t-interval over the
seeds, from :mod:`cvbench.evaluation.statistics`: a one-sample interval is the
paired interval against a baseline of zeros. One seed gives the mean alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from ..evaluation.statistics import paired_difference

CONFIDENCE = 0.95
INTERVAL_SUFFIX = " ci95"
"""The column beside a metric's mean that holds the half-width of its 95% interval (``R@1 ci95``)."""
AVERAGED = ("wall time (s)",)  # a mean, without an interval


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval) of the finite values; the half-width is NaN below two seeds."""
    values = np.asarray(values, dtype=float)
    difference = paired_difference(np.zeros_like(values), values, CONFIDENCE)
    return difference.mean, difference.high - difference.mean


def merge_seeds(frame: pd.DataFrame, keys: Sequence[Hashable], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per distinct key of ``frame``'s rows (first appearance first): ``runs`` (for ``run``), ``n``
    and ``seeds`` (for ``seed``) and, for each metric, its mean and ``<metric> ci95``.

    A settings column keeps its value where every group agrees within
    itself, and is left out where a group mixes values (``--group-by head``
    merges backbones: no one backbone describes the row).
    """
    positions: dict[Hashable, list[int]] = {}
    for position, key in enumerate(keys):
        positions.setdefault(key, []).append(position)
    measured = [column for column in frame.columns if column in metrics or column.startswith("U ")]
    rows, mixed = [], set()
    for members in positions.values():
        group = frame.iloc[members]
        row = {}
        for column in frame.columns:
            if column == "run":
                row["runs"] = ", ".join(map(str, group[column]))
            elif column == "seed":
                row["n"] = len(group)
                row["seeds"] = ", ".join(sorted({str(seed) for seed in group[column]}, key=_seed))
            elif column in measured:
                row[column], half = mean_interval(group[column].to_numpy(dtype=float))
                if column in metrics:
                    row[column + INTERVAL_SUFFIX] = half
            elif column in AVERAGED:
                row[column] = float(group[column].astype(float).mean())
            else:
                values = group[column].astype(object).where(group[column].notna(), None).tolist()
                if len({repr(value) for value in values}) > 1:
                    mixed.add(column)
                row[column] = values[0]
        rows.append(row)
    merged = pd.DataFrame(rows)
    return merged.drop(columns=[column for column in mixed if column in merged.columns])


def _seed(text: str) -> tuple[int, str]:
    return (int(text), "") if text.lstrip("-").isdigit() else (0, text)
