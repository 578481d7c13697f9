"""Average precision over every correct reference of a query, the metric University-1652 reports beside R@1.

For a protocol with one correct reference per query AP is its reciprocal
rank (MRR). Exact, with ties as the run's ``--ties`` says
(:func:`cvbench.metrics.average_precision`).
"""

from __future__ import annotations

from cvbench import Metric, Retrieval, metrics
from cvbench.contract.hookspecs import Register, hookimpl


class AveragePrecision(Metric):
    """``AP``: mean over queries of the average precision over all their correct references, in percent."""

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        return {"AP": metrics.average_precision(retrieval.query, retrieval.reference, retrieval.positives,
                                                retrieval.also_correct, retrieval.conventions.ties)}


@hookimpl
def register_metrics(register: Register) -> None:
    """Register ``ap`` with cvbench."""
    register("ap", AveragePrecision, summary="AP over all correct references (University-1652); MRR for one")
