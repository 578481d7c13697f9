"""``gps_neighbours``: each batch holds pairs taken near one another, so its negatives look alike.

Sample4Geo [0] starts VIGOR training this way: neighbours on the map are the
hardest negatives a model has not learned to tell apart yet. Each pair, in a
shuffled order, pulls into its batch up to ``count`` of its nearest other
pairs within ``radius`` metres, nearest first (pairs that would share a tile
with the batch excepted). Needs the training items' coordinates
(``lat``/``lon`` or ``x``/``y`` metres).

- [0] Deuser, Habel, Oswald. "Sample4Geo: Hard negative sampling for
  cross-view geo-localisation", ICCV 2023.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree

from cvbench import Batching, Sampler, metrics
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_float, require_int
from cvbench.data.sampling import fill_batches
from cvbench.errors import SpecError


def planar_metres(meta: pd.DataFrame, sampler: str) -> np.ndarray:
    """The items' positions in metres in a local plane (latitude and longitude projected around their mean)."""
    where = metrics.positions(meta, "training items")
    if where is None:
        raise SpecError(f"{sampler} needs the training items' coordinates (lat/lon or x/y columns), and this "
                        "dataset's training pairs have none: use --sampler conflict_free or hard_negatives")
    if where.kind == "xy":
        return where.values
    lat = np.radians(where.values[:, 0])
    lon = np.radians(where.values[:, 1])
    return metrics.EARTH_RADIUS_M * np.stack([(lon - lon.mean()) * np.cos(lat.mean()), lat - lat.mean()], axis=1)


def neighbours(points: np.ndarray, count: int, radius: float) -> list[list[int]]:
    """Each point's nearest other points within ``radius``, nearest first, at most ``count``."""
    distances, found = cKDTree(points).query(points, k=min(count + 1, len(points)), distance_upper_bound=radius)
    found = np.asarray(found).reshape(len(points), -1)
    distances = np.asarray(distances).reshape(len(points), -1)
    return [[int(j) for j, d in zip(row, dist) if j != i and j < len(points) and np.isfinite(d)][:count]
            for i, (row, dist) in enumerate(zip(found, distances))]


class GPSNeighbours(Sampler):
    """Batches of pairs near one another on the map: up to ``count`` neighbours within ``radius`` metres each."""

    def __init__(self, count: int = 8, radius: float = 500.0) -> None:
        self.count = require_int("gps_neighbours", "count", count, minimum=1)
        self.radius = require_float("gps_neighbours", "radius", radius, low=0.0, low_open=True)
        self._cache: tuple[pd.DataFrame, list[list[int]]] | None = None

    def check(self, batching: Batching) -> None:
        if self.count >= batching.batch_size:
            raise SpecError(f"gps_neighbours: count {self.count} neighbours and the pair itself do not fit a batch of "
                            f"{batching.batch_size}; use --sampler-option count=N with N < --batch-size")
        if self.count >= len(batching.conflicts):
            raise SpecError(f"gps_neighbours: count {self.count} neighbours, but the training subset has "
                            f"{len(batching.conflicts)} pairs; use --sampler-option count=N with N < "
                            f"{len(batching.conflicts)}")
        planar_metres(batching.meta, "gps_neighbours")  # the coordinates exist

    def companions(self, batching: Batching) -> list[list[int]]:
        """Each item's neighbours, computed once per training subset (the engine hands every epoch the same meta)."""
        if self._cache is None or self._cache[0] is not batching.meta:
            self._cache = (batching.meta, neighbours(planar_metres(batching.meta, "gps_neighbours"), self.count,
                                                     self.radius))
        return self._cache[1]

    def plan(self, batching: Batching) -> list[list[int]]:
        self.check(batching)
        near = self.companions(batching)
        order = torch.randperm(len(batching.conflicts), generator=batching.generator).tolist()
        return fill_batches(order, batching.conflicts, batching.batch_size, companions=near.__getitem__)


@hookimpl
def register_samplers(register: Register) -> None:
    """Register ``gps_neighbours``."""
    register("gps_neighbours", GPSNeighbours, summary="batches of pairs near one another on the map (Sample4Geo's "
                                                      "first epoch)")
