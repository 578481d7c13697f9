"""Generate the arrays of a split's subsets: cities, query shots, panoramas, tiles, labels.

``cross_area`` trains on the first ``num_train_cities`` cities and
validates on the next ``num_val_cities``, so its two subsets are generated
independently. ``same_area`` draws train and val shots from one pool per
city (disjoint cells), so both subsets are generated together.

Each city is built and rendered whole by one worker process (one per CPU
core, at most one per city), from its own seed streams, and the parts are
joined in city order: the output never depends on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from cvbench.progress import make_progress

from .aerial import crop_tiles
from .city import City, build_city
from .heap import keep_freed_memory
from .jit import compile_kernels
from .layout import TileGrid
from .options import SyntheticOptions
from .panorama import render_panoramas
from .queries import Shots, roll_panoramas, sample_shots
from .scene import scene_labels, scene_names
from .streams import Purpose, stream

SPLITS = ("cross_area", "same_area")
SPLIT_CODES = {"cross_area": 0, "same_area": 1}


@dataclass
class SubsetArrays:
    """Everything stored for one subset; the fields of a CrossViewPairs as plain arrays."""

    ground: np.ndarray
    aerial: np.ndarray
    positives: np.ndarray
    semi_positives: np.ndarray | None
    ground_meta: pd.DataFrame
    aerial_meta: pd.DataFrame


def generation_units(split: str) -> list[tuple[str, ...]]:
    """The groups of subsets generated together."""
    return [("train",), ("val",)] if split == "cross_area" else [("train", "val")]


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` cities, the first cities taking one more when it does not divide."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def generate(options: SyntheticOptions, split: str, subsets: tuple[str, ...],
             workers: int | None = None) -> dict[str, SubsetArrays]:
    """The arrays of ``subsets`` (one generation unit) of ``split``, with a progress bar.

    ``workers`` processes build the cities side by side (default: one per
    usable CPU core; 1 works in this process); the bytes are the same for any
    number. The compiled kernels are made (or loaded from numba's cache)
    first, here, so that forked workers inherit them.
    """
    with make_progress() as progress:  # closed (its thread ended) before the workers fork
        compile_kernels(progress)
    counts_by_city = _shot_counts(options, split, subsets)
    total_shots = sum(sum(counts.values()) for counts in counts_by_city.values())
    parts: dict[str, list[SubsetArrays]] = {subset: [] for subset in subsets}
    jobs = [(options, split, index, counts, subsets) for index, counts in counts_by_city.items()]
    with _city_map(workers, len(jobs)) as city_map:
        # A pool's map submits every job, and so forks its workers, before the progress display starts its thread.
        results = city_map(_city_parts, *zip(*jobs))
        with make_progress() as progress:
            cities_task = progress.add_task(f"synthetic {split}/{'+'.join(subsets)}: cities", total=len(jobs),
                                            info="")
            shots_task = progress.add_task("panoramas", total=total_shots, info="")
            for city_parts in results:
                progress.advance(cities_task)
                for subset, part in city_parts.items():
                    parts[subset].append(part)
                    progress.advance(shots_task, len(part.ground))
    return {subset: _concatenate(pieces, options.layout) for subset, pieces in parts.items()}


def default_workers() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def _city_map(workers: int | None, cities: int) -> Iterator[Callable[..., Iterable]]:
    """A ``map`` over ``workers`` processes (at most one per city), results in order; the builtin for one."""
    workers = min(default_workers() if workers is None else workers, cities)
    if workers <= 1 or multiprocessing.current_process().daemon:  # a daemon (a pool's worker) may not fork
        yield map
        return
    # Fork where the platform has it: a worker then starts in milliseconds instead of re-importing everything.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # Workers keep the memory freed between a city's arrays (see heap.py); they end with the generation.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method), initializer=keep_freed_memory)
    try:
        yield pool.map
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, cities not yet started are not built


def _city_parts(options: SyntheticOptions, split: str, index: int, counts: dict[str, int],
                subsets: tuple[str, ...]) -> dict[str, SubsetArrays]:
    """Build city ``index`` and render its shots of each subset (drawn from one pool, disjoint)."""
    city = build_city(options, index)
    rng = stream(options.seed, Purpose.QUERIES, SPLIT_CODES[split], index)
    pool = _sample(city, sum(counts.values()), options, rng)
    parts, start = {}, 0
    for subset in subsets:
        parts[subset] = _city_part(city, pool.subset(slice(start, start + counts[subset])), options)
        start += counts[subset]
    return parts


def _shot_counts(options: SyntheticOptions, split: str, subsets: tuple[str, ...]) -> dict[int, dict[str, int]]:
    """City index -> shots per subset, for the cities a generation unit needs."""
    if split == "same_area":
        train = split_evenly(options.train_pairs, options.num_cities)
        val = split_evenly(options.val_pairs, options.num_cities)
        return {i: {"train": train[i], "val": val[i]} for i in range(options.num_cities)}
    (subset,) = subsets
    cities = (range(options.num_train_cities) if subset == "train"
              else range(options.num_train_cities, options.num_cities))
    total = options.train_pairs if subset == "train" else options.val_pairs
    return {i: {subset: n} for i, n in zip(cities, split_evenly(total, len(cities)))}


def _sample(city: City, count: int, options: SyntheticOptions, rng: np.random.Generator) -> Shots:
    """``count`` shots in ``city`` inside the span of its tile grid."""
    grid = TileGrid.covering(city.size, options.tile_metres)
    return sample_shots(city, count, grid.span, options.pano_size[1], options.temporal_change,
                        options.unknown_orientation, rng, options.reference_spacing)


def _city_part(city: City, shots: Shots, options: SyntheticOptions) -> SubsetArrays:
    """Panoramas, tiles, correspondences and metadata of one city's shots in one subset."""
    panoramas = np.empty((len(shots), *options.pano_size, 3), np.uint8)
    for epoch, lit in enumerate(city.epochs):
        which = np.nonzero(shots.epochs == epoch)[0]
        panoramas[which] = render_panoramas(lit, shots.positions[which], options.pano_size, shots.exposure[which])
    panoramas = roll_panoramas(panoramas, shots.yaw_columns)
    grid = TileGrid.covering(city.size, options.tile_metres)
    if options.layout == "aligned":
        centres = shots.positions
        positives, semi = np.arange(len(shots)), None
    else:
        centres = grid.centres()
        positives, semi = grid.nearest(shots.positions), grid.semi_positives(shots.positions)
    tiles = crop_tiles(city.satellite, centres, options.tile_metres, options.tile_size)
    # One pass over the map labels the queries and the tiles.
    labels = scene_labels(city.material, np.concatenate([shots.positions, centres]), options.tile_metres)
    ground_meta = pd.DataFrame({
        "city": city.name, "style": city.style, "x": shots.positions[:, 0], "y": shots.positions[:, 1],
        "yaw_deg": shots.yaw_columns * (360.0 / options.pano_size[1]), "epoch": shots.epochs,
        "scene": scene_names(labels[:len(shots)])})
    aerial_meta = pd.DataFrame({
        "city": city.name, "style": city.style, "x": centres[:, 0], "y": centres[:, 1],
        "scene": scene_names(labels[len(shots):])})
    return SubsetArrays(panoramas, tiles, positives, semi, ground_meta, aerial_meta)


def _concatenate(pieces: list[SubsetArrays], layout: str) -> SubsetArrays:
    """Join per-city parts, shifting tile indices by the tiles of the cities before."""
    offsets = np.cumsum([0] + [len(p.aerial) for p in pieces[:-1]])
    positives = np.concatenate([p.positives + o for p, o in zip(pieces, offsets)])
    semi = None
    if layout == "offset":
        semi = np.concatenate([np.where(p.semi_positives >= 0, p.semi_positives + o, -1)
                               for p, o in zip(pieces, offsets)])
    return SubsetArrays(
        ground=np.concatenate([p.ground for p in pieces]), aerial=np.concatenate([p.aerial for p in pieces]),
        positives=positives, semi_positives=semi,
        ground_meta=pd.concat([p.ground_meta for p in pieces], ignore_index=True),
        aerial_meta=pd.concat([p.aerial_meta for p in pieces], ignore_index=True))
