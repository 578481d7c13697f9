"""The compiled loops over a city's map, each against hand-computed values.

Shadows, lit surfaces, the far-ground blur, tiles, the street warp's inverse, seasons and scene counts.

Their bytes on whole cities are checked against the pre-speed-up record by
``test_synthetic_identity.py``; here each loop meets a case small enough to
work out by hand, including the rounding and edge rules numpy followed.
"""

from __future__ import annotations

import numpy as np

from cvbench_plugins.datasets.synthetic.citymap import CityMap
from cvbench_plugins.datasets.synthetic.frame import SmoothField, StreetFrame
from cvbench_plugins.datasets.synthetic.lighting import Lighting, LitCity, box_blur
from cvbench_plugins.datasets.synthetic.materials import Material
from cvbench_plugins.datasets.synthetic.resample import sample_tiles, to_levels
from cvbench_plugins.datasets.synthetic.scene import count_scenes
from cvbench_plugins.datasets.synthetic.shading import mark_shadows
from cvbench_plugins.datasets.synthetic.temporal import apply_season


def test_a_cell_is_shadowed_where_a_cell_ahead_rises_strictly_above_the_climbing_ray():
    height = np.array([[0.0, 0.0, 0.0, 3.0, 0.0]], np.float32)
    shadow = np.zeros(height.shape, np.uint8)
    # Looking one cell east the ray has climbed 1 m, two cells east 3 m.
    mark_shadows(height, np.array([0, 0]), np.array([1, 2]), np.array([1.0, 3.0], np.float32), shadow)
    # Column 2: 3 > 0 + 1. Column 1: 3 > 0 + 3 is false (strict). Column 4: nothing east of it on the map.
    assert shadow.tolist() == [[0, 0, 1, 0, 0]]


def test_the_lit_surface_is_the_top_colour_times_ambient_plus_direct_light_outside_shadow():
    city = CityMap.blank(2, colour=(100, 50, 10))
    lit = LitCity(city, Lighting((0.0, 0.0, 1.0), ambient=0.5, direct=0.25), np.array([[True, False], [False, False]]))
    assert lit.surface.dtype == np.float32
    assert lit.surface[0, 0].tolist() == [50.0, 25.0, 5.0]    # shadow: ambient only
    assert lit.surface[1, 1].tolist() == [75.0, 37.5, 7.5]    # lit: 0.5 + 0.25 * sun up (1)


def test_box_blur_rounds_half_to_even_then_averages_with_edges_replicated():
    image = np.array([[0.5, 1.5], [2.5, 4.0]], np.float32)[..., None]
    # Rounded half to even: [[0, 2], [2, 4]]; padded by one with edges replicated the 3 x 3 windows sum to:
    sums = np.array([[12, 18], [18, 24]], np.float32)
    blurred = box_blur(image, 1)
    assert blurred.dtype == np.float32
    assert blurred[..., 0].tobytes() == (sums / np.float32(9)).tobytes()


def test_a_tile_pixel_interpolates_the_four_cells_around_it_in_float32():
    image = np.array([[[0.0], [10.0]], [[20.0], [30.0]]], np.float32)
    tiles = np.empty((1, 1, 1, 1), np.float32)
    # A quarter of the way to the second row, half way to the second column: (5 * 0.75 + 25 * 0.25) = 10.
    sample_tiles(image, np.array([[0]]), np.array([[0.25]], np.float32), np.array([[0]]),
                 np.array([[0.5]], np.float32), tiles)
    assert tiles.ravel().tolist() == [10.0]


def test_tile_levels_round_half_to_even_and_clip_to_bytes():
    levels = np.empty(6, np.uint8)
    to_levels(np.array([-3.2, 0.5, 1.5, 2.5, 254.6, 300.0], np.float32), levels)
    assert levels.tolist() == [0, 0, 2, 2, 255, 255]


def test_the_inverse_of_a_constant_warp_is_exact_and_of_a_smooth_warp_within_millimetres():
    shift_u, shift_v = SmoothField(np.full((3, 3), 2.0), 128.0), SmoothField(np.full((3, 3), -1.0), 128.0)
    frame = StreetFrame(100, cos=1.0, sin=0.0, warp=2.0, warp_u=shift_u, warp_v=shift_v)
    # u = x - 50 + 2, v = y - 50 - 1, so x = u + 48, y = v + 51 (all weights dyadic: exact sums).
    x, y = frame.xy(np.array([0.0, 10.0]), np.array([0.0, -5.0]))
    assert x.tolist() == [48.0, 58.0] and y.tolist() == [51.0, 46.0]
    rng = np.random.default_rng(0)
    bent = StreetFrame.random(rng, 320, "irregular", 6.0)
    points = rng.uniform(0, 320, (2, 50))
    back = bent.xy(*bent.uv(*points))
    assert np.abs(np.array(back) - points).max() < 0.01


def test_vegetation_turns_towards_the_season_rounded_half_to_even_and_other_cells_keep_their_colour():
    city = CityMap.blank(2, colour=(5, 200, 50))
    city.material[0, 1] = Material.ROAD
    spring = apply_season(city, "spring", 1.0)
    # Spring red is 0.9 r + 10 = 14.5 exactly in float32, rounded half to even to 14; green 1.15 * 200 + 12 = 242.
    assert spring.top[0, 0].tolist() == [14, 242, 40]
    assert spring.top[0, 1].tolist() == [5, 200, 50] and spring.side[0, 1].tolist() == [5, 200, 50]
    assert city.top[0, 0].tolist() == [5, 200, 50]  # the input city is not changed


def test_scene_counts_are_the_integral_image_of_each_class():
    material = np.array([[Material.ROAD, Material.BUILDING], [Material.ROAD, Material.ROAD]], np.uint8)
    scene_of = np.array([0, 0, 4, 4, 3, 1, 2, 2, 0], np.uint8)
    counts = np.zeros((5, 3, 3), np.int32)
    count_scenes(material, scene_of, counts)
    assert counts[0].tolist() == [[0, 0, 0], [0, 1, 1], [0, 2, 3]]  # road: three cells
    assert counts[1].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]  # building: the top right cell
    assert not counts[2:].any()
