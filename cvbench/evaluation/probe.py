"""Label-free evidence that a pre-training stage learned: instance retrieval among augmented views.

A pretrainer whose loss falls may still have learned nothing useful (a
collapsed encoder minimises some losses too), so every pre-training stage is
also probed before and after it ran, with a test that needs no labels from
the evaluation: a fixed sample of images is augmented twice with a fixed,
moderate recipe (crop, colour jitter, greyscale); each first view is matched
by cosine similarity of the backbone's pooled features against every second
view, and the probe's score is the share (percent) of first views whose
nearest second view comes from the same image. Chance is ``100 / images``.
The views are drawn once, so "before" and "after" see the very same pixels.

The recipe is deliberately not any pretrainer's own: a probe made of a
method's augmentation would favour that method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ..data import ImageList
from ..data.augment import resized_crop
from ..data.loaders import Reader, normalize
from ..nn.device import autocast

PROBE_IMAGES = 256
PROBE_STREAM = 5_119  # the probe's own random stream: drawing its views changes no training draw


def probe_recipe(image_size: tuple[int, int]) -> v2.Compose:
    """The probe's augmentation: crop (area 0.3-1), colour jitter (0.4, 0.4, 0.4, 0.1) p 0.8, greyscale p 0.2."""
    return v2.Compose([
        resized_crop(image_size, (0.3, 1.0)),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.ToDtype(torch.float32, scale=True),
    ])


@dataclass
class ProbeViews:
    """Two augmented views of each probe image, float ``(N, 3, H, W)`` in [0, 1]."""

    first: torch.Tensor
    second: torch.Tensor

    @classmethod
    def draw(cls, images: ImageList, reader: Reader, seed: int, count: int = PROBE_IMAGES,
             indices: Sequence[int] | None = None) -> "ProbeViews":
        """Views of ``count`` images (a seeded sample of ``indices``, default all), drawn without touching the
        global random state the training uses."""
        pool = np.arange(len(images)) if indices is None else np.asarray(indices)
        chosen = np.sort(np.random.default_rng([seed, PROBE_STREAM]).choice(pool, min(count, len(pool)),
                                                                            replace=False))
        recipe = probe_recipe(reader.output_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + PROBE_STREAM)
            first = [recipe(reader.evaluation_view(reader(images, int(i)), int(i))) for i in chosen]
            second = [recipe(reader.evaluation_view(reader(images, int(i)), int(i))) for i in chosen]
        return cls(torch.stack(first), torch.stack(second))


@torch.no_grad()
def instance_retrieval(backbone: nn.Module, views: ProbeViews, device: torch.device, batch_size: int = 128) -> float:
    """Top-1 instance retrieval (percent) of ``views.first`` among ``views.second`` with pooled backbone features.

    The backbone runs in eval mode (its BatchNorm running statistics) and is
    left in the mode it was found in.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        first, second = (_features(backbone, views_, device, batch_size) for views_ in (views.first, views.second))
    finally:
        backbone.train(was_training)
    nearest = (first @ second.T).argmax(dim=1)
    return float((nearest == torch.arange(len(first), device=nearest.device)).float().mean() * 100)


def _features(backbone: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    out = []
    for start in range(0, len(images), batch_size):
        batch = normalize(images[start:start + batch_size].to(device))
        with autocast(device):
            maps = backbone(batch)
        out.append(F.normalize(maps.float().mean(dim=(2, 3)), dim=1))
    return torch.cat(out)


def learned(probe: dict[str, float], losses: Sequence[float]) -> bool:
    """Whether a stage shows it learned: the probe improved and, over two or more epochs, the loss fell."""
    fell = len(losses) < 2 or losses[-1] < losses[0]
    return bool(probe["after"] > probe["before"] and fell)
