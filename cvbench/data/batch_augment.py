"""A pretrainer's view recipe run on a whole batch on the device, each image with its own random draws.

torchvision's v2 transforms draw one set of parameters per call, so a batch
through them gets one crop and one jitter for every image, which is useless
for contrastive views; per image on the host they cost the loader workers
most of their time. :func:`batched` translates a recipe built from torchvision
v2 transforms (MoCov2's, BYOL's, SimSiam's, the supervised crop-and-flip)
into the same operations applied to a float batch ``(B, 3, H, W)`` with
per-image parameters: the crop by ``torchvision.ops.roi_align``, the colour
operations by torchvision's own formulas with a factor per image, the blur by
a grouped convolution with a kernel per image. A recipe holding any other
transform gives ``None``, and the engine keeps the per-image path.

The random draws are made on the batch's device, from ``generator`` (a
generator of that device; the device's default one, which the run seeds,
when None), so the step never waits for the host to copy parameters over and
the views depend on the seed alone. One difference from torchvision:
``ColorJitter`` applies its four operations in one random order per batch
(drawn on the host), not per image.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import rgb_to_grayscale
from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

BatchOp = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class Unsupported(Exception):
    """A transform this module has no batched equivalent for."""


def batched(recipe: Callable) -> "BatchRecipe | None":
    """``recipe`` (a v2 transform, usually a ``Compose``) as a per-image batched recipe, or None if it cannot be."""
    try:
        return BatchRecipe(_translate(recipe, uint8=True))
    except Unsupported:
        return None


class BatchRecipe:
    """Maps a uint8 or float batch ``(B, 3, H, W)`` on any device to float views in [0, 1]."""

    def __init__(self, ops: list[BatchOp]) -> None:
        self.ops = ops

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        batch = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        for op in self.ops:
            batch = op(batch, generator)
        return batch.clamp_(0, 1)


def _translate(transform: Callable, uint8: bool) -> list[BatchOp]:
    """The batched ops of ``transform``; ``uint8`` says whether its input is still in 0-255 (before ToDtype)."""
    if isinstance(transform, v2.Compose):
        ops: list[BatchOp] = []
        for part in transform.transforms:
            ops += _translate(part, uint8)
            uint8 = uint8 and not (isinstance(part, v2.ToDtype) and part.scale)
        return ops
    if isinstance(transform, v2.RandomApply):
        inner = [op for part in transform.transforms for op in _translate(part, uint8)]
        return [_maybe(transform.p, _chain(inner))]
    if isinstance(transform, v2.ToDtype):
        return []
    if isinstance(transform, v2.RandomResizedCrop):
        return [_resized_crop(tuple(transform.size), transform.scale, transform.ratio)]
    if isinstance(transform, v2.ColorJitter):
        return [_color_jitter(transform.brightness, transform.contrast, transform.saturation, transform.hue)]
    if isinstance(transform, v2.RandomGrayscale):
        return [_maybe(transform.p, lambda x, g: rgb_to_grayscale(x, num_output_channels=3))]
    if isinstance(transform, v2.GaussianBlur):
        return [_gaussian_blur(tuple(transform.kernel_size), tuple(transform.sigma))]
    if isinstance(transform, v2.RandomHorizontalFlip):
        return [_maybe(transform.p, lambda x, g: x.flip(-1))]
    if isinstance(transform, v2.RandomSolarize):
        threshold = transform.threshold / 255 if uint8 else transform.threshold
        return [_maybe(transform.p, lambda x, g: torch.where(x >= threshold, 1 - x, x))]
    raise Unsupported(type(transform).__name__)


def _chain(ops: list[BatchOp]) -> BatchOp:
    def run(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for op in ops:
            batch = op(batch, generator)
        return batch
    return run


def _uniform(count: int, low: float, high: float, generator: torch.Generator | None,
             batch: torch.Tensor) -> torch.Tensor:
    """``count`` draws from U(low, high) on the batch's device, in its dtype."""
    return low + (high - low) * torch.rand(count, generator=generator, device=batch.device, dtype=batch.dtype)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """One value per image, shaped to broadcast over ``(B, 3, H, W)``."""
    return values.view(-1, 1, 1, 1)


def _maybe(p: float, op: BatchOp) -> BatchOp:
    """``op`` on the images a coin of probability ``p`` picks; the others unchanged."""
    def run(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        chosen = torch.rand(len(batch), generator=generator, device=batch.device) < p  # no host check: no sync
        return torch.where(_per_image(chosen), op(batch, generator), batch)
    return run


def _resized_crop(size: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float],
                  attempts: int = 10) -> BatchOp:
    """torchvision's RandomResizedCrop box draw (first of 10 tries that fits, else a centre crop), per image."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))

    def run(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        count, height, width = len(batch), batch.shape[-2], batch.shape[-1]
        area = height * width * _uniform(count * attempts, *scale, generator, batch).view(count, attempts)
        aspect = torch.exp(_uniform(count * attempts, *log_ratio, generator, batch)).view(count, attempts)
        w = torch.sqrt(area * aspect).round()
        h = torch.sqrt(area / aspect).round()
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
        first = torch.argmax(fits.int(), dim=1)
        w, h = w.gather(1, first[:, None])[:, 0], h.gather(1, first[:, None])[:, 0]
        centre_w, centre_h = _centre_crop(height, width, ratio)
        found = fits.any(dim=1)
        w = torch.where(found, w, torch.full_like(w, centre_w))
        h = torch.where(found, h, torch.full_like(h, centre_h))
        top = torch.where(found, torch.floor(_uniform(count, 0, 1, generator, batch) * (height - h + 1)),
                          (height - h) // 2)
        left = torch.where(found, torch.floor(_uniform(count, 0, 1, generator, batch) * (width - w + 1)),
                           (width - w) // 2)
        index = torch.arange(count, device=batch.device, dtype=batch.dtype)
        boxes = torch.stack([index, left, top, left + w, top + h], dim=1)
        return roi_align(batch, boxes, list(size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return run


def _centre_crop(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's fallback box (width, height): the whole image, trimmed to the aspect range."""
    aspect = width / height
    if aspect < min(ratio):
        return width, round(width / min(ratio))
    if aspect > max(ratio):
        return round(height * max(ratio)), height
    return width, height


def _color_jitter(brightness: tuple[float, float] | None, contrast: tuple[float, float] | None,
                  saturation: tuple[float, float] | None, hue: tuple[float, float] | None) -> BatchOp:
    """ColorJitter with a factor per image for each operation, in one random order per batch."""

    def run(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        count = len(batch)
        host = generator if generator is not None and generator.device.type == "cpu" else None
        for which in torch.randperm(4, generator=host).tolist():
            if which == 0 and brightness is not None:
                batch = (batch * _per_image(_uniform(count, *brightness, generator, batch))).clamp(0, 1)
            elif which == 1 and contrast is not None:
                mean = rgb_to_grayscale(batch).mean(dim=(-3, -2, -1), keepdim=True)
                factor = _per_image(_uniform(count, *contrast, generator, batch))
                batch = (factor * batch + (1 - factor) * mean).clamp(0, 1)
            elif which == 2 and saturation is not None:
                factor = _per_image(_uniform(count, *saturation, generator, batch))
                batch = (factor * batch + (1 - factor) * rgb_to_grayscale(batch)).clamp(0, 1)
            elif which == 3 and hue is not None:
                shift = _uniform(count, *hue, generator, batch).view(-1, 1, 1)
                hsv = _rgb_to_hsv(batch)
                hsv = torch.stack([(hsv[:, 0] + shift) % 1.0, hsv[:, 1], hsv[:, 2]], dim=1)
                batch = _hsv_to_rgb(hsv)
        return batch
    return run


def _gaussian_blur(kernel_size: tuple[int, int], sigma: tuple[float, float]) -> BatchOp:
    """A separable Gaussian blur with a sigma per image, reflect-padded as torchvision's."""
    kernel_x, kernel_y = kernel_size

    def kernels(sigmas: torch.Tensor, side: int, batch: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(side, dtype=batch.dtype, device=batch.device) - (side - 1) / 2
        weights = torch.exp(-offsets[None, :] ** 2 / (2 * sigmas[:, None] ** 2))
        return (weights / weights.sum(dim=1, keepdim=True)).repeat_interleave(3, dim=0)  # (B * 3, side)

    def run(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        count, _, height, width = batch.shape
        sigmas = _uniform(count, *sigma, generator, batch)
        flat = batch.reshape(1, count * 3, height, width)
        flat = F.pad(flat, [kernel_x // 2, kernel_x // 2, kernel_y // 2, kernel_y // 2], mode="reflect")
        flat = F.conv2d(flat, kernels(sigmas, kernel_x, batch)[:, None, None, :], groups=count * 3)
        flat = F.conv2d(flat, kernels(sigmas, kernel_y, batch)[:, None, :, None], groups=count * 3)
        return flat.reshape(count, 3, height, width)
    return run
