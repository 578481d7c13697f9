"""Metre-level localisation: how far from where each query was taken retrieval places it.

For every dataset whose items carry coordinates (VIGOR's latitude and
longitude, CVACT's UTM, the synthetic world's city frame, ``pairs`` with
location columns, University-1652 where it has them); on a dataset without
them these metrics report nothing. Ties follow the run's ``--ties``.

- ``localisation``: ``error_median_m``, ``error_mean_m`` of the top-1 tile's
  centre and ``acc@Xm``, the percent of queries placed within X metres.
- ``dis``: GTA-UAV's ``Dis@K``, the mean distance of the top K.
- ``sdm``: GTA-UAV's ``SDM@K``, the rank-weighted, distance-decayed score.
"""

from __future__ import annotations

from typing import Any

from cvbench import Metric, Retrieval, metrics
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.errors import SpecError

THRESHOLDS_M = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)
SDM_SCALE = 0.001  # GTA-UAV's s, per metre


def _items(plugin: str, option: str, value: Any, example: str) -> list:
    """A list option as given in TOML (a list) or on the command line (``1,5,10``), each entry a number."""
    items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    if isinstance(items, (int, float)) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise SpecError(f"{plugin}: option {option} must be a list such as {example}, got {value!r}")
    return [_number(item) for item in items]


def _number(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def _positions(retrieval: Retrieval) -> tuple[metrics.Positions, metrics.Positions] | None:
    """The queries' and references' positions, or None where the protocol has none."""
    try:
        where = (metrics.positions(retrieval.query_meta, "query metadata"),
                 metrics.positions(retrieval.reference_meta, "reference metadata"))
    except ValueError as exc:
        raise SpecError(f"metre metrics: {exc}") from None
    return None if None in where or len(retrieval.query) == 0 else where


class Localisation(Metric):
    """``error_median_m``, ``error_mean_m`` and ``acc@Xm`` for each X of ``thresholds`` (metres)."""

    def __init__(self, thresholds: Any = THRESHOLDS_M) -> None:
        values = _items("localisation", "thresholds", thresholds, "1,5,10")
        self.thresholds = tuple(require_float("localisation", "thresholds", v, low=0.0, low_open=True)
                                for v in values)

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        where = _positions(retrieval)
        if where is None:
            return {}
        return metrics.localisation_report(retrieval.query, retrieval.reference, *where, self.thresholds,
                                   retrieval.conventions.ties)


class DistanceAtK(Metric):
    """``Dis@K`` for each K of ``ks``: the mean distance in metres of the top K references (GTA-UAV)."""

    def __init__(self, ks: Any = (1, 3, 5)) -> None:
        self.ks = tuple(require_int("dis", "ks", v, minimum=1) for v in _items("dis", "ks", ks, "1,3,5"))

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        where = _positions(retrieval)
        if where is None:
            return {}
        values = metrics.top_k_distances(retrieval.query, retrieval.reference, *where, self.ks,
                                         retrieval.conventions.ties)
        return {key: value for key, value in values.items() if key.startswith("Dis@")}


class SpatialDistanceMetric(Metric):
    """``SDM@K`` for each K of ``ks`` (GTA-UAV), with decay ``scale`` per metre (GTA-UAV's s = 0.001)."""

    def __init__(self, ks: Any = (1, 3, 5), scale: float = SDM_SCALE) -> None:
        self.ks = tuple(require_int("sdm", "ks", v, minimum=1) for v in _items("sdm", "ks", ks, "1,3,5"))
        self.scale = require_float("sdm", "scale", _number(scale), low=0.0, low_open=True)

    def __call__(self, retrieval: Retrieval) -> dict[str, float]:
        where = _positions(retrieval)
        if where is None:
            return {}
        values = metrics.top_k_distances(retrieval.query, retrieval.reference, *where, self.ks,
                                         retrieval.conventions.ties, self.scale)
        return {key: value for key, value in values.items() if key.startswith("SDM@")}


@hookimpl
def register_metrics(register: Register) -> None:
    """Register ``localisation``, ``dis`` and ``sdm`` with cvbench."""
    register("localisation", Localisation,
             summary="error in metres of the top-1 tile's centre (median, mean, acc@1..100m)")
    register("dis", DistanceAtK, summary="Dis@K: mean distance in metres of the top K (GTA-UAV)")
    register("sdm", SpatialDistanceMetric, summary="SDM@K: rank-weighted distance score of the top K (GTA-UAV)")
