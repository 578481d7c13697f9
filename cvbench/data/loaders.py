"""torch Datasets over :class:`cvbench.data.CrossViewPairs` for the three stages.

Images leave the dataset as uint8 arrays; here they become ``(3, H, W)``
tensors at the branch's size, then go through the stage's augmentation,
which returns floats in [0, 1]. ImageNet normalisation happens on the device
(:func:`normalize`), batched.

On the device path (``--gpu-decode``, ``--gpu-augment``) the datasets hand
over less: :class:`Images` one uint8 image (or its JPEG bytes) per
pre-training item, :class:`EncodedPairs` the two files' bytes per pair, and
the step decodes, augments and cuts the views a batch at a time on the device.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from torchvision.transforms import v2

from .augment import to_float
from .field_of_view import FieldOfView
from .gpu_decode import EncodedImage, decode_batch, read_bytes
from .images import ImageList, read_image
from .polar import polar_transform

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PairTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def load_image(images: ImageList, index: int, size: tuple[int, int]) -> torch.Tensor:
    """``images[index]`` as a uint8 ``(3, H, W)`` tensor resized to ``size``."""
    array = read_image(images, int(index), size)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"image {index} has shape {array.shape}; expected (H, W, 3)")
    tensor = torch.from_numpy(np.array(array, dtype=np.uint8, order="C")).permute(2, 0, 1)  # a writable copy
    if tuple(tensor.shape[-2:]) != tuple(size):
        tensor = v2.functional.resize(tensor, list(size), antialias=True)
    return tensor


class Reader:
    """Reads one view's images at the branch's size, optionally polar-transformed (aerial).

    ``view`` (ground panoramas) is the run's :class:`FieldOfView`: a reader
    returns the whole image at ``size``, and the stages cut the view the
    network sees with :meth:`evaluation_view` or :meth:`training_view`, after
    any pair augmentation has turned the panorama and tile together.
    """

    def __init__(self, size: tuple[int, int], polar: bool = False, view: FieldOfView | None = None) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.polar = polar
        self.view = view if view is not None and not view.is_identity else None

    def __call__(self, images: ImageList, index: int) -> torch.Tensor:
        if not self.polar:
            return load_image(images, index, self.size)
        tile = images[int(index)]
        return polar_transform(torch.from_numpy(np.array(tile, dtype=np.uint8, order="C")).permute(2, 0, 1), self.size)

    @property
    def output_size(self) -> tuple[int, int]:
        """The ``(H, W)`` the network receives: ``size``, or the field of view's width of it."""
        return self.size if self.view is None else (self.size[0], self.view.width(self.size[1]))

    def evaluation_view(self, image: torch.Tensor, index: int) -> torch.Tensor:
        """What evaluation shows of image ``index``: the same view at every evaluation."""
        return image if self.view is None else self.view.for_evaluation(image, index)

    def training_view(self, image: torch.Tensor) -> torch.Tensor:
        """What one training load shows of an image (a new heading each time under random orientation)."""
        return image if self.view is None else self.view.for_training(image)


_MEAN_STD: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of a float batch ``(B, 3, H, W)`` in [0, 1].

    The constants are copied to each device once: a host-to-device copy per
    batch would make every training step wait for the GPU.
    """
    key = (batch.device, batch.dtype)
    if key not in _MEAN_STD:
        _MEAN_STD[key] = (torch.tensor(IMAGENET_MEAN, device=batch.device, dtype=batch.dtype).view(1, 3, 1, 1),
                          torch.tensor(IMAGENET_STD, device=batch.device, dtype=batch.dtype).view(1, 3, 1, 1))
    mean, std = _MEAN_STD[key]
    return (batch - mean) / std


class Views(Dataset):
    """One view's images (a subset by ``indices``), for embedding: item -> float ``(3, H, W)``."""

    def __init__(self, images: ImageList, reader: Reader, indices: Sequence[int] | None = None) -> None:
        self.images = images
        self.reader = reader
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)
        self.convert = to_float()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> torch.Tensor:
        index = int(self.indices[item])
        return self.convert(self.reader.evaluation_view(self.reader(self.images, index), index))


class TwoViews(Dataset):
    """Pre-training: each image through the pretrainer's two augmentations (and its label, if given)."""

    def __init__(self, images: ImageList, reader: Reader, transforms: tuple[Callable, Callable],
                 indices: Sequence[int] | None = None, labels: np.ndarray | None = None) -> None:
        self.images = images
        self.reader = reader
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)
        self.first, self.second = transforms
        self.labels = labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        image = self.reader.training_view(self.reader(self.images, self.indices[item]))
        if self.labels is None:
            return self.first(image), self.second(image)
        return self.first(image), self.second(image), int(self.labels[self.indices[item]])


class Images(Dataset):
    """Pre-training with the views made on the device: each image once, and its label, if given.

    The item is the uint8 image at the branch's size (its training view
    cut), or, with ``encoded``, its JPEG file's bytes, which the step decodes
    and cuts (:mod:`cvbench.data.gpu_decode`); batch these with
    :func:`collate_encoded`.
    """

    def __init__(self, images: ImageList, reader: Reader, indices: Sequence[int] | None = None,
                 labels: np.ndarray | None = None, encoded: bool = False) -> None:
        self.images = images
        self.reader = reader
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)
        self.labels = labels
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor | EncodedImage, ...]:
        index = int(self.indices[item])
        if self.encoded:
            image = read_bytes(self.images, index)
        else:
            image = self.reader.training_view(self.reader(self.images, index))
        return (image,) if self.labels is None else (image, int(self.labels[index]))


def on_device(images: torch.Tensor | list[EncodedImage], reader: Reader, device: torch.device) -> torch.Tensor:
    """A batch column of :class:`Images` or :class:`EncodedPairs` as uint8 ``(B, 3, H, W)`` on ``device``.

    File bytes are decoded on the device at the reader's size and cut to
    each image's training view; decoded images are only moved.
    """
    if isinstance(images, torch.Tensor):
        return images.to(device, non_blocking=True)
    decoded = decode_batch(images, reader.size, device)
    return decoded if reader.view is None else torch.stack([reader.training_view(image) for image in decoded])


def collate_encoded(items: list[tuple]) -> list:
    """A batch whose file-bytes columns (:class:`~cvbench.data.gpu_decode.EncodedImage`) stay lists; the rest is
    stacked."""
    columns = list(zip(*items))
    return [list(column) if isinstance(column[0], EncodedImage) else default_collate(list(column))
            for column in columns]


class Pairs(Dataset):
    """Fine-tuning: query ``i``'s panorama with its positive tile, through a pair augmentation."""

    def __init__(self, ground: ImageList, aerial: ImageList, positives: np.ndarray, indices: Sequence[int],
                 readers: dict[str, Reader], transform: PairTransform | None = None) -> None:
        self.ground, self.aerial = ground, aerial
        self.positives = np.asarray(positives)
        self.indices = np.asarray(indices)
        self.readers = readers
        convert = to_float()
        self.transform = transform or (lambda pano, tile: (convert(pano), convert(tile)))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        query = int(self.indices[item])
        pano = self.readers["ground"](self.ground, query)
        tile = self.readers["aerial"](self.aerial, int(self.positives[query]))
        pano, tile = self.transform(pano, tile)
        return self.readers["ground"].training_view(pano), self.readers["aerial"].training_view(tile)


class EncodedPairs(Pairs):
    """Fine-tuning with JPEG decoding on the device: query ``i``'s panorama and positive tile as file bytes.

    :meth:`on_device` turns a batch of them into what :class:`Pairs` gives:
    decoded at each branch's size, through the pair augmentation (image by
    image, on the device), cut to the training views.
    """

    def __getitem__(self, item: int) -> tuple[EncodedImage, EncodedImage]:
        query = int(self.indices[item])
        return read_bytes(self.ground, query), read_bytes(self.aerial, int(self.positives[query]))

    def on_device(self, ground: list[EncodedImage], aerial: list[EncodedImage],
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of file bytes as float ``(B, 3, H, W)`` panoramas and tiles on ``device``."""
        panoramas = decode_batch(ground, self.readers["ground"].size, device)
        tiles = decode_batch(aerial, self.readers["aerial"].size, device)
        pairs = [self.transform(pano, tile) for pano, tile in zip(panoramas, tiles)]
        return (torch.stack([self.readers["ground"].training_view(pano) for pano, _ in pairs]),
                torch.stack([self.readers["aerial"].training_view(tile) for _, tile in pairs]))


class ViewSizes(Protocol):
    """What :func:`readers` needs of a run's spec (a :class:`cvbench.spec.RunSpec` has it)."""

    ground_size: Sequence[int]
    aerial_size: Sequence[int]
    polar: bool

    def field_of_view(self) -> FieldOfView: ...


def readers(spec: ViewSizes) -> dict[str, Reader]:
    """The two branches' readers for a run: its image sizes, the ground view, the polar transform if asked."""
    return {"ground": Reader(spec.ground_size, view=spec.field_of_view()),
            "aerial": Reader(spec.aerial_size, polar=spec.polar)}
