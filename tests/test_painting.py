"""The compiled painting loops of the synthetic city, each against hand-computed cells.

That they give the bytes of the numpy painter they replaced is checked as a
whole by ``test_synthetic_identity.py``; here, on an 8 x 8 map whose street
frame is the plain grid (``u = col - 3.5``, ``v = 3.5 - row`` at cell
centres), what each kind of object leaves where.
"""

from __future__ import annotations

import numpy as np

from cvbench_plugins.datasets.synthetic import painting
from cvbench_plugins.datasets.synthetic.citymap import CityMap
from cvbench_plugins.datasets.synthetic.frame import StreetFrame
from cvbench_plugins.datasets.synthetic.materials import IS_VEGETATION, TEXTURE_NOISE, Material
from cvbench_plugins.datasets.synthetic.plan import Building, Car, CarSpot, Hedge, Tree
from cvbench_plugins.datasets.synthetic.raster import Canvas, paint_buildings, paint_hedges, paint_trees, with_cars

SIZE = 8


def _canvas() -> Canvas:
    return Canvas(CityMap.blank(SIZE), StreetFrame(SIZE, cos=1.0, sin=0.0, warp=0.0))


def test_a_cell_takes_its_nearest_street_line_and_a_tie_goes_to_the_earlier_line():
    coord = np.array([[-12.0, -7.9, 0.0, 0.3, 9.6, 30.0]])
    cover = np.zeros(coord.shape, np.uint8)
    # Lines at -10 and 10: the first a narrow street, the second a wide canal.
    painting.cover_streets(coord, np.array([-10.0, 10.0]), np.array([2.0, 5.0]), np.array([3.0, 7.0]),
                           np.array([False, True]), np.array([False, True]), cover)
    walk, road, canal, centre = painting.WALK, painting.ROAD, painting.CANAL, painting.CENTRE
    # -12 and -7.9: sidewalk of the first; 0: the tie, so the first (too far for anything); 0.3: the canal's side
    # beyond its sidewalk; 9.6: on the canal's centre line; 30: beyond the last line, still nearest to it.
    assert cover[0].tolist() == [walk, walk, 0, canal, canal | walk | road | centre, canal]


def test_low_boxes_take_open_ground_first_come_first_served_and_face_their_nearest_side():
    canvas = _canvas()
    canvas.city.height[3, 3] = 5.0  # not open ground
    paint_hedges(canvas, [Hedge(-1.0, 1.0, 0.0, 1.0, 1.2, (10, 10, 10)),   # cells (3, 3) and (3, 4)
                          Hedge(0.0, 2.0, 0.0, 3.0, 0.8, (20, 20, 20))])  # rows 1-3 of columns 4 and 5
    city = canvas.city
    hedge = city.material == Material.HEDGE
    assert np.argwhere(hedge).tolist() == [[1, 4], [1, 5], [2, 4], [2, 5], [3, 4], [3, 5]]
    assert city.top[3, 4, 0] == 10 and city.height[3, 4] == np.float32(1.2)  # the first hedge's
    assert (city.top[hedge][:, 0] == 20).sum() == 5 and city.height[3, 3] == 5.0
    # Cell (1, 4) of the second hedge: 0.5 m from its west side and from its north side: west comes first.
    assert city.normal[1, 4].tolist() == [-1.0, 0.0]
    assert city.normal[2, 5].tolist() == [1.0, 0.0]


def test_a_canopy_covers_a_lower_canopy_but_not_one_that_stands_above_its_underside():
    canvas = _canvas()
    paint_trees(canvas, [Tree(0.0, 0.0, 2.0, 6.0, 2.0, (0, 100, 0)),
                         Tree(0.0, 0.0, 1.0, 12.0, 8.0, (0, 200, 0)),   # above the first: paints over it
                         Tree(0.0, 0.0, 1.0, 4.0, 1.0, (0, 50, 0))])    # its underside within the others: hidden
    city = canvas.city
    # Cell (3, 4) is 0.5 m east and north of the trunks: rho2 = 0.5 / 1 for the small trees.
    assert city.material[3, 4] == Material.TREE
    assert city.top[3, 4].tolist() == [0, 200, 0] and city.side[3, 4].tolist() == [0, 160, 0]
    assert city.height[3, 4] == np.float32(12 - 0.4 * 4 * 0.5)
    assert city.base[3, 4] == np.float32(8 + 0.3 * 4 * 0.5)
    assert city.normal[3, 4].tolist() == [np.float32(0.5 / np.sqrt(0.5))] * 2
    # Cell (3, 5), 1.5 m east: only under the big one (rho2 = 2.5 / 4).
    assert city.top[3, 5].tolist() == [0, 100, 0] and city.height[3, 5] == np.float32(6 - 0.4 * 4 * 0.625)
    assert (city.material == Material.TREE).sum() == 12  # the big canopy's disc: cells within 2 m of the trunk


def test_a_gable_peaks_on_its_ridge_line_and_a_flat_roof_has_a_darker_parapet():
    canvas = _canvas()
    paint_buildings(canvas, [Building(-4.0, 4.0, -4.0, 4.0, 10.0, 10.0, (100, 100, 100), (1, 1, 1), (2, 2, 2), 3.0),
                             Building(-3.0, 3.0, -1.0, 2.0, 6.0, 9.0, (200, 200, 200), (3, 3, 3), (4, 4, 4), 3.0)])
    city = canvas.city
    assert (city.material == Material.BUILDING).all()
    # The gable runs along u over rows 2-4 (v = 1.5, 0.5, -0.5), columns 1-6; its ridge is row 3.
    assert city.height[1:6, 3].tolist() == [10.0, 7.0, 9.0, 7.0, 10.0]
    assert city.top[1:6, 3, 0].tolist() == [100, 200, 160, 200, 100]
    assert city.side[3, 3].tolist() == [3, 3, 3] and city.window[3, 3].tolist() == [4, 4, 4]
    # The flat roof: its outer metre (a parapet) darker.
    assert city.top[0, :, 0].tolist() == [80] * 8 and city.top[1, 1, 0] == 100
    assert city.normal[0, 4].tolist() == [0.0, 1.0] and city.normal[7, 4].tolist() == [0.0, -1.0]


def test_texture_noise_rounds_down_is_clipped_and_mottles_the_sides_of_vegetation_only():
    material = np.array([[Material.GRASS, Material.ROAD, Material.TREE]], np.uint8)
    top = np.array([[[100] * 3, [253] * 3, [100] * 3]], np.uint8)
    side = top.copy()
    painting.add_texture(material, np.array([[-1, 64, -64]], np.int16), TEXTURE_NOISE, IS_VEGETATION, top, side)
    # Grass: -1 * 12 // 64 = -1 (floored, not truncated to 0); road: 253 + 5 clipped; tree: -64 * 16 // 64.
    assert top[0, :, 0].tolist() == [99, 255, 84]
    assert side[0, :, 0].tolist() == [99, 253, 84]


def test_cars_of_a_later_moment_stand_where_their_spots_say_when_earlier_moments_shared_some():
    canvas = _canvas()
    middle, north, south = CarSpot(0.0, 0.0, True), CarSpot(0.0, 2.5, True), CarSpot(0.0, -2.5, True)
    with_cars(canvas, [Car(middle, (9, 9, 9)), Car(north, (9, 9, 9))])  # the spots' boxes are found here
    city = with_cars(canvas, [Car(south, (1, 1, 1)), Car(middle, (2, 2, 2)), Car(north, (3, 3, 3))])
    # Boxes 4.6 m along u (columns 2-5) and 1.9 m across: v in [1.55, 3.45) is row 1, and so on.
    assert city.top[:, 3, 0].tolist() == [96, 3, 96, 2, 2, 96, 1, 96]
    assert (city.material == Material.CAR).sum() == 16
    assert (canvas.city.material != Material.CAR).all()  # each moment paints a copy
