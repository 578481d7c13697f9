"""Where queries and tiles lie: VIGOR's overlapping tile grid and its positives and semi-positives.

In the ``offset`` layout a city is covered by tiles of ``metres`` x ``metres``
whose centres form a regular grid with stride ``metres / 2`` (VIGOR). A
query's positive is the tile with the nearest centre; every other tile
whose square contains the query is a semi-positive (at most three). Queries
of both layouts lie between the first and last tile centres, so an aligned
tile centred on a query never leaves the map either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SEMI_POSITIVES = 3


@dataclass(frozen=True)
class TileGrid:
    """Tile centres at ``metres / 2 + i * stride`` along x (west to east) and y, indexed row-major from the north."""

    metres: float
    count: int

    @classmethod
    def covering(cls, city_size: float, metres: float) -> "TileGrid":
        """As many tiles per axis as fit inside the city."""
        return cls(metres, int(math.floor((city_size - metres) / (metres / 2))) + 1)

    @property
    def stride(self) -> float:
        return self.metres / 2

    @property
    def span(self) -> tuple[float, float]:
        """The range of x (and of y) between the first and the last tile centre: where queries may lie."""
        return self.metres / 2, self.metres / 2 + (self.count - 1) * self.stride

    def __len__(self) -> int:
        return self.count * self.count

    def centres(self) -> np.ndarray:
        """``(count^2, 2)`` tile centres (x, y); tile ``row * count + col`` is ``row`` strides south of the top row."""
        along = self.metres / 2 + np.arange(self.count) * self.stride
        row, col = np.divmod(np.arange(len(self)), self.count)
        return np.stack([along[col], along[self.count - 1 - row]], axis=1)

    def nearest(self, points: np.ndarray) -> np.ndarray:
        """Index of the tile whose centre is nearest each point ``(N, 2)``."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        col = self._nearest_step(points[:, 0])
        row = self.count - 1 - self._nearest_step(points[:, 1])
        return row * self.count + col

    def semi_positives(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)``: the other tiles whose square contains each point, padded with -1."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        positive = self.nearest(points)
        centres = self.centres()
        out = np.full((len(points), SEMI_POSITIVES), -1, np.int64)
        # With stride metres / 2 at most two tiles per axis contain a point: the
        # nearest step and one neighbour.
        for i, (x, y) in enumerate(points):
            cols = self._nearest_step(np.array([x]))[0] + np.array([-1, 0, 1])
            rows = self.count - 1 - self._nearest_step(np.array([y]))[0] + np.array([-1, 0, 1])
            candidates = [r * self.count + c for r in rows for c in cols
                          if 0 <= r < self.count and 0 <= c < self.count]
            found = [t for t in candidates if t != positive[i]
                     and abs(x - centres[t, 0]) < self.metres / 2 and abs(y - centres[t, 1]) < self.metres / 2]
            out[i, :len(found)] = found
        return out

    def _nearest_step(self, coordinate: np.ndarray) -> np.ndarray:
        steps = np.floor((coordinate - self.metres / 2) / self.stride + 0.5).astype(np.int64)
        return np.clip(steps, 0, self.count - 1)
