"""The city plan: streets, blocks and the objects on them, laid out in the street frame.

Buildings line the street frontage (placing them at random leaves a city far
too sparse); block interiors become yards, plazas, parks, ponds or parking
lots by the style's odds. Cars are kept apart from the static plan as kerb
slots and lanes, so the ground view's epochs can move them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .draws import Draws
from .frame import StreetFrame
from .materials import Material
from .styles import RGB, Palette, Style

CAR_COLOURS: tuple[RGB, ...] = ((236, 236, 232), (30, 30, 34), (168, 170, 174), (100, 104, 110), (164, 36, 36),
                                (40, 70, 140), (44, 84, 60), (220, 180, 40))
KERB_SLOT_SPACING = 6.5
PLAZA_TREE_SPACING = 9.0
PARKING_ROW_SPACING = 9.0
PARK_TREES_PER_1000M2 = 4.0


@dataclass(frozen=True)
class Street:
    """A straight line of constant ``u`` (``axis == "u"``) or constant ``v`` in the street frame."""

    axis: str
    position: float
    width: float
    sidewalk: float
    canal: bool = False


@dataclass(frozen=True)
class Area:
    """A ground patch (rectangle or inscribed ellipse) of one material."""

    u0: float
    u1: float
    v0: float
    v1: float
    material: Material
    colour: RGB
    ellipse: bool = False


@dataclass(frozen=True)
class Building:
    """A box with a flat roof, or a gable roof whose ridge runs along the longer side."""

    u0: float
    u1: float
    v0: float
    v1: float
    eave: float
    ridge: float
    roof: RGB
    facade: RGB
    window: RGB
    storey: float


@dataclass(frozen=True)
class Hedge:
    """A low box of clipped shrubs along a front garden."""

    u0: float
    u1: float
    v0: float
    v1: float
    height: float
    colour: RGB


@dataclass(frozen=True)
class Tree:
    """A canopy of radius ``radius`` between heights ``base`` and ``top`` (rays pass under it)."""

    u: float
    v: float
    radius: float
    top: float
    base: float
    colour: RGB


class CarSpot(NamedTuple):
    """Where a car can stand: its centre and whether its long side runs along ``u``.

    A named tuple: the rasteriser looks spots up by value hundreds of
    thousands of times per city, and a tuple hashes in C.
    """

    u: float
    v: float
    along_u: bool


@dataclass(frozen=True)
class Car:
    """A car of one paint standing at ``spot``."""

    spot: CarSpot
    colour: RGB


@dataclass(frozen=True)
class Lane:
    """A stretch of driving lane where moving cars appear: ``axis``/``position`` as a Street."""

    axis: str
    position: float
    start: float
    end: float


@dataclass
class CityPlan:
    """Everything a city is made of, before rasterisation."""

    frame: StreetFrame
    style: Style
    palette: Palette
    streets: list[Street]
    areas: list[Area] = field(default_factory=list)
    buildings: list[Building] = field(default_factory=list)
    hedges: list[Hedge] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    kerb_slots: list[CarSpot] = field(default_factory=list)
    lanes: list[Lane] = field(default_factory=list)
    parked: list[Car] = field(default_factory=list)
    moving: list[Car] = field(default_factory=list)

    @property
    def cars(self) -> list[Car]:
        """The cars at the time of the satellite shot."""
        return self.parked + self.moving


def jitter(colour: RGB, rng: Draws, amount: int) -> RGB:
    """A colour made up to ``amount`` levels brighter or darker, its hue nudged by a third of that."""
    level = rng.integers(-amount, amount + 1)
    hue = amount // 3
    hue_r, hue_g, hue_b = rng.integers(-hue, hue + 1), rng.integers(-hue, hue + 1), rng.integers(-hue, hue + 1)
    r, g, b = colour
    return (min(255, max(0, int(r) + level + hue_r)), min(255, max(0, int(g) + level + hue_g)),
            min(255, max(0, int(b) + level + hue_b)))


def plan_city(style: Style, size: int, generator: np.random.Generator) -> CityPlan:
    """Lay out a whole city of ``size`` x ``size`` metres in ``style``, drawing only from ``generator``."""
    rng = Draws(generator)
    frame = StreetFrame.random(rng, size, style.network, style.warp)
    base = style.palette
    palette = Palette(road=jitter(base.road, rng, 8), pavement=jitter(base.pavement, rng, 10),
                      grass=jitter(base.grass, rng, 10), gravel=jitter(base.gravel, rng, 10),
                      water=jitter(base.water, rng, 8), canopy=tuple(jitter(c, rng, 8) for c in base.canopy))
    reach = size * 0.75 + 2 * style.warp
    u_streets = _streets("u", style, rng, reach, canal=style.canal)
    v_streets = _streets("v", style, rng, reach, canal=False)
    plan = CityPlan(frame, style, palette, u_streets + v_streets)
    blocks = [(_edge(west, +1), _edge(east, -1), _edge(south, +1), _edge(north, -1))
              for west, east in zip(u_streets, u_streets[1:]) for south, north in zip(v_streets, v_streets[1:])]
    for block, window in zip(blocks, frame.windows(blocks)):
        if window is not None:
            _fill_block(plan, rng, *block)
    for street in plan.streets:
        crossing = v_streets if street.axis == "u" else u_streets
        if not street.canal:
            _street_trees(plan, rng, street, crossing, reach)
            _kerbs_and_lanes(plan, street, crossing, reach)
    taken = rng.random(len(plan.kerb_slots)) < style.parked
    plan.parked = [Car(spot, car_colour(rng)) for spot, used in zip(plan.kerb_slots, taken) if used]
    plan.moving = moving_cars(plan, rng)
    return plan


def _edge(street: Street, side: int) -> float:
    """Where the blocks beside a street begin: past half its width and its sidewalk, on ``side`` (+1 or -1)."""
    return street.position + side * (street.width / 2 + street.sidewalk)


def car_colour(rng: Draws) -> RGB:
    """A colour drawn from the common car paints."""
    return CAR_COLOURS[rng.integers(len(CAR_COLOURS))]


def moving_cars(plan: CityPlan, rng: Draws) -> list[Car]:
    """A fresh draw of the cars driving in the lanes."""
    cars = []
    for lane in plan.lanes:
        count = rng.poisson(plan.style.moving * (lane.end - lane.start) / 100)
        for along in rng.uniform(lane.start, lane.end, count):
            spot = (CarSpot(lane.position, float(along), False) if lane.axis == "u"
                    else CarSpot(float(along), lane.position, True))
            cars.append(Car(spot, car_colour(rng)))
    return cars


def _streets(axis: str, style: Style, rng: Draws, reach: float, canal: bool) -> list[Street]:
    """Parallel streets covering ``[-reach, reach]``, every ``arterial_every``-th one wider."""
    arterial_phase = rng.integers(style.arterial_every)
    streets: list[Street] = []
    position = -reach - uniform(rng, 0, style.block[1])
    index = 0
    while position < reach + style.block[1]:
        arterial = index % style.arterial_every == arterial_phase
        width = style.arterial_width if arterial else uniform(rng, *style.road_width)
        streets.append(Street(axis, position, width, style.sidewalk))
        block = uniform(rng, *style.block)
        next_width = style.arterial_width  # room for the widest street that may follow
        position += width / 2 + 2 * style.sidewalk + block + next_width / 2
        index += 1
    if canal:
        middle = min(range(len(streets)), key=lambda i: abs(streets[i].position))
        old = streets[middle]
        streets[middle] = Street(axis, old.position, max(old.width, 10.0), max(old.sidewalk, 3.0), canal=True)
    return streets


def _storeys(style: Style, rng: Draws) -> int:
    """A storey count, each extra storey ``storey_decay`` times as likely as the one below."""
    low, high = style.storeys
    return low + pick(tuple(style.storey_decay ** k for k in range(high - low + 1)), rng)


def uniform(rng: Draws, low: float, high: float) -> float:
    """One number drawn uniformly from ``[low, high)``: exactly ``rng.uniform(low, high)``'s draw.

    numpy computes it as ``low + (high - low) * rng.random()``; written out,
    it skips the argument checks that make each scalar call four times slower.
    """
    return low + (high - low) * rng.random()


def pick(weights: tuple[float, ...], rng: Draws) -> int:
    """An index drawn with probability proportional to ``weights``.

    The same draw as ``rng.choice(len(weights), p=odds)`` (one uniform
    number, looked up in the cumulative odds), without the checks that
    call makes on ``p`` each time: thousands of draws use the same few weights.
    """
    return int(_cumulative_odds(weights).searchsorted(rng.random(), side="right"))


@lru_cache(maxsize=64)
def _cumulative_odds(weights: tuple[float, ...]) -> np.ndarray:
    """The cumulative odds of ``weights``, made as ``Generator.choice`` makes them from ``p``."""
    weights = np.array(weights)
    cumulative = (weights / weights.sum()).cumsum()
    cumulative /= cumulative[-1]
    cumulative.flags.writeable = False  # shared by every caller
    return cumulative


def _building(style: Style, rng: Draws, u0: float, u1: float, v0: float, v1: float) -> Building:
    """A building of a type drawn by weight; its roof and facade palettes come together."""
    kind = style.building_types[pick(tuple(t.weight for t in style.building_types), rng)]
    eave = _storeys(style, rng) * kind.storey
    ridge = eave + 0.35 * min(u1 - u0, v1 - v0) if kind.gable else eave
    return Building(u0, u1, v0, v1, eave, ridge, jitter(kind.roof, rng, 6), jitter(kind.facade, rng, 6),
                    kind.window, kind.storey)


def _fill_block(plan: CityPlan, rng: Draws, u0: float, u1: float, v0: float, v1: float) -> None:
    """Give a block one use by the style's odds and lay it out; slivers become pavement."""
    style, palette = plan.style, plan.palette
    if u1 - u0 < 8 or v1 - v0 < 8:
        plan.areas.append(Area(u0, u1, v0, v1, Material.PAVEMENT, palette.pavement))
        return
    uses = [name for name, _ in style.block_use]
    use = uses[pick(tuple(weight for _, weight in style.block_use), rng)]
    if use == "plaza":
        plan.areas.append(Area(u0, u1, v0, v1, Material.PAVEMENT, jitter(palette.pavement, rng, 12)))
        _rim_trees(plan, rng, u0, u1, v0, v1)
        if rng.random() < 0.5:
            cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
            plan.areas.append(Area(cu - 3, cu + 3, cv - 3, cv + 3, Material.WATER, palette.water, ellipse=True))
    elif use == "park":
        plan.areas.append(Area(u0, u1, v0, v1, Material.GRASS, palette.grass))
        if rng.random() < 0.3:
            du, dv = (u1 - u0) * 0.3, (v1 - v0) * 0.3
            cu, cv = uniform(rng, u0 + du, u1 - du), uniform(rng, v0 + dv, v1 - dv)
            plan.areas.append(Area(cu - du, cu + du, cv - dv, cv + dv, Material.WATER, palette.water, ellipse=True))
        _scatter_trees(plan, rng, u0, u1, v0, v1, PARK_TREES_PER_1000M2, [])
    elif use == "water" and style.yard == "grass":
        plan.areas.append(Area(u0, u1, v0, v1, Material.GRASS, palette.grass))
        plan.areas.append(Area(u0 + 3, u1 - 3, v0 + 3, v1 - 3, Material.WATER, palette.water, ellipse=True))
        _rim_trees(plan, rng, u0, u1, v0, v1)
    elif use == "water":
        plan.areas.append(Area(u0, u1, v0, v1, Material.PAVEMENT, palette.pavement))
        plan.areas.append(Area(u0 + 2, u1 - 2, v0 + 2, v1 - 2, Material.WATER, palette.water))
    elif use == "parking":
        plan.areas.append(Area(u0, u1, v0, v1, Material.ROAD, jitter(palette.road, rng, 10)))
        for row in np.arange(v0 + 3, v1 - 3, PARKING_ROW_SPACING):
            for col in np.arange(u0 + 2, u1 - 2, 2.6):
                plan.kerb_slots.append(CarSpot(float(col), float(row), False))
    else:
        _fill_with_buildings(plan, rng, u0, u1, v0, v1)


def _fill_with_buildings(plan: CityPlan, rng: Draws, u0: float, u1: float, v0: float, v1: float) -> None:
    """Buildings lot by lot along each side of a block, with front hedges, and trees in the yard behind."""
    style, palette = plan.style, plan.palette
    yard = {"grass": (Material.GRASS, palette.grass), "pavement": (Material.PAVEMENT, palette.pavement),
            "gravel": (Material.GRAVEL, palette.gravel)}[style.yard]
    plan.areas.append(Area(u0, u1, v0, v1, *yard))
    placed: list[Building] = []
    band = style.lot_depth[1] + style.setback[1] + style.side_gap
    # Sides as (along-axis, from, to, frontage line, inward direction).
    sides = [("u", u0, u1, v0, +1), ("u", u0, u1, v1, -1)]
    if v1 - v0 - 2 * band >= style.lot_width[0]:
        sides += [("v", v0 + band, v1 - band, u0, +1), ("v", v0 + band, v1 - band, u1, -1)]
    for along, start, stop, front, inward in sides:
        across = (v1 - v0) if along == "u" else (u1 - u0)
        cursor = start
        while stop - cursor >= style.lot_width[0]:
            width = min(uniform(rng, *style.lot_width), stop - cursor)
            setback = uniform(rng, *style.setback)
            depth = min(uniform(rng, *style.lot_depth), across / 2 - setback - 0.5)
            lot = (cursor + style.side_gap / 2, cursor + width - style.side_gap / 2)
            if rng.random() >= style.empty_lot and depth >= 4 and lot[1] - lot[0] >= 4:
                near, far = sorted((front + inward * setback, front + inward * (setback + depth)))
                box = (*lot, near, far) if along == "u" else (near, far, *lot)
                placed.append(_building(style, rng, *box))
                if setback >= 3 and rng.random() < style.hedge_chance:
                    line = sorted((front + inward * 0.4, front + inward * 1.4))
                    hedge_span = (cursor + 0.5, cursor + width - 3.5)
                    box = (*hedge_span, *line) if along == "u" else (*line, *hedge_span)
                    plan.hedges.append(Hedge(*box, uniform(rng, 1.0, 1.8), jitter(palette.canopy[0], rng, 10)))
            cursor += width
    plan.buildings += placed
    _scatter_trees(plan, rng, u0, u1, v0, v1, style.yard_trees, placed)


def _tree(plan: CityPlan, rng: Draws, u: float, v: float) -> Tree:
    """A tree of the style's size, its canopy starting at about a third of its height."""
    style = plan.style
    top = uniform(rng, *style.tree_height)
    colour = jitter(plan.palette.canopy[rng.integers(len(plan.palette.canopy))], rng, 8)
    return Tree(u, v, uniform(rng, *style.canopy_radius), top, max(2.6, top * 0.35), colour)


def _scatter_trees(plan: CityPlan, rng: Draws, u0: float, u1: float, v0: float, v1: float,
                   per_1000m2: float, buildings: list[Building]) -> None:
    """Trees at random in a block, skipping spots whose canopy would touch a building."""
    for _ in range(rng.poisson(per_1000m2 * (u1 - u0) * (v1 - v0) / 1000)):
        tree = _tree(plan, rng, uniform(rng, u0 + 2, u1 - 2), uniform(rng, v0 + 2, v1 - 2))
        r = tree.radius
        if not any(b.u0 - r < tree.u < b.u1 + r and b.v0 - r < tree.v < b.v1 + r for b in buildings):
            plan.trees.append(tree)


def _rim_trees(plan: CityPlan, rng: Draws, u0: float, u1: float, v0: float, v1: float) -> None:
    """A ring of trees just inside a plaza's edge."""
    for u in np.arange(u0 + 3, u1 - 2, PLAZA_TREE_SPACING):
        for v in (v0 + 3, v1 - 3):
            if rng.random() < 0.7:
                plan.trees.append(_tree(plan, rng, float(u), v))


def _near_crossing(coordinates: np.ndarray, crossing: list[Street], clearance: float) -> np.ndarray:
    """Which points along a street lie within ``clearance`` of a crossing street's sidewalk."""
    position = np.array([c.position for c in crossing])
    reach = np.array([c.width / 2 + c.sidewalk + clearance for c in crossing])
    return (np.abs(np.asarray(coordinates, np.float64)[:, None] - position) < reach).any(axis=1)


def _on_map(plan: CityPlan, street: Street, along: np.ndarray, offset: float) -> np.ndarray:
    """Which points ``along`` the street (at ``offset`` across it) lie on or just beside the map."""
    across = np.full_like(along, street.position + offset)
    x, y = plan.frame.xy(across, along) if street.axis == "u" else plan.frame.xy(along, across)
    margin, size = 8.0, plan.frame.size
    return (x > -margin) & (x < size + margin) & (y > -margin) & (y < size + margin)


def _point(street: Street, along: float, offset: float) -> tuple[float, float]:
    """Street-frame ``(u, v)`` of a point ``along`` the street, ``offset`` across it."""
    if street.axis == "u":
        return street.position + offset, along
    return along, street.position + offset


def _street_trees(plan: CityPlan, rng: Draws, street: Street, crossing: list[Street],
                  reach: float) -> None:
    """Trees on both sidewalks at the style's spacing, some left out, none in a crossing."""
    style = plan.style
    if style.street_tree_spacing <= 0:
        return
    offset = street.width / 2 + street.sidewalk / 2
    along = np.arange(-reach + uniform(rng, 0, style.street_tree_spacing), reach, style.street_tree_spacing)
    keep = rng.random((len(along), 2)) < style.street_tree_chance
    for column, side in enumerate((-1, 1)):
        chosen = along[keep[:, column] & _on_map(plan, street, along, side * offset)]
        for a in chosen[~_near_crossing(chosen, crossing, 2.0)]:
            plan.trees.append(_tree(plan, rng, *_point(street, float(a), side * offset)))


def _kerbs_and_lanes(plan: CityPlan, street: Street, crossing: list[Street], reach: float) -> None:
    """Kerbside parking slots and two driving lanes, clipped to the part of the street on the map.

    Streets of 9 m and more have parking on both sides, of 6 m on one side,
    narrower lanes none (parked cars would block them).
    """
    along_u = street.axis == "v"
    kerb = street.width / 2 - 1.3
    sides = (-1, 1) if street.width >= 9 else (1,) if street.width >= 6 else ()
    candidates = np.arange(-reach, reach, KERB_SLOT_SPACING)
    on_map = candidates[_on_map(plan, street, candidates, 0.0)]
    if not len(on_map):
        return
    for along in on_map[~_near_crossing(on_map, crossing, 3.0)]:
        for side in sides:
            plan.kerb_slots.append(CarSpot(*_point(street, float(along), side * kerb), along_u))
    if street.width >= 6:
        for side in (-1, 1):
            plan.lanes.append(Lane(street.axis, street.position + side * street.width / 4,
                                   float(on_map[0]), float(on_map[-1])))
