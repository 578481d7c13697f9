"""Top-k recall R@k and R@1% (the thesis' section 4.1 protocol), and VIGOR's hit rate where semi-positives exist.

The ranking is exact (:func:`cvbench.metrics.recall`): the same numbers for
any chunk size, without the N x M score matrix.
"""

from __future__ import annotations

from typing import Any

from cvbench import Metric, Retrieval, metrics
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_int
from cvbench.errors import SpecError


class Recall(Metric):
    """R@k for each k of ``ks`` and R@1% in percent; ``hit_rate`` (VIGOR) when the protocol has semi-positives.

    R@1% uses k = max(1, M // 100) for a gallery of M references. Under
    CVACT_test's ``also_correct`` tables a query also counts as found when
    any of its correct references ranks within k.
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
        return metrics.recall(retrieval.query, retrieval.reference, retrieval.positives, ks=self.ks,
                              semi_positives=retrieval.semi_positives, also_correct=retrieval.also_correct)


@hookimpl
def register_metrics(register: Register) -> None:
    """Register ``recall`` with cvbench."""
    register("recall", Recall, summary="R@1, R@5, R@10, R@1% (exact ranking) and VIGOR's hit rate")
