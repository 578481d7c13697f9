"""JPEG decoding on the device: loader workers only read file bytes, the step decodes the batch.

At the thesis' rates (thousands of images per second on one GPU) decoding
JPEG panoramas on a handful of host cores is the bottleneck.
``torchvision.io.decode_jpeg`` with ``device="cuda"`` decodes a whole batch
with nvJPEG; with ``device="cpu"`` the same call decodes with libjpeg, so this
path runs, and is tested, on any machine. The decoded images are resized to
the branch's size on the device (antialiased, as the host path).

Only lists whose every image is a ``.jpg``/``.jpeg`` file qualify
(:func:`jpeg_only`); anything else (arrays, PNG tiles, the synthetic world)
keeps the host path. torchvision 0.29 deprecates its image decoders in
favour of TorchCodec; the warning is silenced here until TorchCodec is a
dependency.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2

from ..errors import CvbenchError
from .images import ImageList, image_file

JPEG_SUFFIXES = (".jpg", ".jpeg")


def wanted(setting: str, device: torch.device) -> bool:
    """Whether an ``auto``/``on``/``off`` device-side option is on: ``auto`` means on CUDA."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def jpeg_only(images: ImageList, indices: Sequence[int] | None = None) -> bool:
    """Whether every image (of ``indices``) is read from a JPEG file."""
    chosen = range(len(images)) if indices is None else indices
    for index in chosen:
        path = image_file(images, int(index))
        if path is None or path.suffix.lower() not in JPEG_SUFFIXES:
            return False
    return True


@dataclass(frozen=True)
class EncodedImage:
    """What a loader worker hands the step: a file's bytes as a uint8 1-D tensor, and the file, to name it."""

    data: torch.Tensor
    file: Path

    def pin_memory(self) -> "EncodedImage":
        """The bytes in page-locked memory (a DataLoader with ``pin_memory`` calls this)."""
        return EncodedImage(self.data.pin_memory(), self.file)


def read_bytes(images: ImageList, index: int) -> EncodedImage:
    """The bytes of image ``index``'s file."""
    path = image_file(images, index)
    try:
        return EncodedImage(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), path)
    except OSError:
        raise CvbenchError(f"image file is missing or unreadable: {path}") from None


def decode_batch(files: Sequence[EncodedImage], size: Sequence[int], device: torch.device) -> torch.Tensor:
    """JPEG files' bytes -> uint8 ``(B, 3, H, W)`` on ``device`` at ``size`` (H, W), in one ``decode_jpeg`` call.

    A file that does not decode raises :class:`CvbenchError` naming it.
    """
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders (see the module's docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            images = decode_jpeg([item.data for item in files], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            raise CvbenchError(f"cannot decode {_culprit(files)} as a JPEG (expected a readable JPEG)") from None
    target = [int(size[0]), int(size[1])]
    return torch.stack([image if list(image.shape[-2:]) == target else
                        v2.functional.resize(image, target, antialias=True) for image in images])


def _culprit(files: Sequence[EncodedImage]) -> str:
    """The first file of a failed batch that fails alone (decoded on the host, where errors are per image)."""
    for item in files:
        try:
            decode_jpeg(item.data, mode=ImageReadMode.RGB)
        except RuntimeError:
            return f"image {item.file}"
    return f"the batch of {len(files)} files from {files[0].file}"
