"""The metric kind: named values computed from what an evaluation produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

SECTIONS = ("metrics", "uniformity")


@dataclass(frozen=True)
class Retrieval:
    """One evaluation's outcome, as every metric receives it.

    ``query`` ``(N, D)`` and ``reference`` ``(M, D)`` are the L2-normalised
    float32 embeddings of the evaluated ground queries and of the whole aerial
    gallery. ``positives[i]`` is query i's true reference; ``semi_positives``
    (VIGOR) and ``also_correct`` (CVACT_test) are ``(N, K)`` tables padded
    with -1, or None where the protocol has none. ``query_meta`` and
    ``reference_meta`` hold per-item metadata (``city``, ``x``/``y`` or
    ``lat``/``lon`` where the dataset has them). ``seed`` is the run's, for
    metrics that sample.
    """

    query: np.ndarray
    reference: np.ndarray
    positives: np.ndarray
    semi_positives: np.ndarray | None = None
    also_correct: np.ndarray | None = None
    query_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    seed: int = 0


class Metric:
    """Base class of a metric, built as ``factory(**options)`` (``--metric NAME``, ``--metric-option NAME.KEY=V``).

    Calling it with a :class:`Retrieval` returns named float values. Values
    of the ``metrics`` section (the default) go into ``result.json``'s
    ``"metrics"`` and become columns of the leaderboard and of bench reports;
    the ``uniformity`` section is the record's ``"uniformity"`` (before and
    after fine-tuning, thesis eq 3.6-3.8). Names must not collide with
    another selected metric's.
    """

    section: ClassVar[str] = "metrics"

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        raise NotImplementedError
