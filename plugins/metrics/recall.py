"""Top-k recall R@k and R@1% (the thesis' section 4.1 protocol), and VIGOR's hit rate where semi-positives exist.

The ranking is exact (:func:`cvbench.metrics.recall_report`): the same
numbers for any chunk size, without the N x M score matrix. Ties, R@1%'s k
and the hit rate follow the run's conventions (``--ties``, ``--one-percent``,
``--hit-rate``).
"""

from __future__ import annotations

from typing import Any

from cvbench import Metric, Retrieval, metrics
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_int
from cvbench.errors import SpecError

TIED_QUERIES_WARNING = 1.0
"""Percent of queries tied with a wrong reference above which the record warns: their R@k depends on the ties rule."""


class Recall(Metric):
    """R@k for each k of ``ks`` and R@1% in percent; ``hit_rate`` (VIGOR) when the protocol has semi-positives.

    A query counts as found at k when any of its correct references
    (positives, and CVACT_test's ``also_correct``) ranks within k. When the
    R@k of more than 1% of the queries depends on how their ties with wrong
    references are broken, the record warns: those numbers measure the ties
    rule as much as the model.
    """

    def __init__(self, ks: Any = (1, 5, 10)) -> None:
        items = [part for part in ks.split(",") if part.strip()] if isinstance(ks, str) else ks
        if isinstance(items, int) and not isinstance(items, bool):
            items = [items]
        if not isinstance(items, (list, tuple)) or not items:
            raise SpecError(f"recall: option ks must be a list of whole numbers such as 1,5,10, got {ks!r}")
        values = [int(item) if isinstance(item, str) and item.strip().isdigit() else item for item in items]
        self.ks = tuple(require_int("recall", "ks", value, minimum=1) for value in values)

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        report = metrics.recall_report(retrieval.query, retrieval.reference, retrieval.positives, self.ks,
                                       retrieval.semi_positives, retrieval.also_correct, retrieval.conventions)
        if report.tied_queries > TIED_QUERIES_WARNING:
            retrieval.warn(f"{report.tied_queries:.1f}% of the queries tie with a wrong reference where an R@k "
                           f"is decided; their R@k counts under ties={retrieval.conventions.ties} (a collapsed or "
                           "low-resolution embedding?)")
        return report.values


@hookimpl
def register_metrics(register: Register) -> None:
    """Register ``recall`` with cvbench."""
    register("recall", Recall, summary="R@1, R@5, R@10, R@1% (exact ranking) and VIGOR's hit rate")
