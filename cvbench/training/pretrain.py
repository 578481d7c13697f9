"""Stage 1: self-supervised pre-training of one branch's backbone (thesis section 3.1).

The pretrainer plugin wraps the backbone (e.g. MoCov2's query encoder is the
backbone plus a projection head); the backbone is trained in place and saved
as a safetensors checkpoint the fine-tuning stage loads (section 3.1.2).
SGD with momentum 0.9 and a step schedule (x0.1 at the milestones), as in
section 4.2.

Under ``torchrun`` a ``DistributedSampler`` deals each rank its share of the
global ``pretrain_batch_size``; BatchNorm layers are synchronised across GPUs
unless the pretrainer shuffles BN itself (``shuffles_batchnorm = True``, as
MoCo does); only rank 0 saves the checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

from ..contract.conform import factory_declares, label_column
from ..contract.registry import create, get_registry
from ..data import ImageList
from ..data.batch_augment import batched
from ..data.gpu_decode import jpeg_only, wanted
from ..data.loaders import Images, Reader, TwoViews, collate_encoded, normalize, on_device
from ..data.sampling import SkipBatches
from ..errors import SpecError
from ..evaluation.probe import ProbeViews, instance_retrieval, learned
from ..nn import distributed
from ..nn.device import autocast, to_device, use_channels_last
from ..spec import RunSpec
from .checkpoint import save_weights
from .loop import LossMonitor, Stage, step, train_epochs, trainable
from .resume import Checkpointer
from .stage_stats import StageMeter


def pretrain_backbone(spec: RunSpec, branch: str, backbone: nn.Module, images: ImageList, reader: Reader,
                      device: torch.device, generator: torch.Generator, progress: Progress | None,
                      out_path: Path, indices: Sequence[int] | None = None,
                      meta: pd.DataFrame | None = None, checkpointer: Checkpointer | None = None,
                      run_state: Callable[[], dict[str, Any]] = dict,
                      probe_images: ImageList | None = None,
                      on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Pre-train ``backbone`` in place on ``images`` with ``spec.pretrainer``; save it to ``out_path``.

    Returns the stage's evidence: the mean loss of every epoch, the number of
    SGD steps, and the label-free probe (:mod:`cvbench.evaluation.probe`) on
    ``probe_images`` (default: the pre-training images) before and after,
    with ``learned`` saying whether both moved the right way.

    A pretrainer factory that declares a ``total_steps`` keyword is given the
    stage's number of optimiser steps (``pretrain_epochs`` times the batches
    of an epoch), so a schedule over the run (BYOL's momentum) can end where
    it should; a ``total_steps`` in ``--pretrain-option`` takes precedence.

    With a ``checkpointer`` the state (pretrainer with its momentum encoder
    and queue, optimiser, scheduler, data order, RNG) is saved after every
    epoch and on SIGINT/SIGTERM, and a resumed run continues from it.
    ``on_step(step, {"loss": value})`` receives every step's loss (the
    experiment trackers', :class:`cvbench.training.loop.LossMonitor`).

    A pretrainer whose factory has a ``label_column`` (supervised pre-training)
    is also given ``classes`` (the sorted names in that metadata column) and is
    called as ``forward(view1, view2, labels)`` with each image's class index.
    """
    pretrainer, labels, total_steps = make_pretrainer(spec, branch, backbone, images, indices, meta)
    pretrainer.to(device).train()
    if not pretrainer.shuffles_batchnorm:
        pretrainer = distributed.sync_batchnorm(pretrainer, device)
    dataset, views = pretraining_views(spec, branch, pretrainer, images, reader, indices, labels, device)
    loader = _loader(dataset, spec, generator, device, collate_encoded if views else None)
    forward = distributed.wrap(pretrainer, device)
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9, weight_decay=spec.pretrain_weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(spec.pretrain_milestones), gamma=0.1)
    channels_last = use_channels_last(device, spec.channels_last)
    what = f"pre-training the {branch} branch"
    monitor = LossMonitor.for_device(what, device)
    monitor.on_step = on_step
    stage = f"pretrain:{branch}"
    resume = checkpointer.resume_point(stage) if checkpointer is not None else None
    probe_views = ProbeViews.draw(probe_images if probe_images is not None else images, reader, spec.seed,
                                  indices=None if probe_images is not None else indices)
    losses: list[float] = list(resume["losses"]) if resume is not None else []
    probe_before = resume["probe_before"] if resume is not None else instance_retrieval(backbone, probe_views, device)
    sampler = loader.batch_sampler.batches.sampler

    def prepare(epoch: int) -> None:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)

    def finish(epoch: int, means: dict[str, float], seconds: float) -> None:
        scheduler.step()
        losses.append(means.get("loss", float("nan")))

    def one_step(batch: Sequence[torch.Tensor], where: tuple[int, int]) -> None:
        view1, view2, label = batch_views(batch, views, reader, device)
        pretrain_step(forward, optimizer, params, view1, view2, label, device, spec.grad_clip, monitor, where,
                      channels_last)

    meter = StageMeter(device)
    seconds = train_epochs(
        Stage(stage, what, f"pre-train {branch} ({spec.pretrainer})", spec.pretrain_epochs, meter.wrap(loader),
              one_step, monitor,
              {"pretrainer": pretrainer, "optimizer": optimizer, "scheduler": scheduler}, device, prepare, finish,
              lambda: {"losses": list(losses), "probe_before": probe_before}),
        generator, progress, checkpointer, resume, run_state)
    metadata = {"backbone": spec.backbone, "branch": branch, "pretrainer": spec.pretrainer,
                "pretrain_data": spec.pretrain_data, "pretrain_from": spec.pretrain_from,
                "pretrain_epochs": spec.pretrain_epochs, "images": len(dataset)}
    if distributed.is_main():
        save_weights(out_path, backbone, metadata=metadata)
    probe = {"before": probe_before, "after": instance_retrieval(backbone, probe_views, device),
             "images": len(probe_views.first), "chance": 100 / len(probe_views.first)}
    return {"loss": losses[-1] if losses else float("nan"), "losses": losses, "steps": total_steps,
            "train_seconds": seconds, "images": len(dataset), "probe": probe, "learned": learned(probe, losses),
            **meter.record(), "gpu_decode": bool(views and views.decode), "gpu_augment": bool(views and views.recipes)}


def make_pretrainer(spec: RunSpec, branch: str, backbone: nn.Module, images: ImageList,
                    indices: Sequence[int] | None = None, meta: pd.DataFrame | None = None
                    ) -> tuple[nn.Module, np.ndarray | None, int]:
    """``spec``'s pretrainer around ``backbone`` for a stage on ``images`` (those of ``indices``): (the pretrainer,
    each image's class index or None, the stage's optimiser steps).

    The one place that builds it, for the stage and for the measurement of a
    run's first line (:mod:`cvbench.runs.expected_time`). A factory declaring
    ``total_steps`` is given the stage's steps, one with a ``label_column``
    also ``classes``; a dataset without that column is a :class:`SpecError`.
    """
    options = dict(spec.pretrain_options)
    factory = get_registry().get("pretrainer", spec.pretrainer).factory
    column = options.get("label_column", label_column(factory))
    labels = None
    if column is not None:
        classes, labels = _labels(meta, column, spec.pretrainer, branch)
        options["classes"] = classes
    count = len(images) if indices is None else len(indices)
    total_steps = spec.pretrain_epochs * steps_per_epoch(count, spec.pretrain_batch_size)
    if "total_steps" not in options and factory_declares(factory, "total_steps"):
        options["total_steps"] = total_steps
    pretrainer = create("pretrainer", spec.pretrainer, backbone, backbone.out_channels, **options)
    if pretrainer.backbone is not backbone:
        raise SpecError(f"pretrainer {spec.pretrainer!r} must keep the backbone it was given as `.backbone`")
    return pretrainer, labels, total_steps


def pretraining_views(spec: RunSpec, branch: str, pretrainer: nn.Module, images: ImageList, reader: Reader,
                      indices: Sequence[int] | None, labels: np.ndarray | None,
                      device: torch.device) -> tuple[TwoViews | Images, "DeviceViews | None"]:
    """The stage's dataset, and the :class:`DeviceViews` that make its two views on the device (None: the
    dataset makes them on the host); fewer images than one batch is a :class:`SpecError`."""
    transforms = pretrainer.augmentations(reader.output_size)
    views = DeviceViews.choose(spec, device, images, reader, indices, transforms)
    dataset = views.dataset(images, reader, indices, labels) if views else TwoViews(images, reader, transforms,
                                                                                      indices, labels)
    if len(dataset) < spec.pretrain_batch_size:
        raise SpecError(f"--pretrain-batch-size {spec.pretrain_batch_size} is larger than the {len(dataset)} "
                        f"{branch} images available for pre-training")
    return dataset, views


def batch_views(batch: Sequence[Any], views: "DeviceViews | None", reader: Reader,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(view1, view2, labels) of a loaded batch: as the loader made them, or made now on the device by ``views``."""
    if views is None:
        view1, view2, *label = batch
        return view1, view2, label
    image, *label = batch
    view1, view2 = views(image, reader, device)
    return view1, view2, label


def pretraining_summary(branch: str, pretrainer: str, entry: dict[str, Any]) -> str:
    """One line saying whether a pre-training stage learned: its loss from first to last epoch and its probe.

    A stage that did not learn (:func:`cvbench.evaluation.probe.learned`) is
    said so in plain words: fine-tuning that starts from it tests a method
    that did not train, and a reader must know before crediting it.
    """
    probe, losses = entry["probe"], entry["losses"]
    loss = (f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, " if len(losses) > 1 else
            f"loss {losses[0]:.3f} (one epoch), " if losses else "")
    verdict = "learned" if entry["learned"] else "[yellow]did not learn[/] (its start is no evidence for the method)"
    return (f"pre-trained {branch} ({pretrainer}): {loss}probe R@1 {probe['before']:.2f}% -> {probe['after']:.2f}% "
            f"(chance {probe['chance']:.2f}%): {verdict}")


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Optimiser steps in one pre-training epoch: whole batches only (the loader drops the last partial one).

    Under ``torchrun`` each rank takes ``images // world`` images in batches
    of ``batch_size // world``, which gives the same count whenever the world
    size divides the batch (which the loader requires).
    """
    world = distributed.world_size() if distributed.active() else 1
    return (images // world) // (batch_size // world)


def _loader(dataset: TwoViews | Images, spec: RunSpec, generator: torch.Generator, device: torch.device,
            collate: Callable | None = None) -> DataLoader:
    """Shuffled batches of the global batch size (each rank's share under ``torchrun``), resumable mid-epoch.

    The batches come from a :class:`SkipBatches` around a ``BatchSampler``,
    which a resumed epoch tells to leave out the batches already done; with
    the generator also given to the DataLoader, the random draws are those of
    ``DataLoader(shuffle=True, generator=generator)``.
    """
    pin = device.type == "cuda"
    if not distributed.active():
        order = RandomSampler(dataset, generator=generator)
        batches = SkipBatches(BatchSampler(order, spec.pretrain_batch_size, drop_last=True))
        return DataLoader(dataset, batch_sampler=batches, generator=generator, num_workers=spec.workers,
                          pin_memory=pin, collate_fn=collate)
    world = distributed.world_size()
    if spec.pretrain_batch_size % world:
        raise SpecError(f"--pretrain-batch-size {spec.pretrain_batch_size} does not divide among {world} processes; "
                        f"use a multiple of {world}")
    order = DistributedSampler(dataset, world, distributed.rank(), shuffle=True, seed=spec.seed, drop_last=True)
    batches = SkipBatches(BatchSampler(order, spec.pretrain_batch_size // world, drop_last=True))
    return DataLoader(dataset, batch_sampler=batches, num_workers=spec.workers, pin_memory=pin, collate_fn=collate)


class DeviceViews:
    """The two views made on the device from a batch of images (``--gpu-decode``, ``--gpu-augment``).

    ``decode``: the loader hands file bytes and the device decodes them;
    ``recipes``: the pretrainer's two recipes as batched ones
    (:mod:`cvbench.data.batch_augment`), or ``None`` where they stay per
    image (then applied on the device, image by image).
    """

    def __init__(self, transforms: tuple[Callable, Callable], decode: bool, recipes: tuple | None) -> None:
        self.transforms = transforms
        self.decode = decode
        self.recipes = recipes

    @classmethod
    def choose(cls, spec: RunSpec, device: torch.device, images: ImageList, reader: Reader,
               indices: Sequence[int] | None, transforms: tuple[Callable, Callable]) -> "DeviceViews | None":
        """The device pipeline the options and the data allow, or None for the per-image host path."""
        decode = wanted(spec.gpu_decode, device) and not reader.polar and jpeg_only(images, indices)
        recipes = tuple(batched(transform) for transform in transforms) if wanted(spec.gpu_augment, device) else ()
        recipes = recipes if recipes and all(recipes) else None
        return cls(transforms, decode, recipes) if decode or recipes else None

    def dataset(self, images: ImageList, reader: Reader, indices: Sequence[int] | None,
                labels: np.ndarray | None) -> Images:
        return Images(images, reader, indices, labels, encoded=self.decode)

    def __call__(self, batch: torch.Tensor | list[torch.Tensor], reader: Reader,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        images = on_device(batch, reader, device)
        if self.recipes is not None:
            return self.recipes[0](images), self.recipes[1](images)
        return tuple(torch.stack([transform(image) for image in images]) for transform in self.transforms)


def pretrain_step(pretrainer: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
                  view1: torch.Tensor, view2: torch.Tensor, labels: Sequence[torch.Tensor], device: torch.device,
                  grad_clip: float | None = None, monitor: LossMonitor | None = None,
                  where: tuple[int, int] = (0, 0), channels_last: bool = False) -> torch.Tensor:
    """One pre-training step on two augmented views ([0, 1]) of a batch (and its labels, if any); the loss tensor.

    ``pretrainer`` may be wrapped in DDP; its ``after_step`` (momentum
    update, queue) runs on the module inside. The ``monitor`` raises on a
    non-finite loss, naming ``where`` (epoch, batch).
    """
    view1 = normalize(to_device(view1, device, channels_last))
    view2 = normalize(to_device(view2, device, channels_last))
    with autocast(device):
        loss = pretrainer(view1, view2, *(part.to(device, non_blocking=True) for part in labels))
    if monitor is not None and monitor.add(where, loss):
        monitor.flush()
    step(optimizer, loss, params, grad_clip)
    distributed.unwrap(pretrainer).after_step()
    return loss


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
