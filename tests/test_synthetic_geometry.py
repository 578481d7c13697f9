"""Geometry of the synthetic renderers on hand-made maps: where things appear, and exact symmetries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvbench_plugins.datasets.synthetic.aerial import crop_tiles, satellite_image
from cvbench_plugins.datasets.synthetic.citymap import CityMap
from cvbench_plugins.datasets.synthetic.lighting import Lighting, cast_shadows, light_city
from cvbench_plugins.datasets.synthetic.materials import Material
from cvbench_plugins.datasets.synthetic.panorama import render_panoramas
from cvbench_plugins.datasets.synthetic.plan import plan_city
from cvbench_plugins.datasets.synthetic.queries import roll_panoramas
from cvbench_plugins.datasets.synthetic.raster import rasterise, with_cars
from cvbench_plugins.datasets.synthetic.styles import STYLES

RED = (220, 0, 0)
SIZE = 128
CAMERA = (64.3, 40.6)  # x east, y north; off the cell centres, so no ray sample lands on a cell edge


def add_box(city: CityMap, x0: int, x1: int, y0: int, y1: int, height: float, colour, storey: float = 0.0,
            base: float = 0.0, material: Material = Material.BUILDING) -> None:
    """A box over x in [x0, x1), y in [y0, y1) with outward normals towards its nearest side."""
    rows = slice(SIZE - y1, SIZE - y0)
    cols = slice(x0, x1)
    y, x = np.mgrid[rows, cols]
    x, y = x + 0.5, SIZE - y - 0.5
    gaps = np.stack([x - x0, x1 - x, y - y0, y1 - y])
    outward = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)
    city.height[rows, cols] = height
    city.base[rows, cols] = base
    city.material[rows, cols] = material
    city.top[rows, cols] = colour
    city.side[rows, cols] = colour
    city.window[rows, cols] = (20, 20, 60)
    city.storey[rows, cols] = storey
    city.normal[rows, cols] = outward[gaps.argmin(0)]


def grey_plain() -> CityMap:
    return CityMap.blank(SIZE, Material.PAVEMENT, (128, 128, 128))


def test_a_building_north_of_the_camera_fills_the_north_columns_between_the_hand_computed_rows():
    city = grey_plain()
    # Facade 20 m north of the camera, 22 m tall: seen from 2 m up, its top is 45 degrees high.
    add_box(city, 54, 76, 61, 71, 22.0, RED)
    lit = light_city(city, Lighting.from_angles(180, 60))
    pano = render_panoramas(lit, np.array([CAMERA]), (32, 128))[0]
    red = (pano[..., 0] > 100) & (pano[..., 1] < 60)
    # Row r looks at elevation 90 - 5.625 (r + 0.5): rows 8 (42.2) to 16 (-2.8) reach the facade; row 7
    # (47.8) passes over it and row 17 (-8.4) meets the ground 13.5 m out, before the facade.
    assert red[:, 0].nonzero()[0].tolist() == list(range(8, 17))
    # Half the facade's width is 11 m at 20 m: atan(11 / 20) = 28.8 degrees, about 10 columns each side.
    assert red[12, :9].all() and red[12, -9:].all()
    assert not red[12, 12:-12].any()
    # The south face meets a sun 60 degrees up in the south at cos 60: ambient + direct / 2, then
    # 20 m of haze (a d / (d + haze) blend towards the horizon colour).
    lit_red = 220 * (lit.light.ambient + lit.light.direct * math.cos(math.radians(60)))
    fade = 20 / (20 + lit.light.haze_metres)
    assert abs(int(pano[12, 0, 0]) - (lit_red * (1 - fade) + lit.light.sky_horizon[0] * fade)) <= 1


def test_a_building_north_of_the_tile_centre_lies_in_the_tile_upper_half():
    city = grey_plain()
    add_box(city, 54, 76, 61, 71, 22.0, RED)
    lit = light_city(city, Lighting(sun=(0.0, 0.0, 1.0)))
    tile = crop_tiles(satellite_image(lit), np.array([[64.0, 40.0]]), 64.0, 64)[0]
    red = (tile[..., 0] > 100) & (tile[..., 1] < 60)
    rows, cols = red.nonzero()
    # y 61..71 is 21..31 m north of the centre: tile rows 32 - 31 = 1 to 32 - 21 = 10; x 54..76 -> columns 22..43.
    assert rows.min() == 1 and rows.max() == 10
    assert cols.min() == 22 and cols.max() == 43


def test_a_shadow_reaches_as_far_as_the_caster_is_tall_under_a_45_degree_sun():
    height = np.zeros((40, 40), np.float32)
    height[30, 20] = 10.0  # a 10 m pole; the sun is due south, 45 degrees up, so shadows fall north
    sun = (0.0, -math.sqrt(0.5), math.sqrt(0.5))
    shadow = cast_shadows(height, sun)
    expected = np.zeros_like(shadow)
    expected[21:30, 20] = True  # 1 to 9 m north; at 10 m the ray clears the pole's top
    assert (shadow == expected).all()


def test_shadows_stop_at_the_map_edge_instead_of_wrapping_round():
    height = np.zeros((40, 40), np.float32)
    height[:, 1] = 30.0  # a wall by the west edge, sun low in the west: shadows fall east, never wrap west
    shadow = cast_shadows(height, (-math.sqrt(0.75), 0.0, 0.5))
    assert shadow[:, 2:10].all()
    assert not shadow[:, 0].any()


def hand_made_city() -> CityMap:
    city = grey_plain()
    add_box(city, 54, 76, 61, 71, 22.0, RED, storey=3.0)
    add_box(city, 80, 90, 20, 50, 9.0, (30, 160, 40), storey=2.5)
    add_box(city, 30, 44, 30, 36, 5.0, (40, 60, 200))
    add_box(city, 60, 63, 20, 23, 9.0, (50, 120, 50), base=3.0, material=Material.TREE)
    add_box(city, 50, 70, 33, 34, 1.4, (60, 90, 40), material=Material.HEDGE)
    return city


def test_turning_the_map_a_quarter_rolls_the_panorama_by_exactly_a_quarter_width():
    city = hand_made_city()
    light = Lighting.from_angles(200, 35)
    turned = city.rot90()
    for size in ((32, 128), (64, 256)):
        pano = render_panoramas(light_city(city, light), np.array([CAMERA]), size)[0]
        camera = (SIZE - CAMERA[1], CAMERA[0])  # a counter-clockwise quarter turn about the centre
        turned_pano = render_panoramas(light_city(turned, light.rot90()), np.array([camera]), size)[0]
        assert np.array_equal(turned_pano, np.roll(pano, -size[1] // 4, axis=1))


def test_turning_a_generated_city_keeps_tiles_and_panoramas_consistent():
    plan = plan_city(STYLES["old_town"], 160, np.random.default_rng(3))
    _, canvas, streets = rasterise(plan, np.random.default_rng(4))
    city = with_cars(canvas, plan.cars)
    size = city.size
    rng = np.random.default_rng(5)
    rows, cols = np.nonzero(streets[40:120, 40:120] & (city.height[40:120, 40:120] == 0))
    pick = rng.choice(len(rows), 8, replace=False)
    cameras = np.stack([40 + cols[pick] + rng.uniform(0.1, 0.9, 8),
                        size - 40 - rows[pick] - 1 + rng.uniform(0.1, 0.9, 8)], axis=1)
    turned_cameras = np.stack([size - cameras[:, 1], cameras[:, 0]], axis=1)
    light = Lighting.from_angles(150, 50)
    lit, turned_lit = light_city(city, light), light_city(city.rot90(), light.rot90())
    panos = render_panoramas(lit, cameras)
    turned_panos = render_panoramas(turned_lit, turned_cameras)
    assert np.array_equal(turned_panos, np.roll(panos, -32, axis=2))
    centres = np.floor(cameras)  # whole metres: tile pixels then sit on cell centres
    tiles = crop_tiles(satellite_image(lit), centres, 64.0, 64)
    turned_tiles = crop_tiles(satellite_image(turned_lit), np.stack([size - centres[:, 1], centres[:, 0]], 1), 64.0, 64)
    assert np.array_equal(turned_tiles, np.rot90(tiles, axes=(1, 2)))


def test_a_recorded_yaw_undoes_the_roll():
    rng = np.random.default_rng(0)
    panoramas = rng.integers(0, 256, (5, 4, 16, 3), dtype=np.uint8)
    columns = np.array([0, 1, 5, 15, 8])
    rolled = roll_panoramas(panoramas, columns)
    for original, turned, shift in zip(panoramas, rolled, columns):
        yaw_deg = 360.0 * shift / 16
        assert np.array_equal(turned[:, 0], original[:, shift])  # column 0 now faces azimuth yaw_deg
        assert np.array_equal(np.roll(turned, round(yaw_deg / 360 * 16), axis=1), original)


@pytest.mark.parametrize("size", [(32, 128), (64, 256)])
def test_the_sky_fills_the_upper_rows_over_open_ground(size):
    lit = light_city(grey_plain(), Lighting.from_angles(180, 50))
    pano = render_panoramas(lit, np.array([CAMERA]), size)[0].astype(int)
    upper, lower = pano[: size[0] // 2], pano[size[0] // 2:]
    assert (upper[..., 2] > upper[..., 0]).all()                 # blue sky above the horizon
    assert (np.abs(lower[-1, :, 0] - lower[-1, :, 2]) < 8).all()  # grey ground right below


def test_tiles_average_the_cells_a_pixel_covers():
    image = np.zeros((64, 64, 3), np.float32)
    image[:, :, 0] = 2 * np.arange(64)[None, :]     # red grows 2 levels per metre east
    image[:, :, 1] = 2 * np.arange(64)[:, None]     # green grows 2 levels per metre south
    tile = crop_tiles(image, np.array([[32.0, 32.0]]), 16.0, 8)[0].astype(int)
    # Pixel (i, j) spans 2 x 2 cells: x from 24 + 2j, rows from 24 + 2i; means 2 (24 + 2j) + 1, 2 (24 + 2i) + 1.
    assert tile[:, :, 0].tolist() == [[49 + 4 * j for j in range(8)]] * 8
    assert tile[:, :, 1].tolist() == [[49 + 4 * i] * 8 for i in range(8)]
