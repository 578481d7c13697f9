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

import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from .checkpoint import save_weights
from .data import ImageList
from .device import autocast
from .errors import SpecError
from .loaders import Reader, TwoViews, normalize
from .registry import create
from .spec import RunSpec
from .training import check_finite, step, trainable


def pretrain_backbone(spec: RunSpec, branch: str, backbone: nn.Module, images: ImageList, reader: Reader,
                      device: torch.device, generator: torch.Generator, progress: Progress | None,
                      out_path: Path, indices: Sequence[int] | None = None) -> dict[str, Any]:
    """Pre-train ``backbone`` in place on ``images`` with ``spec.pretrainer``; save it to ``out_path``."""
    pretrainer = create("pretrainer", spec.pretrainer, backbone, backbone.out_channels, **spec.pretrain_options)
    if getattr(pretrainer, "backbone", None) is not backbone:
        raise SpecError(f"pretrainer {spec.pretrainer!r} must keep the backbone it was given as `.backbone`")
    pretrainer.to(device).train()
    dataset = TwoViews(images, reader, pretrainer.augmentations(reader.size), indices)
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
        for batch, (view1, view2) in enumerate(loader, start=1):
            with autocast(device):
                loss = pretrainer(normalize(view1.to(device)), normalize(view2.to(device)))
            value = check_finite(loss, f"pre-training the {branch} branch", epoch, batch)
            step(optimizer, loss, params, spec.grad_clip)
            pretrainer.after_step()
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
