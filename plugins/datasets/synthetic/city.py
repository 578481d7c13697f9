"""One generated city: its satellite image, its ground-level epochs and where cameras may stand.

City ``i`` of a dataset has its own seed stream and a style taken from a
seeded permutation of the chosen styles, so with the five default styles
the five default cities are all different kinds of city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .aerial import satellite_image
from .lighting import LitCity, light_city
from .materials import Material
from .options import SyntheticOptions
from .plan import plan_city
from .raster import rasterise, with_cars
from .streams import Purpose, stream
from .styles import STYLES
from .temporal import apply_season, ground_moment, satellite_moment

GROUND_EPOCHS = 3
CAR_CLEARANCE = 3     # metres: closer than this a car fills the whole panorama
OBSTACLE_CLEARANCE = 1


@dataclass
class City:
    """A city ready to render: ``satellite`` image ``(S, S, 3)`` float32, ground ``epochs``, camera cells."""

    index: int
    name: str
    style: str
    satellite: np.ndarray
    material: np.ndarray
    epochs: list[LitCity]
    cameras: np.ndarray

    @property
    def size(self) -> int:
        return self.material.shape[0]


def city_styles(options: SyntheticOptions) -> list[str]:
    """The style of each city: train cities, then val cities, each cycling through one seeded order of styles.

    So val city ``j`` shares its style with train city ``j`` (another seed,
    another place): cross-area validation meets new cities of kinds seen in
    training, as VIGOR's test cities are new cities of the same country.
    """
    order = [options.styles[k] for k in stream(options.seed, Purpose.CITY_STYLES).permutation(len(options.styles))]
    train = [order[i % len(order)] for i in range(options.num_train_cities)]
    val = [order[j % len(order)] for j in range(options.num_val_cities)]
    return train + val


def build_city(options: SyntheticOptions, index: int) -> City:
    """Plan, rasterise and light city ``index`` at the satellite moment and at each ground epoch."""
    seed = options.seed
    style = city_styles(options)[index]
    plan = plan_city(STYLES[style], options.city_size, stream(seed, Purpose.CITY, index))
    static, canvas, streets = rasterise(plan, stream(seed, Purpose.TEXTURE, index))
    shot = satellite_moment(plan, stream(seed, Purpose.SATELLITE, index))
    seen_from_above = with_cars(canvas, shot.cars)
    satellite = satellite_image(light_city(seen_from_above, shot.lighting()))
    cars = seen_from_above.material == Material.CAR
    epochs = []
    for epoch in range(GROUND_EPOCHS):
        moment = ground_moment(plan, shot, options.temporal_change, stream(seed, Purpose.EPOCH, index, epoch))
        ground = apply_season(with_cars(canvas, moment.cars), moment.season, moment.season_strength)
        epochs.append(light_city(ground, moment.lighting()))
        cars |= ground.material == Material.CAR
    cameras = (streets & (static.height == 0) & ~dilate(cars, CAR_CLEARANCE)
               & ~dilate(static.height > 0, OBSTACLE_CLEARANCE))
    return City(index, f"{style}-{index}", style, satellite, seen_from_above.material, epochs, cameras)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Cells within ``radius`` cells (in both directions) of a set cell; nothing wraps round the edges."""
    grown = mask.copy()
    for axis in (0, 1):
        source = grown.copy()
        for shift in range(1, radius + 1):
            lead = [slice(None)] * 2
            lag = [slice(None)] * 2
            lead[axis], lag[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(lag)] |= source[tuple(lead)]
            grown[tuple(lead)] |= source[tuple(lag)]
    return grown
