"""Data loading throughput at the thesis' image sizes: DataLoader workers against decoding alone.

The real-dataset plugins hand the engine ``FileImages`` lists; this writes
seeded photo-like files of each dataset's real size and format (CVACT JPEG
panoramas 1664x832 and tiles 1200x1200, VIGOR JPEG panoramas 2048x1024 and
PNG tiles 640x640), then measures images per second of

* ``decode``: reading and resizing each file in this process, nothing else
  (the floor a loader cannot beat per core);
* ``workers=N``: the engine's ``Views`` dataset through a torch DataLoader
  with N worker processes and batches of ``--batch``.

Usage::

    python benchmarks/perf/loading.py --images 64 --workers 0 1 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from decode import photo_like
from torch.utils.data import DataLoader

from cvbench.data import FileImages
from cvbench.data.loaders import Reader, Views, load_image

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
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
