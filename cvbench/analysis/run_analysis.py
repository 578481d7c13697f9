"""``cvbench analyze``: the thesis' figures for one run, or side by side for several.

A run folder holds the model as fine-tuning found it
(``checkpoints/initial.safetensors``) and as it ended
(``checkpoints/model.safetensors``). Each is re-embedded on a seeded sample of
the validation queries and their positive tiles, the same sample for every
run of a comparison, so the figures show the same places.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from ..data import CrossViewPairs
from ..data.loaders import Reader, normalize, readers
from ..errors import CvbenchError
from ..evaluation import metrics
from ..evaluation.evaluate import embed
from ..nn.device import select_device
from ..nn.model import TwoBranchNet
from ..progress import log, make_progress
from ..runs.assemble import load_run_model
from ..runs.folder import CHECKPOINTS, INITIAL_CHECKPOINT, MODEL_CHECKPOINT, RunFolder
from ..runs.subsets import load_data, open_dataset
from ..spec import RunSpec
from .curves import training_curves_figure
from .embeddings import PointSet, embedding_figure, uniformity_caption
from .feature_maps import feature_map_figure
from .figure_files import DEFAULT_DPI, DEFAULT_FORMAT, DPI_RANGE, FIGURE_FORMATS, check_dpi
from .heatmaps import QueryMap, estimate_tile_metres, local_metres, localization_figure, rank_caption

STATES = {"before": INITIAL_CHECKPOINT, "after": MODEL_CHECKPOINT}
STATE_TITLES = {"before": "before fine-tuning", "after": "after fine-tuning"}
# figure 4.3: ground red, satellite blue; figure 4.4 adds orange / green for the second city
VIEW_COLOURS = [("tab:red", "tab:blue"), ("tab:orange", "tab:green"), ("tab:purple", "tab:cyan"),
                ("tab:brown", "tab:olive")]


@dataclass
class AnalysisOptions:
    """How much of the validation set the figures look at, and the files they are written to."""

    sample: int = 1000
    queries: int = 4
    images: int = 4
    neighbourhood: int = 400
    kappa: float = 10.0
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    fig_format: str = DEFAULT_FORMAT
    dpi: int = DEFAULT_DPI

    def __post_init__(self) -> None:
        if self.fig_format not in FIGURE_FORMATS:
            raise CvbenchError(f"--fig-format {self.fig_format!r}: expected one of {', '.join(FIGURE_FORMATS)}")
        try:
            check_dpi(self.dpi)
        except ValueError:
            raise CvbenchError(f"--dpi {self.dpi}: expected a whole number from {DPI_RANGE[0]} to {DPI_RANGE[1]}") \
                from None

    def file(self, folder: Path, name: str) -> Path:
        """``folder/name.<fig_format>``."""
        return folder / f"{name}.{self.fig_format}"


@dataclass
class Validation:
    """A run's validation subset and the sampled queries every figure uses."""

    spec: RunSpec
    pairs: CrossViewPairs
    queries: np.ndarray


def analyze_run(run_dir: str | Path, out: str | Path | None = None, options: AnalysisOptions | None = None,
                quiet: bool = False, label: str | None = None) -> list[Path]:
    """Write ``embeddings``, ``heatmaps``, ``feature_maps`` and ``curves`` (``.png`` unless
    ``options.fig_format`` says otherwise); returns their paths.

    The figures go to ``RUN_DIR/analysis/`` unless ``out`` names a folder.
    A run without ``initial.safetensors`` (made before cvbench kept it) gets
    the "after" figures only. ``label`` names the run in the curves' legend
    (default: its folder name).
    """
    options = options or AnalysisOptions()
    run_dir = Path(run_dir)
    (label,) = run_labels([run_dir], None if label is None else [label])
    out = Path(out) if out is not None else run_dir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    states = available_states(run_dir)
    device = select_device(options.device)
    written = []
    with make_progress(quiet) as progress:
        validation = load_validation(run_dir, options, progress)
        models = {state: load_run_model(run_dir, STATES[state])[1].to(device).eval() for state in states}
        rows = []
        for state, model in models.items():
            ground, aerial = embed_sample(model, validation, device, options, progress)
            rows.append(embedding_row(STATE_TITLES[state], validation, ground, aerial))
        written.append(_embeddings(rows, options.file(out, "embeddings"), options, progress))
        final = models["after"]
        maps = query_maps(final, validation, device, options, progress)
        if maps:
            written.append(localization_figure(maps, options.file(out, "heatmaps"), dpi=options.dpi,
                                               caption=rank_caption([len(m.scores) for m in maps])))
        else:
            log("[yellow]no heatmaps:[/] the dataset gives no locations (ground_meta/aerial_meta x, y or lat, lon)",
                quiet)
        written.append(feature_map_figure(feature_rows(models, validation, options, device),
                                          options.file(out, "feature_maps"), dpi=options.dpi))
    written.append(training_curves_figure([(label, read_metrics(run_dir))], options.file(out, "curves"),
                                          dpi=options.dpi))
    return written


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path, state: str = "before",
                 options: AnalysisOptions | None = None, quiet: bool = False,
                 labels: Sequence[str] | None = None) -> list[Path]:
    """One row of the embedding figure per run (the thesis' a/b/c panels), and their curves overlaid.

    ``state`` "before" (as figures 4.3 and 4.4: what pre-training gave
    fine-tuning) or "after". Every run must be on the same dataset split, so
    that all rows show the same sampled places. ``labels`` (one per run, in
    order) name the runs in row titles and legends instead of their folders.
    """
    if state not in STATES:
        raise CvbenchError(f"--state {state!r}: expected one of {', '.join(STATES)}")
    if len(run_dirs) < 2:
        raise CvbenchError("--compare needs at least two run folders")
    options = options or AnalysisOptions()
    run_dirs = [Path(run) for run in run_dirs]
    labels = run_labels(run_dirs, labels)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for run in run_dirs:
        if state not in available_states(run):
            raise CvbenchError(f"{run} has no checkpoints/{STATES[state]}: it cannot be compared {STATE_TITLES[state]}")
    device = select_device(options.device)
    with make_progress(quiet) as progress:
        validation = load_validation(run_dirs[0], options, progress)
        rows = []
        for run, label in zip(run_dirs, labels):
            spec, model = load_run_model(run, STATES[state])
            _check_same_data(validation.spec, spec, run)
            ground, aerial = embed_sample(model.to(device).eval(), validation, device, options, progress)
            rows.append(embedding_row(f"{label} ({STATE_TITLES[state]})", validation, ground, aerial))
        written = [_embeddings(rows, options.file(out, f"embeddings_{state}"), options, progress)]
    curves = [(label, read_metrics(run)) for run, label in zip(run_dirs, labels)]
    written.append(training_curves_figure(curves, options.file(out, "curves"), dpi=options.dpi))
    return written


def run_labels(run_dirs: Sequence[Path], labels: Sequence[str] | None) -> list[str]:
    """The name of each run in titles and legends: ``labels`` in order, else the folder names.

    One label per run, each non-empty and different from the others, so that
    no legend entry is ambiguous; else a one-line error naming the mismatch.
    """
    if labels is None:
        return [run.name for run in run_dirs]
    labels = [str(label) for label in labels]
    if len(labels) != len(run_dirs):
        raise CvbenchError(f"--label: {len(labels)} given for {len(run_dirs)} run folder(s); "
                           "give one per run, in the order of the runs")
    for label in labels:
        if not label.strip():
            raise CvbenchError("--label '': a label names its run in the legends, it cannot be empty")
        if labels.count(label) > 1:
            raise CvbenchError(f"--label {label!r} is given twice: the legends could not tell those runs apart")
    return labels


def available_states(run_dir: Path) -> list[str]:
    """The model states a run folder has checkpoints for ("before", "after"), naming what is missing."""
    folder = RunFolder(run_dir)
    if not folder.checkpoint(MODEL_CHECKPOINT).is_file():
        raise CvbenchError(f"{run_dir} is not a finished cvbench run: no {CHECKPOINTS}/{MODEL_CHECKPOINT}")
    return [state for state, name in STATES.items() if folder.checkpoint(name).is_file()]


def load_validation(run_dir: Path, options: AnalysisOptions, progress: Progress | None) -> Validation:
    """The run's validation subset (as its evaluation saw it) and a seeded sample of its queries."""
    spec = RunFolder(run_dir).checkpoint_spec()
    dataset, split = open_dataset(spec)
    data = load_data(spec, dataset, split, progress)
    if data.val.query_view != "ground":
        raise CvbenchError(f"{run_dir}: its {split} protocol queries with {data.val.query_view} images; the figures "
                           "(panoramas, localisation heatmaps) are drawn for ground queries")
    queries = data.val_queries
    if len(queries) > options.sample:
        queries = np.sort(np.random.default_rng(options.seed).choice(queries, options.sample, replace=False))
    if len(queries) < 2:
        raise CvbenchError(f"{run_dir}: the validation subset has {len(queries)} queries; the figures need 2 or more")
    return Validation(spec, data.val, queries)


def _check_same_data(first: RunSpec, other: RunSpec, run: Path) -> None:
    fields = ("dataset", "data_root", "data_options", "split", "max_val_queries", "seed")
    differ = [name for name in fields if getattr(first, name) != getattr(other, name)]
    if differ:
        raise CvbenchError(f"{run} was evaluated on other data than the first run ({', '.join(differ)} differ); "
                           "compare runs of one dataset split")


def embed_sample(model: TwoBranchNet, validation: Validation, device: torch.device, options: AnalysisOptions,
                 progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the sampled queries and of their positive tiles."""
    spec, pairs = validation.spec, validation.pairs
    views = readers(spec)
    ground = embed(model, "ground", pairs.ground, views["ground"], device, options.batch_size,
                   validation.queries, progress)
    aerial = embed(model, "aerial", pairs.aerial, views["aerial"], device, options.batch_size,
                   pairs.positives[validation.queries], progress)
    return ground, aerial


def embedding_row(title: str, validation: Validation, ground: np.ndarray,
                  aerial: np.ndarray) -> tuple[str, list[PointSet], str]:
    """(title, point sets by view and city, uniformity caption) for one row of the embedding figure."""
    meta = validation.pairs.ground_meta
    cities = meta["city"].to_numpy()[validation.queries] if "city" in meta else None
    names = list(dict.fromkeys(cities)) if cities is not None and len(set(cities)) > 1 else [None]
    sets = []
    for number, city in enumerate(names):
        chosen = np.ones(len(ground), bool) if city is None else cities == city
        colours = VIEW_COLOURS[number % len(VIEW_COLOURS)]
        suffix = "" if city is None else f" · {city}"
        sets.append(PointSet(f"ground{suffix}", ground[chosen], colours[0]))
        sets.append(PointSet(f"satellite{suffix}", aerial[chosen], colours[1]))
    caption = uniformity_caption(metrics.uniformity_report(ground, aerial))
    return title, sets, caption


def _embeddings(rows: list, out: Path, options: AnalysisOptions, progress: Progress | None) -> Path:
    points = sum(len(s.points) for _, sets, _ in rows for s in sets)
    task = progress.add_task(f"t-SNE of {len(rows)} x {points // len(rows)} points", total=None, info="") \
        if progress is not None else None
    try:
        return embedding_figure(rows, out, seed=options.seed, kappa=options.kappa, dpi=options.dpi)
    finally:
        if task is not None:
            progress.remove_task(task)


def locations(meta: pd.DataFrame, origin: tuple[float, float] | None = None) -> np.ndarray | None:
    """(N, 2) metres from ``x``/``y`` or ``lat``/``lon`` columns; None where the dataset has neither."""
    if {"x", "y"} <= set(meta.columns):
        return meta[["x", "y"]].to_numpy(dtype=np.float64)
    if {"lat", "lon"} <= set(meta.columns):
        return local_metres(meta["lat"].to_numpy(float), meta["lon"].to_numpy(float), origin)
    return None


def query_maps(model: TwoBranchNet, validation: Validation, device: torch.device, options: AnalysisOptions,
               progress: Progress | None) -> list[QueryMap]:
    """Appendix 6.3: for a few sampled queries, the similarity of every tile around their true location.

    "Around" is the ``neighbourhood`` tiles nearest the query in its city,
    so the figure stays readable and cheap on a city-sized gallery.
    """
    pairs = validation.pairs
    origin = _origin(pairs.ground_meta)
    ground_xy = locations(pairs.ground_meta, origin)
    aerial_xy = locations(pairs.aerial_meta, origin)
    if ground_xy is None or aerial_xy is None:
        return []
    rng = np.random.default_rng(options.seed)
    chosen = np.sort(rng.choice(validation.queries, min(options.queries, len(validation.queries)), replace=False))
    views = readers(validation.spec)
    maps = []
    for query in chosen:
        candidates = np.arange(pairs.num_references)
        if "city" in pairs.ground_meta and "city" in pairs.aerial_meta:
            city = pairs.ground_meta["city"].iloc[query]
            candidates = candidates[pairs.aerial_meta["city"].to_numpy() == city]
        distance = np.linalg.norm(aerial_xy[candidates] - ground_xy[query], axis=1)
        nearest = candidates[np.argsort(distance, kind="stable")[: options.neighbourhood]]
        positive = int(pairs.positives[query])
        if positive not in nearest:
            nearest = np.append(nearest[:-1], positive)
        z_query = embed(model, "ground", pairs.ground, views["ground"], device, 1, [query])
        z_tiles = embed(model, "aerial", pairs.aerial, views["aerial"], device, options.batch_size, nearest, progress)
        scores = z_tiles @ z_query[0]
        rank = int((scores > scores[list(nearest).index(positive)]).sum())
        city = f" · {pairs.ground_meta['city'].iloc[query]}" if "city" in pairs.ground_meta else ""
        maps.append(QueryMap(f"query {query}{city}\ntrue tile {rank + 1}/{len(nearest)}",
                             aerial_xy[nearest], scores, tuple(ground_xy[query]), list(nearest).index(positive),
                             _square_side(aerial_xy[nearest])))
    return maps


def _square_side(xy: np.ndarray) -> float:
    """The tile spacing, but at least 1/50 of the drawn area: tiles of a densely sampled street stay visible."""
    extent = float(np.ptp(xy, axis=0).max()) if len(xy) > 1 else 1.0
    try:
        spacing = estimate_tile_metres(xy)
    except ValueError:
        spacing = 0.0
    return max(spacing, extent / 50, 1e-6)


def _origin(meta: pd.DataFrame) -> tuple[float, float] | None:
    if {"lat", "lon"} <= set(meta.columns) and len(meta):
        return float(np.nanmean(meta["lat"])), float(np.nanmean(meta["lon"]))
    return None


@torch.no_grad()
def feature_rows(models: dict[str, TwoBranchNet], validation: Validation, options: AnalysisOptions,
                 device: torch.device) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Appendix 6.4: the backbone's last feature map of a few queries and their tiles, per view and state."""
    pairs = validation.pairs
    queries = validation.queries[: options.images]
    views = readers(validation.spec)
    rows = []
    for view, images, indices in (("ground", pairs.ground, queries), ("satellite", pairs.aerial,
                                                                       pairs.positives[queries])):
        reader: Reader = views["ground" if view == "ground" else "aerial"]
        batch = torch.stack([reader(images, int(i)) for i in indices])
        for state, model in models.items():
            branch = model.branch("ground" if view == "ground" else "aerial")
            features = branch.backbone(normalize(batch.float().div(255).to(device))).float().cpu().numpy()
            rows.append((f"{view} · {STATE_TITLES[state]}", batch.permute(0, 2, 3, 1).numpy(), features))
    return rows


def read_metrics(run_dir: Path) -> pd.DataFrame:
    """A run's ``metrics.csv`` (one row per epoch)."""
    return RunFolder(run_dir).read_metrics()
