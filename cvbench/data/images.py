"""Image lists: what a dataset hands the engine for each view, read lazily and in any process.

An image list is anything with ``len`` and ``[i]`` giving uint8 ``(H, W, 3)``
(:class:`ImageList`). :class:`FileImages` reads files on demand (and decodes
JPEGs at a reduced scale when a smaller size is asked for), :class:`ArrayImages`
wraps an array, and the rest select or join lists without reading them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import CvbenchError
from .problems import DatasetWarning


@runtime_checkable
class ImageList(Protocol):
    """A random-access list of RGB images: ``images[i]`` is uint8 ``(H, W, 3)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...


class ArrayImages:
    """Images held in one uint8 array ``(N, H, W, 3)`` (in memory or memory-mapped)."""

    def __init__(self, array: np.ndarray) -> None:
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(f"expected a uint8 array (N, H, W, 3), got {array.dtype} {array.shape}")
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.array[index])


class FileImages:
    """Images read from files on demand with Pillow, in whichever process asks (DataLoader workers).

    A missing or corrupt file raises :class:`CvbenchError` naming it. An image
    in another mode (greyscale, RGBA, palette) is converted to RGB, and the
    first conversion in each process is reported as a :class:`DatasetWarning`
    (``cvbench data check`` lists every such file).
    """

    def __init__(self, paths: Sequence[Path | str]) -> None:
        self.paths = [Path(p) for p in paths]
        self._converted = False

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.read(index)

    def read(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Image ``index`` as uint8 ``(H, W, 3)``; with ``size`` (H, W) a JPEG may decode at a reduced scale.

        JPEG decoders can scale by 1/2, 1/4 or 1/8 during decoding (Pillow's
        ``draft``); the scale chosen keeps both sides at least ``size``, so the
        caller's resize still only shrinks, and large panoramas decode several
        times faster.
        """
        from PIL import Image, UnidentifiedImageError

        path = self.paths[int(index)]
        try:
            with Image.open(path) as image:
                if size is not None and image.format == "JPEG":
                    image.draft("RGB", (int(size[1]), int(size[0])))
                if image.mode != "RGB":
                    self._report_conversion(path, image.mode)
                    image = image.convert("RGB")
                return np.asarray(image)
        except FileNotFoundError:
            raise CvbenchError(f"image file is missing: {path}") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise CvbenchError(f"cannot read image {path}: {exc} (expected a readable JPEG or PNG)") from None

    def _report_conversion(self, path: Path, mode: str) -> None:
        if self._converted:
            return
        self._converted = True
        warnings.warn(f"image {path} is in mode {mode}, not RGB; converted to RGB (this and any further "
                      "such images; `cvbench data check` lists them all)", DatasetWarning, stacklevel=3)

    def file(self, index: int) -> Path:
        """The file image ``index`` is read from."""
        return self.paths[int(index)]

    def take(self, indices: Sequence[int]) -> "FileImages":
        """The images at ``indices``, as a new list."""
        return FileImages([self.paths[int(i)] for i in indices])


class IndexedImages:
    """A view of some images of another list, in the order of ``indices``."""

    def __init__(self, images: ImageList, indices: Sequence[int]) -> None:
        self.images = images
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[int(self.indices[index])]

    def read(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        return read_image(self.images, int(self.indices[index]), size)

    def file(self, index: int) -> Path | None:
        return image_file(self.images, int(self.indices[index]))


def take_images(images: ImageList, indices: Sequence[int]) -> ImageList:
    """The images at ``indices`` (a list of files stays a list of files, so it can still be checked)."""
    take = getattr(images, "take", None)
    return take(indices) if take is not None else IndexedImages(images, indices)


def read_image(images: ImageList, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """``images[index]``, through the list's sized ``read`` where it has one (see :meth:`FileImages.read`)."""
    read = getattr(images, "read", None)
    return read(index, size) if read is not None else images[index]


def image_file(images: ImageList, index: int) -> Path | None:
    """The file ``images[index]`` is read from, or None for a list not read from files (arrays, renderings)."""
    file = getattr(images, "file", None)
    return file(index) if file is not None else None


class ConcatImages:
    """Several image lists read as one (pre-training on the ``all`` split)."""

    def __init__(self, *lists: ImageList) -> None:
        self.lists = lists
        self.offsets = np.cumsum([0] + [len(images) for images in lists])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        return self.read(index)

    def read(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return read_image(self.lists[which], index - int(self.offsets[which]), size)

    def file(self, index: int) -> Path | None:
        which = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return image_file(self.lists[which], index - int(self.offsets[which]))
