"""The panorama renderer's compiled loops on a hand-built map, against hand-computed rays.

Whole panoramas are checked byte for byte by ``test_synthetic_identity.py``
and for their geometry by ``test_synthetic_geometry.py``.
"""

from __future__ import annotations

import math

import numpy as np

from cvbench_plugins.datasets.synthetic.citymap import CityMap
from cvbench_plugins.datasets.synthetic.lighting import Lighting, light_city
from cvbench_plugins.datasets.synthetic.panorama import CAMERA_HEIGHT, PanoramaGeometry, render_panoramas
from cvbench_plugins.datasets.synthetic.ray_march import march_rays, refine_hits

SIZE = 32
CAMERA = np.array([[10.5, 16.3]])  # x east, y north
# An 8 x 4 panorama: rows at elevations 78.75, 56.25, ..., -78.75 degrees; columns facing N, E, S, W.
GEOMETRY = PanoramaGeometry.of((8, 4))
EAST = 1
# A wall across the map at x in [15, 16): the east ray is inside it from 4.5 m to 5.5 m out.
WALL_COLUMN, WALL_NEAR = 15, 4.5
K0 = int(np.argmax(GEOMETRY.distances >= WALL_NEAR))  # the first sample inside the wall


def matter(height: float, base: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Flat height and base of the wall map, then the empty cell beyond it."""
    top, bottom = np.zeros((SIZE, SIZE), np.float32), np.zeros((SIZE, SIZE), np.float32)
    top[:, WALL_COLUMN], bottom[:, WALL_COLUMN] = height, base
    return np.append(top.ravel(), np.float32(0)), np.append(bottom.ravel(), np.float32(0))


def first_hits(height: np.ndarray, base: np.ndarray, last_sample: np.ndarray | None = None) -> np.ndarray:
    """The march's first hit sample ``(W, H)`` from CAMERA; every row may be hit up to the last sample by default."""
    g = GEOMETRY
    ray_z = CAMERA_HEIGHT + g.slope[None, :] * g.distances[:, None]
    if last_sample is None:
        last_sample = np.full(g.height, len(g.distances) - 1)
    first = np.empty((1, g.width, g.height), np.int32)
    march_rays(height > 0, height, base, SIZE, CAMERA, g.east, g.north, g.distances, np.ascontiguousarray(ray_z),
               np.argsort(last_sample, kind="stable"), np.sort(last_sample), first)
    return first[0]


def test_the_march_finds_the_first_sample_inside_a_wall_for_the_rows_that_meet_it():
    assert WALL_NEAR <= GEOMETRY.distances[K0] < WALL_NEAR + 1
    first = first_hits(*matter(6.0))
    # At 4.5-5.5 m, 2 m up: row 2 (33.75 deg) is 5.0-5.7 m high and row 4 (-11.25 deg) 0.9-1.1 m, both
    # inside the 6 m wall; row 1 (56.25 deg) passes 8.7 m over it and row 5 (-33.75 deg) meets the ground at 3 m.
    assert first[EAST].tolist() == [-1, -1, K0, K0, K0, -1, -1, -1]
    assert (first[[0, 2, 3]] == -1).all()  # open ground, then beyond the map


def test_rays_pass_under_a_canopy_and_over_it_and_hit_only_between_its_base_and_top():
    first = first_hits(*matter(8.0, base=4.0))
    # Row 3 (11.25 deg) is 2.9-3.1 m high there, under the 4 m base; row 1 is above the 8 m top.
    assert first[EAST].tolist() == [-1, -1, K0, -1, -1, -1, -1, -1]


def test_a_row_past_its_last_sample_is_not_hit():
    last = np.full(GEOMETRY.height, len(GEOMETRY.distances) - 1)
    last[3] = K0 - 1
    assert first_hits(*matter(6.0), last)[EAST].tolist() == [-1, -1, K0, -1, K0, -1, -1, -1]


def test_bisection_brackets_the_wall_face_within_a_sixteenth_of_the_sample_step():
    g = GEOMETRY
    height, base = matter(6.0)
    first = first_hits(height, base)[None]
    near, far = np.zeros(first.shape), np.zeros(first.shape)
    refine_hits(height, base, SIZE, CAMERA, g.east, g.north, g.slope, g.distances, CAMERA_HEIGHT, 4,
                first, near, far)
    step = (g.distances[K0] - g.distances[K0 - 1]) / 16
    for row in (2, 3, 4):
        assert near[0, EAST, row] < WALL_NEAR <= far[0, EAST, row]
        assert math.isclose(far[0, EAST, row] - near[0, EAST, row], step, rel_tol=1e-9)
    assert (far[0, EAST, [0, 1, 5, 6, 7]] == 0).all()  # no hit: left as it was


def test_exposure_rounds_half_to_even_and_clips_to_bytes():
    grey = (128.0, 128.0, 128.0)
    lit = light_city(CityMap.blank(SIZE), Lighting(sun=(0.0, 0.0, 1.0), sky_horizon=grey, sky_zenith=grey))
    # The two top rows are sky of exactly 128; 128 times these gains is 64.5, 65.5 and 384.
    exposure = np.array([[0.50390625, 0.51171875, 3.0]], np.float32)
    pano = render_panoramas(lit, CAMERA, (8, 4), exposure)[0]
    assert pano[:2].reshape(-1, 3).tolist() == [[64, 66, 255]] * 8
