"""Pair augmentations keep a panorama and its tile geometrically consistent."""

from __future__ import annotations

import torch

import cvbench
from cvbench.data.augment import mirror_panorama, rotate_pair


def marked_pair(width: int = 16, tile: int = 8):
    """A panorama with one bright column facing east and a tile with one bright pixel east of centre."""
    pano = torch.zeros(3, 4, width, dtype=torch.uint8)
    pano[:, :, width // 4] = 255  # azimuth 90 degrees: east
    aerial = torch.zeros(3, tile, tile, dtype=torch.uint8)
    aerial[:, tile // 2, tile - 1] = 255  # east edge, middle row
    return pano, aerial


def bright_column(pano):
    return int(pano[0, 0].float().argmax())


def test_mirror_maps_azimuth_a_to_minus_a():
    pano, _ = marked_pair()
    assert bright_column(mirror_panorama(pano)) == 12  # east (column 4) becomes west (column 12)
    north = torch.zeros(3, 1, 16)
    north[:, :, 0] = 1
    assert torch.equal(mirror_panorama(north), north)  # north stays north


def test_quarter_turn_moves_east_to_north():
    pano, tile = marked_pair()
    new_pano, new_tile = rotate_pair(pano, tile, 1)
    assert bright_column(new_pano) == 0  # the east column now faces north
    ys, xs = torch.nonzero(new_tile[0], as_tuple=True)
    assert (int(ys[0]), int(xs[0])) == (0, 4)  # the east pixel is now on the north edge
    back_pano, back_tile = rotate_pair(new_pano, new_tile, 3)
    assert torch.equal(back_pano, pano) and torch.equal(back_tile, tile)


def test_geo_sync_keeps_the_pair_consistent(registry):
    augment = cvbench.create("augmentation", "geo-sync", (4, 16), (8, 8))
    torch.manual_seed(0)
    for _ in range(20):
        pano, tile = augment(*marked_pair())
        assert pano.dtype == torch.float32 and float(pano.max()) == 1.0
        column = bright_column(pano)
        ys, xs = torch.nonzero(tile[0] > 0.5, as_tuple=True)
        dy, dx = float(ys[0]) - 3.5, float(xs[0]) - 3.5  # pixel offset from the tile centre
        azimuth = torch.rad2deg(torch.atan2(torch.tensor(dx), torch.tensor(-dy))) % 360
        gap = abs(column - float(azimuth) / 360 * 16)
        assert min(gap, 16 - gap) <= 1.5  # circular: column 0 and column 15.6 are neighbours


def test_mocov2_pair_augmentation_keeps_sizes(registry):
    augment = cvbench.create("augmentation", "mocov2-nocrop", (16, 64), (32, 32))
    pano, tile = augment(torch.randint(0, 255, (3, 16, 64), dtype=torch.uint8),
                         torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8))
    assert pano.shape == (3, 16, 64) and tile.shape == (3, 32, 32)
    assert pano.dtype == torch.float32 and 0 <= float(pano.min()) and float(pano.max()) <= 1


def east_marked_pair(pano_size=(16, 64), tile_size=32):
    """A panorama with a bright band centred on azimuth 90 degrees and a tile with a bright block in its east half."""
    height, width = pano_size
    pano = torch.full((3, height, width), 40, dtype=torch.uint8)
    pano[:, :, width // 4 - 2:width // 4 + 3] = 255  # columns 14..18 of 64: azimuth 79-101 degrees
    tile = torch.full((3, tile_size, tile_size), 40, dtype=torch.uint8)
    tile[:, 10:22, 22:29] = 255  # east of the centre column
    return pano, tile


def marker_azimuth(pano):
    """Azimuth in degrees of the panorama's brightest column (mean over channels and rows)."""
    return 360 * int(pano.float().mean(dim=(0, 1)).argmax()) / pano.shape[-1]


def marker_is_east(tile):
    columns = tile.float().mean(dim=(0, 1))
    half = tile.shape[-1] // 2
    return bool(columns[half:].sum() > columns[:half].sum())


def test_mocov2_pair_augmentation_flips_both_views_together(registry):
    augment = cvbench.create("augmentation", "mocov2-nocrop", (16, 64), (32, 32))
    outcomes = set()
    for seed in range(40):
        torch.manual_seed(seed)
        pano, tile = augment(*east_marked_pair())
        azimuth, east = marker_azimuth(pano), marker_is_east(tile)
        assert abs(azimuth - (90 if east else 270)) <= 12, (seed, azimuth, east)
        outcomes.add(east)
    assert outcomes == {True, False}  # both the plain and the mirrored pair occur


def test_only_the_pair_shares_a_flip_pre_training_views_keep_their_own():
    from cvbench_plugins.augmentations.mocov2 import MoCoV2PairAugmentation, mocov2_augmentation
    from torchvision.transforms import v2

    def flips(transform):
        return sum(isinstance(step, v2.RandomHorizontalFlip) for step in transform.transforms)

    for crop in (True, False):
        pair = MoCoV2PairAugmentation((16, 64), (32, 32), crop=crop)
        assert flips(pair.ground) == flips(pair.aerial) == 0
    assert flips(mocov2_augmentation((32, 32))) == 1 and flips(mocov2_augmentation((32, 32), crop=False)) == 1


def test_polar_transform_unwraps_around_the_centre():
    from cvbench.data.polar import polar_transform

    tile = torch.zeros(3, 33, 33, dtype=torch.uint8)
    tile[:, 0:4, 15:18] = 255  # a mark at the north rim
    tile[:, 15:18, 29:33] = 128  # a dimmer mark at the east rim
    polar = polar_transform(tile, (8, 32))
    assert polar.shape == (3, 8, 32) and polar.dtype == torch.uint8
    top = polar[0, 0].float()
    assert int(top.argmax()) in (0, 31)  # north rim -> column 0, top row (far away)
    assert abs(int(torch.argmin((top - 128).abs())) - 8) <= 1  # east rim -> column W/4
    assert float(polar[0, -1].float().mean()) == 0  # the centre row sees neither mark
