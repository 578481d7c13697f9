"""How uniformly the embeddings spread on the hypersphere (thesis eq 3.6-3.8), before and after fine-tuning.

Recorded in ``result.json``'s ``"uniformity"`` section, not among the
retrieval metrics: lower (more negative) is more uniform.
"""

from __future__ import annotations

import numpy as np

from cvbench import Metric, Retrieval, metrics
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int


class Uniformity(Metric):
    """``ground``, ``satellite`` and ``all`` uniformity of the queries and their positives (the other view).

    On a seeded sample of at most ``sample`` queries (the run's seed), since
    the measure is quadratic in the number of embeddings; ``t`` is the
    temperature of eq 3.5.
    """

    section = "uniformity"

    def __init__(self, t: float = 2.0, sample: int = 4096) -> None:
        self.t = require_float("uniformity", "t", t, low=0.0, low_open=True)
        self.sample = require_int("uniformity", "sample", sample, minimum=2)

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        chosen = np.arange(len(retrieval.query))
        if len(chosen) > self.sample:
            chosen = np.sort(np.random.default_rng(retrieval.seed).choice(len(chosen), self.sample, replace=False))
        queries, positives = retrieval.query[chosen], retrieval.reference[retrieval.positives[chosen]]
        ground, aerial = (queries, positives) if retrieval.query_view == "ground" else (positives, queries)
        return metrics.uniformity_report(ground, aerial, t=self.t)


@hookimpl
def register_metrics(register: Register) -> None:
    """Register ``uniformity`` with cvbench."""
    register("uniformity", Uniformity, summary="uniformity of ground, satellite and all embeddings (eq 3.6-3.8)")
