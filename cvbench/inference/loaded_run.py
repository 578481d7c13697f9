"""A finished run's model put to work: rebuilt from its checkpoint, embedding images as its evaluation does.

:func:`load_run` reads the run's spec and final checkpoint through the same
:func:`cvbench.runs.assemble.load_run_model` that ``cvbench eval`` uses, and
:meth:`LoadedRun.embed` feeds images through the engine's own embedding
(:func:`cvbench.evaluation.evaluate.embed`) with the run's readers: the same
resize, polar transform, field of view and normalisation as the run's
evaluation, so an image embedded here gets the embedding evaluation gave it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from rich.progress import Progress
from safetensors import safe_open

from ..data.images import ArrayImages, FileImages, ImageList
from ..data.loaders import Reader, readers
from ..errors import SpecError
from ..evaluation.evaluate import embed as embed_images
from ..nn.device import select_device
from ..nn.model import TwoBranchNet
from ..runs.assemble import load_run_model
from ..runs.folder import MODEL_CHECKPOINT, RunFolder
from ..spec import BRANCHES, RunSpec

Images = Union[ImageList, torch.Tensor, np.ndarray, Sequence[object]]
"""What :meth:`LoadedRun.embed` takes: image paths, PIL images, uint8 ``(H, W, 3)`` arrays, a uint8
``(N, H, W, 3)`` array, a ``(N, 3, H, W)`` tensor (uint8, or float in [0, 1]), or an image list."""

EMBEDDING_FIELDS = ("backbone", "backbone_stage", "backbone_options", "head", "head_options", "dim", "shared_backbone",
                    "ground_size", "aerial_size", "polar", "fov", "orientation", "seed")
"""The spec fields that decide what embedding an image gets (beyond the weights): kept beside a tile index."""


@dataclass
class LoadedRun:
    """A finished run's two-branch model in eval mode on ``device``, with the spec it was trained under."""

    path: Path
    spec: RunSpec
    model: TwoBranchNet
    device: torch.device

    @property
    def name(self) -> str:
        """The run's folder name, as the leaderboard shows it."""
        return self.path.name

    @property
    def dim(self) -> int:
        """The embedding size."""
        return int(self.model.dim)

    def embedding_spec(self) -> dict[str, object]:
        """The spec fields that define this run's embeddings (:data:`EMBEDDING_FIELDS`)."""
        values = self.spec.to_dict()
        return {name: values[name] for name in EMBEDDING_FIELDS}

    def fingerprint(self) -> str:
        """SHA-256 of the weights (each tensor's name, dtype, shape and bytes, in name order): two runs with the
        same fingerprint embed every image alike.

        The checkpoint file's own bytes would not do: its metadata names the
        run, so two runs with identical weights would read as different.
        """
        digest = hashlib.sha256()
        with safe_open(str(RunFolder(self.path).checkpoint(MODEL_CHECKPOINT)), "pt") as handle:
            for name in sorted(handle.keys()):
                tensor = handle.get_tensor(name)
                digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
                digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def reader(self, view: str, fov: float | None = None) -> Reader:
        """The run's evaluation reader of ``view``; for ground views, cut to ``fov`` degrees when given."""
        if view not in BRANCHES:
            raise SpecError(f"view must be one of {', '.join(BRANCHES)}, got {view!r}")
        if view == "ground" and fov is not None:
            try:
                field = dataclasses.replace(self.spec.field_of_view(), degrees=float(fov))
            except (TypeError, ValueError) as exc:
                raise SpecError(f"--fov {fov}: {exc}") from None
            return Reader(self.spec.ground_size, view=field)
        return readers(self.spec)[view]

    def embed(self, images: Images, view: str = "ground", fov: float | None = None, batch_size: int | None = None,
              progress: Progress | None = None) -> np.ndarray:
        """L2-normalised float32 embeddings ``(N, dim)`` of ``images`` through the ``view`` branch.

        Each image is prepared exactly as the run's evaluation prepares that
        view (:func:`cvbench.data.loaders.readers`), and ground image i of a
        run with random orientation faces evaluation query i's heading.
        ``fov`` cuts full panoramas to that many degrees instead of the run's own ``--fov``.
        """
        listed = as_image_list(images)
        if not len(listed):
            return np.zeros((0, self.dim), np.float32)
        reader = self.reader(view, fov)
        try:
            return embed_images(self.model, view, listed, reader, self.device,
                                batch_size or self.spec.eval_batch_size, progress=progress)
        except (RuntimeError, ValueError) as exc:  # the head's shape check, or a layer's
            if view != "ground" or fov is None or float(fov) == self.spec.field_of_view().degrees:
                raise
            own = self.spec.field_of_view().degrees
            raise SpecError(f"--fov {fov}: run {self.name}'s network was built for {own:g}-degree views and "
                            f"cannot take {float(fov):g}-degree ones "
                            f"({str(exc).splitlines()[0][:120]})") from None


def load_run(run: str | Path, device: str | None = None) -> LoadedRun:
    """The finished run in folder ``run``: its spec and its model with the final weights, in eval mode.

    ``device`` (``auto``, ``cpu``, ``cuda``, ...) defaults to the run's own
    ``--device``. A folder that is not a finished run is a
    :class:`cvbench.errors.CvbenchError` naming it.
    """
    path = Path(run).expanduser()
    spec, model = load_run_model(path)
    where = select_device(device or spec.device)
    return LoadedRun(path, spec, model.to(where).eval(), where)


class _Items:
    """Images given one by one (arrays, PIL images, paths), read when asked for."""

    def __init__(self, items: Sequence[object]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> np.ndarray:
        item = self.items[int(index)]
        if isinstance(item, (str, Path)):
            return FileImages([item])[0]
        if hasattr(item, "convert"):  # a PIL image
            return np.asarray(item.convert("RGB"))
        array = np.asarray(item)
        if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise SpecError(f"image {index}: expected a uint8 (H, W, 3) array, a PIL image or a path; "
                            f"got {array.dtype} {array.shape}")
        return array


def as_image_list(images: Images) -> ImageList:
    """``images`` as an image list the engine reads (paths stay files, read one at a time)."""
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3:
            raise SpecError(f"expected a (N, 3, H, W) image tensor, got shape {tuple(images.shape)}")
        batch = images.detach().cpu()
        if batch.dtype != torch.uint8:  # floats in [0, 1]: the reader's resize works on uint8, as for files
            batch = (batch.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return ArrayImages(batch.permute(0, 2, 3, 1).contiguous().numpy())
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            images = images[None]
        try:
            return ArrayImages(images)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    if isinstance(images, (str, Path)):
        return FileImages([images])
    if isinstance(images, (list, tuple)):
        if all(isinstance(item, (str, Path)) for item in images):
            return FileImages(images)
        return _Items(images)
    return images
