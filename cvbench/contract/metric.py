"""The metric kind: named values computed from what an evaluation produced."""

from __future__ import annotations

import abc

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

SECTIONS = ("metrics", "uniformity")
TIES = ("random", "optimistic")
ONE_PERCENT = ("floor+1", "floor")
HIT_RATES = ("paper", "code")


@dataclass(frozen=True)
class Conventions:
    """The named choices behind a retrieval number, recorded with it (``result.json``'s ``"conventions"``).

    ``ties``: "random" (a wrong reference tied with the best correct one
    counts in expectation over a random order, so a collapsed model scores
    chance) or "optimistic" (ties go to the truth, as the reference scripts).
    ``one_percent``: R@1%'s k, "floor+1" = floor(M / 100) + 1 (CVM-Net,
    VIGOR) or "floor" = max(1, floor(M / 100)) (Sample4Geo, TransGeo).
    ``hit_rate``: VIGOR's, "paper" (the top-1 is the positive or a
    semi-positive) or "code" (no reference outside those outranks the
    positive, as the authors' script). :mod:`cvbench.metrics` defines each
    exactly.
    """

    ties: str = "random"
    one_percent: str = "floor+1"
    hit_rate: str = "paper"

    def __post_init__(self) -> None:
        for name, allowed in (("ties", TIES), ("one_percent", ONE_PERCENT), ("hit_rate", HIT_RATES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, str]:
        return {"ties": self.ties, "one_percent": self.one_percent, "hit_rate": self.hit_rate}


@dataclass(frozen=True)
class Retrieval:
    """One evaluation's outcome, as every metric receives it.

    ``query`` ``(N, D)`` and ``reference`` ``(M, D)`` are the L2-normalised
    float32 embeddings of the evaluated queries and of the whole gallery; the
    queries are ground images unless ``query_view`` is ``"aerial"``
    (University-1652's satellite-to-drone). ``positives[i]`` is query i's true
    reference; ``semi_positives`` (VIGOR) and ``also_correct`` (CVACT_test,
    University-1652) are ``(N, K)`` tables padded with -1, or None where the
    protocol has none. ``query_meta`` and
    ``reference_meta`` hold per-item metadata (``city``, ``x``/``y`` or
    ``lat``/``lon`` where the dataset has them). ``seed`` is the run's, for
    metrics that sample; ``conventions`` are the run's (a metric for which
    they mean something follows them). A metric calls :meth:`warn` with what
    a reader of its numbers must know (many queries tied with their
    positive, say): the run's record lists each such note.
    """

    query: np.ndarray
    reference: np.ndarray
    positives: np.ndarray
    semi_positives: np.ndarray | None = None
    also_correct: np.ndarray | None = None
    query_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference_meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    seed: int = 0
    conventions: Conventions = field(default_factory=Conventions)
    notes: list[str] = field(default_factory=list)
    query_view: str = "ground"

    def warn(self, message: str) -> None:
        """Record a note about this evaluation's numbers; it goes into the record's ``"warnings"``."""
        if message not in self.notes:
            self.notes.append(message)


class Metric(abc.ABC):
    """Base class of a metric, built as ``factory(**options)`` (``--metric NAME``, ``--metric-option NAME.KEY=V``).

    Calling it with a :class:`Retrieval` returns named float values. Values
    of the ``metrics`` section (the default) go into ``result.json``'s
    ``"metrics"`` and become columns of the leaderboard and of bench reports;
    the ``uniformity`` section is the record's ``"uniformity"`` (before and
    after fine-tuning, thesis eq 3.6-3.8). Names must not collide with
    another selected metric's.
    """

    section: ClassVar[str] = "metrics"

    @abc.abstractmethod
    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        """Metric name -> value, computed from the retrieval's embeddings, positives and conventions."""
