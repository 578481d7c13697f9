"""Data loading throughput at the thesis' image sizes: DataLoader workers against decoding alone.

The real-dataset plugins hand the engine ``FileImages`` lists; this writes
seeded photo-like files of each dataset's real size and format (CVACT JPEG
panoramas 1664x832 and tiles 1200x1200, VIGOR JPEG panoramas 2048x1024 and
PNG tiles 640x640), then measures images per second of

* ``decode``: reading and resizing each file in this process, nothing else
  (the floor a loader cannot beat per core);
* ``workers=N``: the engine's ``Views`` dataset through a torch DataLoader
  with N worker processes and batches of ``--batch``.

``--against-step`` instead asks whether the loader keeps up with training at
the thesis' sizes (``--images`` CVACT-sized JPEG files of each view, 16 of
them distinct, the rest copies, so that writing them takes seconds; VGG16,
112x616 panoramas, 256x256 tiles; fine-tuning batch ``--batch``, MoCov2
batch ``--pretrain-batch``):
images per second that each stage's loader delivers, ready for the step on
the device, on the host path (Pillow decoding and per-image augmentation in
the workers) and on the device path (``--gpu-decode``, and for MoCov2
``--gpu-augment``: bytes from the workers, decoded and augmented a batch at a
time on the device), against the images per second of the training step
itself (``throughput.py``'s harness step on tensors already on the device).
A loader/step ratio of at least 1 means the step never waits for data. The
loader's clock starts at its first batch (worker start-up left out), so
``--images`` should make several batches.

Usage::

    python benchmarks/perf/loading.py --images 64 --workers 0 1 2 --json out.json
    python benchmarks/perf/loading.py --against-step --device cuda --images 512 --workers 8 --batch 96 \
        --pretrain-batch 128 --json loader_vs_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from decode import photo_like
from throughput import finetune_case, mocov2_case, timed
from torch.utils.data import DataLoader

from cvbench.data import FileImages
from cvbench.data.augment import mocov2_augmentation
from cvbench.data.batch_augment import batched
from cvbench.data.loaders import (EncodedPairs, Images, Pairs, Reader, TwoViews, Views, collate_encoded, load_image,
                                  on_device)
from cvbench.nn.device import describe, select_device
from cvbench.runs.assemble import resolve_spec
from cvbench.spec import RunSpec

CASES = {  # name: (file shape (H, W), format, thesis input size (H, W))
    "cvact_panorama": ((832, 1664), "JPEG", (112, 616)),
    "cvact_tile": ((1200, 1200), "JPEG", (256, 256)),
    "vigor_panorama": ((1024, 2048), "JPEG", (224, 448)),
    "vigor_tile": ((640, 640), "PNG", (224, 224)),
}


def decode_rate(images: FileImages, size: tuple[int, int]) -> float:
    start = time.perf_counter()
    for index in range(len(images)):
        load_image(images, index, size)
    return len(images) / (time.perf_counter() - start)


def loader_rate(images: FileImages, size: tuple[int, int], workers: int, batch: int) -> float:
    loader = DataLoader(Views(images, Reader(size)), batch_size=batch, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(chunk) for chunk in loader)
    return count / (time.perf_counter() - start)


THESIS = {"backbone": "vgg16", "backbone_stage": -1, "dim": 4096, "ground_size": (112, 616),
          "aerial_size": (256, 256)}
CVACT_FILES = {"ground": (832, 1664), "aerial": (1200, 1200)}
DISTINCT_FILES = 16  # encoded once each (0.1 s a file), then written again under the other names


def delivered(loader: DataLoader, ready: Callable[[list], object], device: torch.device) -> float:
    """Images per second ``loader`` delivers, each batch made ready for the step on ``device`` by ``ready``.

    The clock starts once the first batch is ready, leaving out the workers' start-up (needs 2 batches or more).
    """
    count, start = 0, 0.0
    for batch in loader:
        ready(batch)
        if start:
            count += 2 * len(batch[0])  # two images per item: a pair, or two views
        else:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - start)


def loader_paths(folder: Path, count: int, batch: int, pretrain_batch: int, workers: int,
                 device: torch.device) -> dict[str, dict[str, float]]:
    """Images per second of each stage's loader, host path against device path, on ``count`` CVACT-sized files."""
    lists = {}
    for branch, shape in CVACT_FILES.items():
        paths = [folder / f"{branch}_{i}.jpg" for i in range(count)]
        for seed, path in enumerate(paths[:DISTINCT_FILES]):
            photo_like(shape, seed).save(path, format="JPEG", quality=90)
        for i, path in enumerate(paths[DISTINCT_FILES:], DISTINCT_FILES):
            path.write_bytes(paths[i % DISTINCT_FILES].read_bytes())
        lists[branch] = FileImages(paths)
    readers = {"ground": Reader(THESIS["ground_size"]), "aerial": Reader(THESIS["aerial_size"])}
    indices, positives = list(range(count)), list(range(count))
    pin = device.type == "cuda"

    def loader(dataset, size, collate=None) -> DataLoader:
        return DataLoader(dataset, batch_size=size, num_workers=workers, pin_memory=pin, collate_fn=collate)

    def to_device(batch: list) -> None:
        for part in batch:
            part.to(device, non_blocking=True)

    encoded = EncodedPairs(lists["ground"], lists["aerial"], positives, indices, readers)
    recipe = mocov2_augmentation(THESIS["aerial_size"])
    views = batched(recipe)

    def views_on_device(batch: list) -> None:
        image = on_device(batch[0], readers["aerial"], device)
        views(image), views(image)

    rows = {"finetune": {
        "host": delivered(loader(Pairs(lists["ground"], lists["aerial"], positives, indices, readers), batch),
                          to_device, device),
        "device": delivered(loader(encoded, batch, collate_encoded),
                            lambda b: encoded.on_device(b[0], b[1], device), device)}}
    rows["mocov2"] = {
        "host": delivered(loader(TwoViews(lists["aerial"], readers["aerial"], (recipe, recipe)), pretrain_batch),
                          to_device, device),
        "device": delivered(loader(Images(lists["aerial"], readers["aerial"], encoded=True), pretrain_batch,
                                   collate_encoded), views_on_device, device)}
    return rows


def step_rates(device: torch.device, batch: int, pretrain_batch: int, steps: int) -> dict[str, float]:
    """Images per second of the fine-tuning and MoCov2 harness steps at the thesis' sizes on ``device``."""
    spec = resolve_spec(RunSpec(preset="paper", device=str(device), base_init="random", **THESIS))
    rates = {}
    for name, case, size in (("finetune", finetune_case, batch), ("mocov2", mocov2_case, pretrain_batch)):
        harness, _ = case(spec, size, device)
        timed(harness, 1, device)  # warm-up
        rates[name] = 2 * size * steps / timed(harness, steps, device)
    return rates


def against_step(args: argparse.Namespace) -> None:
    device = select_device(args.device)
    workers = args.workers[-1]
    with tempfile.TemporaryDirectory() as folder:
        loaders = loader_paths(Path(folder), args.images, args.batch, args.pretrain_batch, workers, device)
    steps = step_rates(device, args.batch, args.pretrain_batch, args.steps)
    print(f"{describe(device)}, {workers} workers, {os.cpu_count()} CPUs; images/s")
    print(f"{'stage':9s} {'batch':>5s} {'step':>9s} {'host loader':>12s} {'ratio':>6s} {'device loader':>14s} "
          f"{'ratio':>6s}")
    results = {}
    for name, size in (("finetune", args.batch), ("mocov2", args.pretrain_batch)):
        row = {"batch": size, "step_images_per_s": steps[name], "host_loader_images_per_s": loaders[name]["host"],
               "device_loader_images_per_s": loaders[name]["device"],
               "host_over_step": loaders[name]["host"] / steps[name],
               "device_over_step": loaders[name]["device"] / steps[name]}
        results[name] = row
        print(f"{name:9s} {size:5d} {steps[name]:9.1f} {row['host_loader_images_per_s']:12.1f} "
              f"{row['host_over_step']:6.2f} {row['device_loader_images_per_s']:14.1f} {row['device_over_step']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"device": describe(device), "cpus": os.cpu_count(), "workers": workers,
                                         "images": args.images, "sizes": THESIS, "results": results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="worker counts to compare (--against-step uses the last)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--against-step", action="store_true", help="loader against training step at thesis sizes")
    parser.add_argument("--pretrain-batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (--against-step)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.against_step:
        against_step(args)
        return
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (shape, kind, size) in CASES.items():
            suffix = ".jpg" if kind == "JPEG" else ".png"
            paths = []
            for i in range(args.images):
                path = Path(folder) / f"{name}_{i}{suffix}"
                photo_like(shape, i).save(path, format=kind, quality=90)
                paths.append(path)
            images = FileImages(paths)
            decode_rate(images, size)  # warm the file cache
            row = {"decode": decode_rate(images, size)}
            for workers in args.workers:
                row[f"workers={workers}"] = loader_rate(images, size, workers, args.batch)
            results[name] = {"file": [*shape, kind], "size": list(size), "images_per_s": row}
            cells = "  ".join(f"{key} {value:7.1f}" for key, value in row.items())
            print(f"{name:15s} {shape[1]}x{shape[0]} {kind:4s} -> {size[1]}x{size[0]}: {cells} img/s")
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
