"""Reading real-dataset images: full JPEG decode then resize, against decoding at a reduced scale.

``FileImages.read(index, size)`` asks Pillow's JPEG decoder for a 1/2, 1/4 or
1/8 scale that still covers the target size (``Image.draft``), then resizes as
before. This measures both paths on seeded synthetic photos of the datasets'
real sizes (CVACT panorama 1664x832 -> 112x616, VIGOR panorama 2048x1024 ->
224x448, VIGOR tile 640x640 -> 224x224, CVACT tile 1200x1200 -> 256x256), the
best of ``--repeats`` passes over ``--images`` files each, in one process.

Usage::

    python benchmarks/perf/decode.py --images 20 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from cvbench.data import FileImages
from cvbench.data.loaders import load_image

CASES = {
    "cvact_panorama": ((832, 1664), (112, 616)),
    "vigor_panorama": ((1024, 2048), (224, 448)),
    "vigor_tile": ((640, 640), (224, 224)),
    "cvact_tile": ((1200, 1200), (256, 256)),
}


def photo_like(shape: tuple[int, int], seed: int) -> Image.Image:
    """Smoothed noise: compresses like a photo rather than like white noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((shape[1], shape[0]), Image.BILINEAR).filter(ImageFilter.GaussianBlur(2))


def best_time(images: FileImages, size: tuple[int, int], sized: bool, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(len(images)):
            if sized:
                load_image(images, index, size)
            else:
                load_image(_Unsized(images), index, size)
        times.append(time.perf_counter() - start)
    return min(times) / len(images)


class _Unsized:
    """The same files without the sized read: full decode, then the same resize."""

    def __init__(self, images: FileImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images.read(index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (shape, size) in CASES.items():
            paths = []
            for i in range(args.images):
                path = Path(folder) / f"{name}_{i}.jpg"
                photo_like(shape, i).save(path, quality=90)
                paths.append(path)
            images = FileImages(paths)
            full = best_time(images, size, False, args.repeats)
            draft = best_time(images, size, True, args.repeats)
            results[name] = {"source": list(shape), "target": list(size), "full_ms": 1000 * full,
                             "reduced_ms": 1000 * draft, "speedup": full / draft}
            print(f"{name:16s} {shape[0]}x{shape[1]} -> {size[0]}x{size[1]}: full decode {1000 * full:6.1f} ms, "
                  f"reduced-scale decode {1000 * draft:6.1f} ms, {full / draft:4.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
