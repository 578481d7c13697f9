"""Decoding every image file of a dataset once, to find the ones a run would stop on.

Used by ``cvbench data check`` and by runs with ``--bad-images skip``. A file
is fully decoded (a truncated JPEG only fails when its last rows are
decoded); decoding runs in threads, as Pillow's decoders release the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from rich.progress import Progress

from .images import ImageList
from .pairs import CrossViewPairs
from .problems import Problem, report_skipped


def check_image(path: Path | str) -> Problem | None:
    """What is wrong with one image file: missing or unreadable (fatal), not RGB (converted), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            image.load()
    except FileNotFoundError:
        return Problem(str(path), "image file is missing")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return Problem(str(path), f"unreadable image: {exc}")
    if mode != "RGB":
        return Problem(str(path), f"image mode {mode}, not RGB: converted to RGB when read", fatal=False)
    return None


def image_paths(images: ImageList) -> list[Path] | None:
    """The files behind an image list, or None for images held in memory (nothing to check)."""
    paths = getattr(images, "paths", None)
    return None if paths is None else list(paths)


def check_files(paths: Iterable[Path], known: dict[Path, Problem | None] | None = None,
                progress: Progress | None = None, description: str = "check images",
                threads: int | None = None) -> dict[Path, Problem | None]:
    """``{path: problem or None}`` for every path, decoding each file once (``known`` caches results)."""
    known = {} if known is None else known
    todo = [path for path in dict.fromkeys(paths) if path not in known]
    task = progress.add_task(description, total=len(todo), info="") if progress is not None and todo else None
    with ThreadPoolExecutor(max_workers=threads or min(16, 2 * (os.cpu_count() or 1))) as pool:
        for path, problem in zip(todo, pool.map(check_image, todo, chunksize=64)):
            known[path] = problem
            if task is not None:
                progress.advance(task)
    if task is not None:
        progress.remove_task(task)
    return known


def drop_unreadable(pairs: CrossViewPairs, what: str, known: dict[Path, Problem | None] | None = None,
                    progress: Progress | None = None) -> CrossViewPairs:
    """``pairs`` without the images that cannot be read, and without the queries that need them.

    A query goes when its own image or its positive is unreadable; an
    unreadable semi-positive only leaves its row. Everything left out is
    reported with :func:`report_skipped` (one warning in a run).
    """
    known = {} if known is None else known
    bad: dict[str, list[int]] = {}
    problems: list[Problem] = []
    for view in ("ground", "aerial"):
        paths = image_paths(getattr(pairs, view))
        if paths is None:
            bad[view] = []
            continue
        check_files(paths, known, progress, f"check {what} {view} images")
        bad[view] = [i for i, path in enumerate(paths) if known[path] is not None and known[path].fatal]
        problems += [known[paths[i]] for i in bad[view]]
    if not problems:
        return pairs
    keep_queries = sorted(set(range(pairs.num_queries)) - set(bad[pairs.query_view]))
    keep_refs = sorted(set(range(pairs.num_references)) - set(bad[pairs.gallery_view]))
    report_skipped(f"unreadable images of {what} (with the pairs that need them)", problems)
    return pairs.select(keep_queries, keep_refs)
