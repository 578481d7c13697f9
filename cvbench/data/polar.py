"""SAFA's polar transform of aerial tiles (thesis section 2.1.1; Shi et al. 2019).

The tile is unwrapped around its centre so each column looks along one
azimuth, like a panorama column: column ``j`` faces ``360 * j / W`` degrees
clockwise from north (the panorama convention of ``cvbench/data/augment.py``),
row 0 samples the tile's rim (far away) and the last row its centre (under the
camera). It assumes the query stands at the tile centre, so it is valid only
for centre-aligned datasets (CVUSA, CVACT), not VIGOR-style offset layouts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def polar_grid(out_size: tuple[int, int]) -> torch.Tensor:
    """The ``grid_sample`` grid ``(1, H, W, 2)`` in normalised tile coordinates [-1, 1]."""
    height, width = out_size
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    radius = (height - rows - 0.5) / height  # 1 at the rim (row 0), ~0 at the centre
    azimuth = 2 * math.pi * cols / width
    x = radius[:, None] * torch.sin(azimuth)[None, :]  # east is +x
    y = -radius[:, None] * torch.cos(azimuth)[None, :]  # north is up: -y in image rows
    return torch.stack([x, y], dim=-1).unsqueeze(0).float()


def polar_transform(tile: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """Unwrap a tile ``(3, S, S)`` (uint8 or float) into a ``(3, H, W)`` polar image of the same dtype."""
    dtype = tile.dtype
    grid = polar_grid(out_size).to(tile.device)
    sampled = F.grid_sample(tile.unsqueeze(0).float(), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)[0]
    if dtype == torch.uint8:
        return sampled.round().clamp(0, 255).to(torch.uint8)
    return sampled.to(dtype)
