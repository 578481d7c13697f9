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
from .lighting import Lighting
from .materials import IS_VEGETATION
from .plan import Car, CityPlan, car_colour, moving_cars

SEASONS = ("spring", "summer", "autumn", "winter")
OVERCAST_SKY = (184.0, 188.0, 194.0)


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


def ground_moment(plan: CityPlan, satellite: Moment, change: float, rng: np.random.Generator) -> Moment:
    """A street-level capture day that differs from ``satellite`` by ``change``."""
    occupied = {car.spot for car in plan.parked}
    leave = change * 0.6
    # Empty slots fill at the rate that keeps the expected share of parked cars.
    share = min(plan.style.parked, 0.95)
    arrive = leave * share / (1 - share)
    parked = [car for car, u in zip(plan.parked, rng.random(len(plan.parked))) if u >= leave]
    empty = [spot for spot in plan.kerb_slots if spot not in occupied]
    parked += [Car(spot, car_colour(rng)) for spot, u in zip(empty, rng.random(len(empty))) if u < arrive]
    moving = moving_cars(plan, rng) if rng.random() < change else plan.moving
    season = SEASONS[int(rng.integers(len(SEASONS)))]
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
    green = np.flatnonzero(IS_VEGETATION[city.material])  # flat cell indices: 1-D takes and puts are faster
    turned = {}
    for layer in ("top", "side"):
        colours = getattr(city, layer).reshape(-1, 3).take(green, axis=0).astype(np.float32)
        target = _season_colour(colours, season)
        mixed = colours * np.float32(1 - strength) + target * np.float32(strength)
        turned[layer] = getattr(city, layer).copy()
        turned[layer].reshape(-1, 3)[green] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    return replace(city, **turned)


def _season_colour(rgb: np.ndarray, season: str) -> np.ndarray:
    """Full-strength seasonal recolouring of summer vegetation colours ``(N, 3)``."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    if season == "spring":
        return np.stack([r * 0.9 + 10, g * 1.15 + 12, b * 0.8], axis=1)
    if season == "autumn":
        return np.stack([g * 1.25 + 40, g * 0.85 + 10, b * 0.5], axis=1)
    grey = (r + g + b) / 3  # winter: bare, brownish grey
    return np.stack([grey * 0.9 + 40, grey * 0.85 + 34, grey * 0.8 + 30], axis=1)
