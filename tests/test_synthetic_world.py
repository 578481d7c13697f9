"""The generated world: styles that differ like cities do, cues tied across views, temporal change, labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_cdt

from cvbench_plugins.datasets.synthetic.city import CAR_CLEARANCE, build_city
from cvbench_plugins.datasets.synthetic.materials import SCENE_OF_MATERIAL, VEGETATION, Material
from cvbench_plugins.datasets.synthetic.options import SyntheticOptions
from cvbench_plugins.datasets.synthetic.plan import plan_city
from cvbench_plugins.datasets.synthetic.raster import rasterise
from cvbench_plugins.datasets.synthetic.scene import scene_labels
from cvbench_plugins.datasets.synthetic.styles import STYLES
from cvbench_plugins.datasets.synthetic.temporal import apply_season


@pytest.fixture(scope="module")
def cities():
    """One 384 m city per style, with the plan it was drawn from."""
    built = {}
    for name, style in STYLES.items():
        plan = plan_city(style, 384, np.random.default_rng(11))
        built[name] = (plan, rasterise(plan, np.random.default_rng(12))[0])
    return built


def share(city, *materials) -> float:
    return float(np.isin(city.material, materials).mean())


def test_every_style_builds_a_city_that_reads_as_one(cities):
    for name, (_, city) in cities.items():
        assert 0.08 < share(city, Material.BUILDING) < 0.5, name
        assert 0.1 < share(city, Material.ROAD) < 0.45, name


def test_styles_differ_the_way_cities_do(cities):
    def mean_height(name):
        city = cities[name][1]
        return city.height[city.material == Material.BUILDING].mean()

    def footprint(name):
        return np.median([(b.u1 - b.u0) * (b.v1 - b.v0) for b in cities[name][0].buildings])

    assert mean_height("downtown") > 2 * mean_height("garden_city") > 2 * mean_height("suburb")
    assert footprint("industrial") > 3 * footprint("downtown") > 3 * footprint("old_town")
    green = {name: share(city, *VEGETATION) for name, (_, city) in cities.items()}
    assert min(green["suburb"], green["garden_city"]) > 0.4 > 0.1 > max(green["downtown"], green["old_town"])
    assert share(cities["old_town"][1], Material.WATER) > 0.01  # its canal


def test_a_roof_colour_tells_the_facade_colour_within_a_style(cities):
    for name, (plan, _) in cities.items():
        types = STYLES[name].building_types
        for building in plan.buildings:
            by_roof = min(types, key=lambda t: np.abs(np.subtract(t.roof, building.roof)).sum())
            by_facade = min(types, key=lambda t: np.abs(np.subtract(t.facade, building.facade)).sum())
            assert by_roof is by_facade, name


def test_cameras_keep_clear_of_cars_and_walls_in_every_view():
    city = build_city(SyntheticOptions(city_size=256, temporal_change=1.0), 0)
    rows, cols = np.nonzero(city.cameras)
    assert len(rows) > 1000
    for lit in city.epochs:
        # Chessboard distance from every cell to the nearest car cell.
        gap = distance_transform_cdt(lit.city.material != Material.CAR, metric="chessboard")
        assert gap[rows, cols].min() > CAR_CLEARANCE
        assert (lit.city.height[rows, cols] == 0).all()


def test_without_temporal_change_every_epoch_shows_the_satellite_moment():
    still = build_city(SyntheticOptions(city_size=256, temporal_change=0.0), 1)
    first = still.epochs[0]
    for lit in still.epochs[1:]:
        assert np.array_equal(lit.city.top, first.city.top) and lit.light == first.light
    assert np.array_equal(first.city.material, still.material)

    changing = build_city(SyntheticOptions(city_size=256, temporal_change=1.0), 1)
    cars = [lit.city.material == Material.CAR for lit in changing.epochs]
    assert not np.array_equal(cars[0], changing.material == Material.CAR)
    assert len({lit.light.sun for lit in changing.epochs}) == len(changing.epochs)


def test_a_season_recolours_vegetation_and_nothing_else(cities):
    city = cities["garden_city"][1]
    autumn = apply_season(city, "autumn", 1.0)
    green = np.isin(city.material, VEGETATION)
    assert np.array_equal(autumn.top[~green], city.top[~green])
    changed = (autumn.top[green] != city.top[green]).any(-1)
    assert changed.mean() > 0.99
    assert autumn.top[green][:, 0].mean() > city.top[green][:, 0].mean() + 30  # redder leaves
    assert apply_season(city, "summer", 1.0) is city and apply_season(city, "winter", 0.0) is city


def test_scene_labels_are_the_majority_class_of_the_square_counted_by_brute_force():
    rng = np.random.default_rng(0)
    material = rng.integers(0, len(Material), (50, 50)).astype(np.uint8)
    material[10:30, 5:25] = Material.WATER
    centres = np.array([[15.0, 30.0], [37.5, 12.5], [8.0, 8.0], [25.2, 24.6]])
    labels = scene_labels(material, centres, 16.0)
    scene = SCENE_OF_MATERIAL[material]
    for (x, y), label in zip(centres, labels):
        rows = slice(int(round(50 - y - 8)), int(round(50 - y + 8)))
        cols = slice(max(0, int(round(x - 8))), int(round(x + 8)))
        counts = np.bincount(scene[rows, cols].ravel(), minlength=5)
        assert label == counts.argmax()
    assert labels[0] == 3  # the square around (15, 30) is water
