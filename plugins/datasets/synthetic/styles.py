"""City styles: the knobs that make a downtown look unlike a suburb.

A style fixes the street network (straight grid, rotated grid or warped
irregular streets), block and road sizes, how buildings fill the street
frontage, their height distribution and palettes, and how much greenery,
water and traffic a city has. Each building type ties a roof colour to a
facade colour, so a roof seen from above predicts the facade seen from the
street: a real cross-view cue. Every style has several types, so colour alone
cannot locate a query within a city.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]
Range = tuple[float, float]


@dataclass(frozen=True)
class BuildingType:
    """Roof and facade palettes that always come together, with window look and storey height."""

    name: str
    roof: RGB
    facade: RGB
    window: RGB
    storey: float
    gable: bool
    weight: float = 1.0


@dataclass(frozen=True)
class Palette:
    """Base colours of a style's ground materials and trees (each city jitters them)."""

    road: RGB
    pavement: RGB
    grass: RGB
    gravel: RGB
    water: RGB
    canopy: tuple[RGB, ...]


@dataclass(frozen=True)
class Style:
    """Everything that differs between kinds of city; lengths in metres."""

    name: str
    network: str                      # "grid", "rotated" or "irregular"
    warp: float                       # amplitude of the street warp (irregular networks)
    block: Range                      # block length between sidewalks
    road_width: Range
    arterial_every: int               # every n-th street is an arterial
    arterial_width: float
    sidewalk: float
    lot_width: Range                  # building width along the street
    lot_depth: Range
    setback: Range                    # front yard depth
    side_gap: float                   # gap between neighbouring buildings (0: terraced rows)
    empty_lot: float                  # probability a lot stays unbuilt
    storeys: tuple[int, int]
    storey_decay: float               # weight ratio of n+1 storeys to n storeys
    building_types: tuple[BuildingType, ...]
    palette: Palette
    yard: str                         # material of block interiors: "grass", "pavement" or "gravel"
    street_tree_spacing: float        # 0: no street trees
    street_tree_chance: float
    canopy_radius: Range
    tree_height: Range
    yard_trees: float                 # trees per 1000 m2 of yard
    hedge_chance: float               # probability a lot with a front yard has a hedge
    block_use: tuple[tuple[str, float], ...]  # "buildings", "plaza", "park", "water", "parking"
    canal: bool                       # one street becomes a canal
    parked: float                     # share of kerbside slots with a parked car
    moving: float                     # moving cars per 100 m of lane


DOWNTOWN = Style(
    name="downtown", network="grid", warp=0.0, block=(70, 110), road_width=(12, 16),
    arterial_every=3, arterial_width=22, sidewalk=4, lot_width=(18, 34), lot_depth=(18, 32),
    setback=(0, 1), side_gap=0, empty_lot=0.04, storeys=(4, 36), storey_decay=0.9,
    building_types=(
        BuildingType("glass tower", (92, 102, 114), (72, 112, 146), (28, 48, 70), 3.8, False, 1.2),
        BuildingType("concrete office", (172, 170, 164), (188, 182, 170), (52, 60, 70), 3.5, False),
        BuildingType("brick block", (124, 82, 70), (152, 82, 62), (40, 40, 46), 3.3, False),
        BuildingType("steel tower", (58, 60, 66), (84, 88, 94), (150, 170, 192), 3.9, False, 0.8),
    ),
    palette=Palette(road=(68, 68, 74), pavement=(168, 164, 158), grass=(92, 138, 70), gravel=(140, 134, 124),
                    water=(52, 86, 112), canopy=((58, 100, 52), (70, 112, 60))),
    yard="pavement", street_tree_spacing=12, street_tree_chance=0.4, canopy_radius=(2.5, 4),
    tree_height=(7, 11), yard_trees=0.4, hedge_chance=0.0,
    block_use=(("buildings", 0.82), ("plaza", 0.13), ("park", 0.05)), canal=False, parked=0.6, moving=2.0,
)

SUBURB = Style(
    name="suburb", network="irregular", warp=30.0, block=(46, 70), road_width=(7, 9),
    arterial_every=5, arterial_width=12, sidewalk=2, lot_width=(12, 18), lot_depth=(9, 13),
    setback=(5, 8), side_gap=3, empty_lot=0.1, storeys=(1, 2), storey_decay=0.6,
    building_types=(
        BuildingType("red-tile house", (172, 72, 52), (226, 214, 188), (60, 70, 84), 2.8, True),
        BuildingType("slate house", (86, 90, 96), (206, 206, 210), (58, 66, 80), 2.8, True),
        BuildingType("shingle house", (112, 82, 62), (176, 144, 104), (50, 56, 64), 2.8, True),
        BuildingType("green-roof bungalow", (70, 110, 70), (186, 192, 170), (56, 64, 70), 3.0, False, 0.5),
    ),
    palette=Palette(road=(94, 94, 96), pavement=(186, 182, 172), grass=(98, 148, 74), gravel=(150, 140, 120),
                    water=(60, 96, 120), canopy=((52, 108, 48), (74, 120, 56), (96, 118, 50))),
    yard="grass", street_tree_spacing=15, street_tree_chance=0.5, canopy_radius=(2.5, 4.5),
    tree_height=(6, 12), yard_trees=1.2, hedge_chance=0.5,
    block_use=(("buildings", 0.9), ("park", 0.1)), canal=False, parked=0.25, moving=0.5,
)

OLD_TOWN = Style(
    name="old_town", network="irregular", warp=16.0, block=(30, 55), road_width=(4, 7),
    arterial_every=6, arterial_width=10, sidewalk=1, lot_width=(6, 12), lot_depth=(10, 16),
    setback=(0, 0), side_gap=0, empty_lot=0.02, storeys=(2, 5), storey_decay=0.8,
    building_types=(
        BuildingType("ochre house", (190, 100, 50), (216, 172, 112), (54, 44, 40), 3.2, True),
        BuildingType("pink house", (150, 72, 64), (212, 152, 142), (58, 46, 44), 3.2, True),
        BuildingType("white house", (96, 96, 102), (232, 226, 214), (48, 56, 66), 3.1, True),
        BuildingType("yellow house", (128, 100, 80), (226, 202, 122), (60, 52, 44), 3.2, True),
    ),
    palette=Palette(road=(124, 112, 100), pavement=(176, 162, 140), grass=(104, 140, 76), gravel=(160, 146, 122),
                    water=(58, 94, 96), canopy=((64, 104, 54), (80, 110, 58))),
    yard="pavement", street_tree_spacing=20, street_tree_chance=0.1, canopy_radius=(2, 3.5),
    tree_height=(6, 9), yard_trees=0.8, hedge_chance=0.0,
    block_use=(("buildings", 0.8), ("plaza", 0.17), ("water", 0.03)), canal=True, parked=0.3, moving=0.3,
)

INDUSTRIAL = Style(
    name="industrial", network="rotated", warp=0.0, block=(110, 170), road_width=(12, 16),
    arterial_every=3, arterial_width=20, sidewalk=1.5, lot_width=(35, 80), lot_depth=(30, 60),
    setback=(4, 10), side_gap=6, empty_lot=0.15, storeys=(1, 3), storey_decay=0.6,
    building_types=(
        BuildingType("metal shed", (152, 156, 160), (120, 126, 132), (70, 76, 82), 5.0, False),
        BuildingType("blue hall", (204, 206, 210), (62, 92, 142), (40, 50, 70), 5.0, False),
        BuildingType("rusty warehouse", (142, 92, 62), (160, 150, 140), (60, 56, 52), 5.5, False),
        BuildingType("dark factory", (72, 72, 76), (112, 102, 92), (140, 130, 100), 6.0, False, 0.6),
    ),
    palette=Palette(road=(84, 84, 86), pavement=(150, 150, 146), grass=(112, 136, 80), gravel=(132, 124, 112),
                    water=(56, 80, 92), canopy=((70, 104, 58), (88, 112, 62))),
    yard="gravel", street_tree_spacing=25, street_tree_chance=0.2, canopy_radius=(2, 3.5),
    tree_height=(6, 10), yard_trees=0.1, hedge_chance=0.0,
    block_use=(("buildings", 0.7), ("parking", 0.25), ("water", 0.05)), canal=False, parked=0.5, moving=1.0,
)

GARDEN_CITY = Style(
    name="garden_city", network="rotated", warp=8.0, block=(60, 90), road_width=(8, 11),
    arterial_every=4, arterial_width=14, sidewalk=3, lot_width=(15, 30), lot_depth=(12, 18),
    setback=(4, 8), side_gap=4, empty_lot=0.1, storeys=(3, 6), storey_decay=0.8,
    building_types=(
        BuildingType("green-roof flats", (96, 130, 90), (236, 234, 224), (58, 70, 84), 3.0, False),
        BuildingType("brick terrace", (162, 72, 56), (172, 96, 76), (46, 48, 56), 3.0, True),
        BuildingType("yellow flats", (112, 112, 118), (232, 210, 150), (56, 62, 74), 3.0, False),
    ),
    palette=Palette(road=(90, 90, 94), pavement=(190, 186, 176), grass=(90, 150, 72), gravel=(150, 142, 126),
                    water=(54, 98, 124), canopy=((46, 104, 46), (62, 118, 52), (84, 126, 60))),
    yard="grass", street_tree_spacing=10, street_tree_chance=0.9, canopy_radius=(3, 6),
    tree_height=(8, 16), yard_trees=2.0, hedge_chance=0.6,
    block_use=(("buildings", 0.65), ("park", 0.25), ("water", 0.1)), canal=False, parked=0.3, moving=0.5,
)

STYLES: dict[str, Style] = {style.name: style for style in (DOWNTOWN, SUBURB, OLD_TOWN, INDUSTRIAL, GARDEN_CITY)}
STYLE_NAMES: tuple[str, ...] = tuple(STYLES)
