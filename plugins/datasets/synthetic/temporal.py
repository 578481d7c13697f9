"""Temporal change between the satellite shot and the street-level captures (thesis section 2.1.4).

The satellite image of a city is one moment: summer, a high sun, the cars
of that day. The ground panoramas are taken on a few other days (epochs):
parked cars have left or arrived, traffic is elsewhere, vegetation has
turned with the season and the sun stands elsewhere, sometimes behind
clouds. ``change`` in [0, 1] scales all of it; at 0 every epoch equals the
satellite moment.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .citymap import CityMap
from .draws import Draws
from .jit import kernel
from .lighting import Lighting
from .materials import IS_VEGETATION
from .plan import Car, CityPlan, car_colour, moving_cars

SEASONS = ("spring", "summer", "autumn", "winter")
OVERCAST_SKY = (184.0, 188.0, 194.0)
# Full-strength seasonal colour of summer vegetation, per channel (red, green, blue):
# (source channel: 0 red, 1 green, 2 blue, 3 grey = their mean; scale; offset).
SEASON_COLOURS = {
    "spring": ((0, 0.9, 10.0), (1, 1.15, 12.0), (2, 0.8, 0.0)),
    "autumn": ((1, 1.25, 40.0), (1, 0.85, 10.0), (2, 0.5, 0.0)),
    "winter": ((3, 0.9, 40.0), (3, 0.85, 34.0), (3, 0.8, 30.0)),  # bare, brownish grey
}


@dataclass(frozen=True)
class Moment:
    """What the world looks like at one time: cars, season and light."""

    cars: list[Car]
    season: str
    season_strength: float
    sun_azimuth: float
    sun_elevation: float
    overcast: float

    def lighting(self) -> Lighting:
        """Sunlight weakened and the sky greyed in proportion to ``overcast``."""
        clear = Lighting.from_angles(self.sun_azimuth, self.sun_elevation)
        grey = np.array(OVERCAST_SKY)
        horizon = tuple(float(c) for c in np.array(clear.sky_horizon) * (1 - self.overcast) + grey * self.overcast)
        zenith = tuple(float(c) for c in np.array(clear.sky_zenith) * (1 - self.overcast) + grey * self.overcast)
        return Lighting(clear.sun, ambient=clear.ambient + 0.2 * self.overcast,
                        direct=clear.direct * (1 - 0.7 * self.overcast),
                        sky_horizon=horizon, sky_zenith=zenith)  # type: ignore[arg-type]


def satellite_moment(plan: CityPlan, rng: np.random.Generator) -> Moment:
    """Summer, clear sky, the sun high in the south: typical of satellite imagery."""
    return Moment(plan.cars, "summer", 0.0, rng.uniform(120, 240), rng.uniform(40, 65), 0.0)


def ground_moment(plan: CityPlan, satellite: Moment, change: float, generator: np.random.Generator) -> Moment:
    """A street-level capture day that differs from ``satellite`` by ``change``, drawing only from ``generator``."""
    rng = Draws(generator)
    occupied = {car.spot for car in plan.parked}
    leave = change * 0.6
    # Empty slots fill at the rate that keeps the expected share of parked cars.
    share = min(plan.style.parked, 0.95)
    arrive = leave * share / (1 - share)
    parked = [car for car, u in zip(plan.parked, rng.random(len(plan.parked))) if u >= leave]
    empty = [spot for spot in plan.kerb_slots if spot not in occupied]
    parked += [Car(spot, car_colour(rng)) for spot, u in zip(empty, rng.random(len(empty))) if u < arrive]
    moving = moving_cars(plan, rng) if rng.random() < change else plan.moving
    season = SEASONS[rng.integers(len(SEASONS))]
    azimuth = satellite.sun_azimuth + change * rng.uniform(-120, 120)
    elevation = float(np.clip(satellite.sun_elevation + change * rng.uniform(-25, 10), 15, 75))
    overcast = change * rng.uniform(0, 1) if rng.random() < 0.3 else 0.0
    return Moment(parked + moving, season, change, azimuth, elevation, overcast)


def apply_season(city: CityMap, season: str, strength: float) -> CityMap:
    """``city`` with its vegetation turned towards ``season`` by ``strength``.

    The colour layers are new arrays; the others are shared with ``city``.
    """
    if season == "summer" or strength == 0:
        return city
    recipe = SEASON_COLOURS[season]
    source = np.array([channel for channel, _, _ in recipe], np.int64)
    scale = np.array([factor for _, factor, _ in recipe], np.float32)
    offset = np.array([shift for _, _, shift in recipe], np.float32)
    material = np.ascontiguousarray(city.material)
    turned = {}
    for layer in ("top", "side"):
        turned[layer] = np.empty(getattr(city, layer).shape, np.uint8)
        turn_vegetation(material, IS_VEGETATION, np.ascontiguousarray(getattr(city, layer)), source, scale, offset,
                        np.float32(1 - strength), np.float32(strength), turned[layer])
    return replace(city, **turned)


@kernel("void(uint8[:, ::1], boolean[::1], uint8[:, :, ::1], int64[::1], float32[::1], float32[::1], float32, float32, "
        "uint8[:, :, ::1])")
def turn_vegetation(material, is_vegetation, colours, source, scale, offset, keep, turn, turned):
    """``turned``: the RGB ``colours``, but on vegetation ``colours * keep + season * turn`` rounded half to even.

    The seasonal colour of channel ``k`` is ``c[source[k]] * scale[k] +
    offset[k]`` where ``c`` is (red, green, blue, grey) in float32 and grey
    ``(red + green + blue) / 3``; an offset of 0 changes nothing, as a scaled
    level is never -0. Each row is first spread into per-channel arrays so
    that the arithmetic runs as one loop without branches (vector instructions).
    """
    size_r, size_c = material.shape
    width = 3 * size_c
    factor, shift, pick = np.empty(width, np.float32), np.empty(width, np.float32), np.empty(width, np.int64)
    for i in range(width):
        factor[i], shift[i] = scale[i % 3], offset[i % 3]
        pick[i] = (i // 3) * 4 + source[i % 3]  # where the source level of element i lies in ``levels``
    levels = np.empty(4 * size_c, np.float32)  # red, green, blue, grey of each cell of the row
    base = np.empty(width, np.float32)
    vegetation = np.empty(width, np.bool_)
    for r in range(size_r):
        row, out, kinds = colours[r].reshape(width), turned[r].reshape(width), material[r]
        for c in range(size_c):
            red, green, blue = np.float32(row[3 * c]), np.float32(row[3 * c + 1]), np.float32(row[3 * c + 2])
            levels[4 * c], levels[4 * c + 1], levels[4 * c + 2] = red, green, blue
            levels[4 * c + 3] = (red + green + blue) / np.float32(3)
            here = is_vegetation[kinds[c]]
            vegetation[3 * c], vegetation[3 * c + 1], vegetation[3 * c + 2] = here, here, here
        for i in range(width):
            base[i] = levels[pick[i]]
        for i in range(width):
            mixed = np.float32(row[i]) * keep + (base[i] * factor[i] + shift[i]) * turn
            rounded = np.uint8(min(max(np.rint(mixed), np.float32(0)), np.float32(255)))
            out[i] = rounded if vegetation[i] else row[i]
