"""Street-level shots of a city: where each camera stands, on which epoch, rolled how far, exposed how.

Cameras stand on street cells (roads and sidewalks) clear of cars and
obstacles, at a random point inside a cell drawn without replacement, so no
two queries of a city share a cell; with a ``spacing`` no two stand closer
than that many metres (cells are tried in a seeded random order and a
camera too close to one already placed is passed over). The per-shot exposure and tint grow with
``temporal_change``; with ``unknown_orientation`` each panorama is rolled by
a random whole number of columns and the roll is recorded as its yaw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cvbench.errors import SpecError

from .city import GROUND_EPOCHS, City


@dataclass(frozen=True)
class Shots:
    """``N`` query shots in one city."""

    positions: np.ndarray    # (N, 2) x east, y north, metres
    epochs: np.ndarray       # (N,) index into City.epochs
    yaw_columns: np.ndarray  # (N,) columns the panorama is rolled left by
    exposure: np.ndarray     # (N, 3) gain per colour channel

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, index: slice | np.ndarray) -> "Shots":
        return Shots(self.positions[index], self.epochs[index], self.yaw_columns[index], self.exposure[index])


def sample_shots(city: City, count: int, span: tuple[float, float], pano_width: int, change: float,
                 unknown_orientation: bool, rng: np.random.Generator, spacing: float = 0.0) -> Shots:
    """``count`` shots in ``city`` with both coordinates inside ``span``, at least ``spacing`` metres apart."""
    size = city.size
    low, high = span
    rows, cols = np.nonzero(city.cameras)
    # Whole cells inside the span, so every point drawn in them is too.
    x0, y0 = cols.astype(np.float64), (size - rows - 1).astype(np.float64)
    keep = (x0 >= low) & (x0 + 1 <= high) & (y0 >= low) & (y0 + 1 <= high)
    x0, y0 = x0[keep], y0[keep]
    if count > len(x0):
        raise SpecError(f"synthetic city {city.name} has room for {len(x0)} cameras but {count} queries were "
                        f"asked of it; lower 'train_pairs'/'val_pairs' or raise 'city_size' or the number of cities")
    if spacing > 0:
        positions = _spaced(x0, y0, count, spacing, rng, city.name)
    else:
        chosen = rng.choice(len(x0), size=count, replace=False)
        positions = np.stack([x0[chosen] + rng.uniform(0.1, 0.9, count), y0[chosen] + rng.uniform(0.1, 0.9, count)],
                             1)
    epochs = rng.integers(0, GROUND_EPOCHS, count)
    # Drawn either way, so that switching orientation off changes nothing else.
    yaw = rng.integers(0, pano_width, count) * int(unknown_orientation)
    brightness = 1 + change * rng.uniform(-0.25, 0.25, (count, 1))
    tint = 1 + change * rng.uniform(-0.06, 0.06, (count, 3))
    return Shots(positions, epochs, yaw, (brightness * tint).astype(np.float32))


def _spaced(x0: np.ndarray, y0: np.ndarray, count: int, spacing: float, rng: np.random.Generator,
            city: str) -> np.ndarray:
    """``count`` points, one in each of some cells ``(x0, y0)``, no two closer than ``spacing`` (dart throwing).

    A hash of square buckets ``spacing`` wide finds the placed points that
    could be too close: only those in the 3 x 3 buckets around a candidate.
    """
    order = rng.permutation(len(x0))
    jitter = rng.uniform(0.1, 0.9, (len(x0), 2))
    buckets: dict[tuple[int, int], list[int]] = {}
    placed: list[tuple[float, float]] = []
    for cell in order:
        x, y = x0[cell] + jitter[cell, 0], y0[cell] + jitter[cell, 1]
        bx, by = int(x // spacing), int(y // spacing)
        near = (placed[i] for dx in (-1, 0, 1) for dy in (-1, 0, 1) for i in buckets.get((bx + dx, by + dy), ()))
        if any((x - px) ** 2 + (y - py) ** 2 < spacing ** 2 for px, py in near):
            continue
        buckets.setdefault((bx, by), []).append(len(placed))
        placed.append((x, y))
        if len(placed) == count:
            return np.array(placed)
    raise SpecError(f"synthetic city {city} has room for {len(placed)} cameras {spacing:g} m apart but {count} "
                    "queries were asked of it; lower 'reference_spacing', 'train_pairs'/'val_pairs', or raise "
                    "'city_size' or the number of cities")


def roll_panoramas(panoramas: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Roll each panorama ``(N, H, W, 3)`` left by its ``columns``: column 0 then faces azimuth ``360 columns / W``.

    ``np.roll(rolled, columns[i], axis=1)`` restores panorama ``i``.
    """
    if not np.any(columns):
        return panoramas
    width = panoramas.shape[2]
    index = (np.arange(width)[None, :] + np.asarray(columns)[:, None]) % width
    return np.take_along_axis(panoramas, index[:, None, :, None], axis=2)
