"""Stage 1: self-supervised pre-training of one branch's backbone (thesis section 3.1).

The pretrainer plugin wraps the backbone (e.g. MoCov2's query encoder is the
backbone plus a projection head); the backbone is trained in place and saved
as a safetensors checkpoint the fine-tuning stage loads (section 3.1.2).
SGD with momentum 0.9 and a step schedule (x0.1 at the milestones), as in
section 4.2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import save_weights
from .data import ImageList
from .device import autocast
from .errors import SpecError
from .loaders import Reader, TwoViews, normalize
from .registry import create, get_registry
from .spec import RunSpec
from .training import check_finite, step, trainable


def pretrain_backbone(spec: RunSpec, branch: str, backbone: nn.Module, images: ImageList, reader: Reader,
                      device: torch.device, generator: torch.Generator, progress: Progress | None,
                      out_path: Path, indices: Sequence[int] | None = None,
                      meta: pd.DataFrame | None = None) -> dict[str, Any]:
    """Pre-train ``backbone`` in place on ``images`` with ``spec.pretrainer``; save it to ``out_path``.

    A pretrainer whose factory has a ``label_column`` (supervised pre-training)
    is also given ``classes`` (the sorted names in that metadata column) and is
    called as ``forward(view1, view2, labels)`` with each image's class index.
    """
    options = dict(spec.pretrain_options)
    column = options.get("label_column", getattr(get_registry().get("pretrainer", spec.pretrainer).factory,
                                                  "label_column", None))
    labels = None
    if column is not None:
        classes, labels = _labels(meta, column, spec.pretrainer, branch)
        options["classes"] = classes
    pretrainer = create("pretrainer", spec.pretrainer, backbone, backbone.out_channels, **options)
    if getattr(pretrainer, "backbone", None) is not backbone:
        raise SpecError(f"pretrainer {spec.pretrainer!r} must keep the backbone it was given as `.backbone`")
    pretrainer.to(device).train()
    dataset = TwoViews(images, reader, pretrainer.augmentations(reader.size), indices, labels)
    if len(dataset) < spec.pretrain_batch_size:
        raise SpecError(f"--pretrain-batch-size {spec.pretrain_batch_size} is larger than the {len(dataset)} "
                        f"{branch} images available for pre-training")
    loader = DataLoader(dataset, batch_size=spec.pretrain_batch_size, shuffle=True, drop_last=True,
                        generator=generator, num_workers=spec.workers)
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9, weight_decay=spec.pretrain_weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(spec.pretrain_milestones), gamma=0.1)
    started = time.perf_counter()
    epoch_loss = float("nan")
    task = progress.add_task(f"pre-train {branch} ({spec.pretrainer})", total=spec.pretrain_epochs * len(loader),
                             info="") if progress else None
    for epoch in range(1, spec.pretrain_epochs + 1):
        total, count = 0.0, 0
        for batch, (view1, view2, *label) in enumerate(loader, start=1):
            value = pretrain_step(pretrainer, optimizer, params, view1, view2, label, device, spec.grad_clip,
                                  f"pre-training the {branch} branch", (epoch, batch))
            total, count = total + value, count + 1
            if progress is not None:
                progress.update(task, advance=1, info=f"epoch {epoch} loss {total / count:.4f}")
        scheduler.step()
        epoch_loss = total / max(count, 1)
    metadata = {"backbone": spec.backbone, "branch": branch, "pretrainer": spec.pretrainer,
                "pretrain_data": spec.pretrain_data, "pretrain_from": spec.pretrain_from,
                "pretrain_epochs": spec.pretrain_epochs, "images": len(dataset)}
    save_weights(out_path, backbone, metadata=metadata)
    return {"loss": epoch_loss, "seconds": time.perf_counter() - started, "images": len(dataset)}


def pretrain_step(pretrainer: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
                  view1: torch.Tensor, view2: torch.Tensor, labels: Sequence[torch.Tensor], device: torch.device,
                  grad_clip: float | None = None, stage: str = "pre-training",
                  where: tuple[int, int] = (0, 0)) -> float:
    """One pre-training step on two augmented views ([0, 1]) of a batch (and its labels, if any): the loss."""
    with autocast(device):
        loss = pretrainer(normalize(view1.to(device)), normalize(view2.to(device)),
                          *(part.to(device) for part in labels))
    value = check_finite(loss, stage, *where)
    step(optimizer, loss, params, grad_clip)
    pretrainer.after_step()
    return value


def _labels(meta: pd.DataFrame | None, column: str, pretrainer: str, branch: str) -> tuple[list[str], np.ndarray]:
    """(sorted class names, class index of each image) from a metadata column."""
    if meta is None or column not in meta.columns:
        have = ", ".join(map(str, meta.columns)) if meta is not None and len(meta.columns) else "none"
        raise SpecError(f"pretrainer {pretrainer!r} learns the {column!r} label of each image, but the dataset's "
                        f"{branch} metadata has no such column (it has: {have})")
    names = meta[column].astype(str).to_numpy()
    classes = sorted(set(names))
    if len(classes) < 2:
        raise SpecError(f"pretrainer {pretrainer!r}: the {branch} images have {len(classes)} {column!r} class(es); "
                        "classification needs at least 2")
    return classes, np.searchsorted(np.asarray(classes), names)
