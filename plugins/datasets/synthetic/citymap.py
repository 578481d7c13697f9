"""The raster a city is rendered from: one cell per square metre, row 0 the north edge.

Both renderers read only this, so a test can build a tiny map by hand.
Coordinates: ``x`` east and ``y`` north in metres; cell ``(row, col)`` covers
``x in [col, col + 1)`` and ``y in [size - row - 1, size - row)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .materials import Material

RGB = tuple[int, int, int]


@dataclass
class CityMap:
    """Per-cell layers of a square city.

    ``height`` is the top of whatever stands on the cell (0 for bare ground) and
    ``base`` its underside (above 0 only for tree canopies, which rays pass
    beneath). ``top`` is the colour seen from above, ``side`` the colour of its
    vertical faces, ``window`` the window colour of buildings whose ``storey``
    height is above 0. ``normal`` is the outward unit normal (east, north) of
    the face nearest the cell, used to shade facades by their orientation.
    ``outside`` is the colour of the open land beyond the map.
    """

    height: np.ndarray
    base: np.ndarray
    material: np.ndarray
    top: np.ndarray
    side: np.ndarray
    window: np.ndarray
    storey: np.ndarray
    normal: np.ndarray
    outside: RGB = (110, 130, 80)

    @property
    def size(self) -> int:
        return self.height.shape[0]

    @classmethod
    def blank(cls, size: int, material: Material = Material.GRASS, colour: RGB = (96, 140, 72)) -> "CityMap":
        """Flat open ground of one material and colour."""
        plane = np.zeros((size, size), np.float32)
        colours = np.empty((size, size, 3), np.uint8)
        colours[:] = colour
        return cls(height=plane, base=plane.copy(), material=np.full((size, size), int(material), np.uint8),
                   top=colours, side=colours.copy(), window=colours.copy(), storey=plane.copy(),
                   normal=np.zeros((size, size, 2), np.float32), outside=colour)

    def copy(self) -> "CityMap":
        return replace(self, **{name: getattr(self, name).copy() for name in _LAYERS})

    def rot90(self) -> "CityMap":
        """The city turned a quarter counter-clockwise about its centre (north becomes west)."""
        turned = {name: np.ascontiguousarray(np.rot90(getattr(self, name))) for name in _LAYERS}
        east, north = self.normal[..., 0], self.normal[..., 1]
        # A counter-clockwise turn maps direction (e, n) to (-n, e).
        turned["normal"] = np.ascontiguousarray(np.rot90(np.stack([-north, east], axis=-1)))
        return replace(self, **turned)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row, column and inside-the-map flag of points ``(x, y)``."""
        col = np.floor(x).astype(np.int64)
        row = np.floor(self.size - y).astype(np.int64)
        inside = (col >= 0) & (col < self.size) & (row >= 0) & (row < self.size)
        return row, col, inside


_LAYERS = ("height", "base", "material", "top", "side", "window", "storey", "normal")
