"""The pipeline: optional pre-training of each branch -> fine-tuning -> evaluation -> record.

Everything that can fail without compute is checked first: option values,
plugin names, the head's fit to the backbone, the split. Then the run folder
is created and every stage writes into it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from rich.progress import Progress

from .checkpoint import check_fit, load_weights, read_metadata
from .contract.conform import static_image_sizes
from .backbone import create_backbone
from .data import ConcatImages, CrossViewDataset, CrossViewPairs, ImageList, load_subset
from . import distributed
from .device import describe, prepare_module, seed_everything, select_device, use_channels_last
from .errors import CvbenchError, SpecError, error_message
from .evaluate import Evaluation, evaluate
from .finetune import STAGE as FINETUNE_STAGE
from .finetune import Objective, finetune
from .imagecheck import drop_unreadable, image_paths
from .loaders import readers
from .model import Branch, TwoBranchNet
from .pretrain import pretrain_backbone
from .progress import log, make_progress
from .records import CHECKPOINTS, RESULT, SPEC, RunRecorder, new_run_dir
from .registry import create, get_registry
from .trainstate import STATE, Checkpointer, RunInterrupted, load_state
from .spec import (AUTO_SIZE, BRANCHES, NO_AUGMENTATION, NO_PRETRAINER, RunSpec, branch_init, parse_size, pretrains,
                   resolve, start_checkpoint, validate)

MODEL_CHECKPOINT = "model.safetensors"
INITIAL_CHECKPOINT = "initial.safetensors"  # the model as fine-tuning found it: `cvbench analyze`'s "before"


def resolve_spec(spec: RunSpec) -> RunSpec:
    """Apply the preset, validate every option and check every plugin name, before any work."""
    resolved = resolve(spec, create("preset", spec.preset))
    registry = get_registry()
    registry.get("dataset", resolved.dataset)
    if AUTO_SIZE in (resolved.ground_size, resolved.aerial_size):
        resolved = _dataset_sizes(resolved)
    validate(resolved)
    registry.get("head", resolved.head)
    for name, _ in resolved.loss:
        registry.get("loss", name)
    if resolved.pretrainer != NO_PRETRAINER:
        registry.get("pretrainer", resolved.pretrainer)
    if resolved.finetune_aug != NO_AUGMENTATION:
        registry.get("augmentation", resolved.finetune_aug)
    return resolved


def _dataset_sizes(spec: RunSpec) -> RunSpec:
    """Replace ``auto`` image sizes by the dataset's own (``image_sizes()``, thesis section 4.2).

    A static ``image_sizes`` is read without opening the dataset, so a spec
    resolves (``cvbench bench --dry-run``) on a machine without the data.
    """
    sizes_of = static_image_sizes(get_registry().get("dataset", spec.dataset).factory)
    sizes = sizes_of() if sizes_of is not None else open_dataset(spec)[0].image_sizes()
    if not sizes:
        raise SpecError(f"dataset {spec.dataset!r} suggests no image sizes, so --ground-size/--aerial-size "
                        "auto cannot be settled: give both as HxW")
    values = spec.to_dict()
    for branch in BRANCHES:
        if values[f"{branch}_size"] == AUTO_SIZE:
            values[f"{branch}_size"] = parse_size(sizes[branch])
    return RunSpec.from_dict(values)


def build_model(spec: RunSpec, checkpoints: dict[str, Path] | None = None) -> TwoBranchNet:
    """The two-branch network with each branch initialised as Table 3.1 asks.

    A branch to be pre-trained starts from ``pretrain_from``, the others from
    their init; a start that names a checkpoint (file, or folder with one per
    branch) is loaded strictly; ``random`` / ``imagenet`` as named.
    """
    branches = {}
    for branch in BRANCHES:
        init = branch_init(spec, branch)
        start = spec.pretrain_from if init == "pretrained" else init
        backbone = create_backbone(spec.backbone, "imagenet" if start == "imagenet" else "random",
                                   spec.imagenet_weights, spec.backbone_stage)
        checkpoint = start_checkpoint(start, branch, "pretrain_from" if init == "pretrained" else f"{branch}_init")
        if checkpoint is not None:
            load_weights(backbone, checkpoint, what=f"{spec.backbone} backbone of the {branch} branch")
        size = spec.ground_size if branch == "ground" else spec.aerial_size
        feature_hw = backbone.feature_hw(tuple(size))
        head = create("head", spec.head, backbone.out_channels, feature_hw, spec.dim, **spec.head_options)
        branches[branch] = Branch(backbone, head)
    return TwoBranchNet(branches["ground"], branches["aerial"])


@dataclass
class Data:
    """The resolved split's two subsets and which items of them a run uses."""

    split: str
    train: CrossViewPairs
    val: CrossViewPairs
    train_indices: np.ndarray
    val_queries: np.ndarray


def open_dataset(spec: RunSpec) -> tuple[CrossViewDataset, str]:
    """Build the dataset plugin and settle the split (its first one by default)."""
    root = Path(spec.data_root).expanduser() if spec.data_root else None
    dataset = create("dataset", spec.dataset, root, **spec.data_options)
    splits = list(dataset.splits())
    split = spec.split or splits[0]
    if split not in splits:
        raise SpecError(f"--split {split!r} is not a split of dataset {spec.dataset!r}; it offers: {', '.join(splits)}")
    return dataset, split


def load_data(spec: RunSpec, dataset: CrossViewDataset, split: str, progress: Progress | None = None) -> Data:
    """Load train and val of the split, subsampled by ``max_train_pairs`` / ``max_val_queries`` / ``train_fraction``.

    The subsets depend on the seed alone, so the rows of one seed in a grid
    share their training pairs and validation queries (the paired design of
    ``docs/statistics.md``). With ``bad_images`` "skip", every image is
    decoded first and the pairs with unreadable ones are left out and reported.
    """
    train = load_subset(dataset, split, "train")
    val = load_subset(dataset, split, "val")
    if spec.bad_images == "skip":
        checked: dict = {}
        train = drop_unreadable(train, f"{spec.dataset} {split} train", checked, progress)
        val = drop_unreadable(val, f"{spec.dataset} {split} val", checked, progress)
    rng = np.random.default_rng(spec.seed)
    train_indices = _limit(train.num_queries, spec.max_train_pairs, rng)
    val_queries = _limit(val.num_queries, spec.max_val_queries, rng)
    return Data(split, train, val, labelled_share(train_indices, spec), val_queries)


FRACTION_STREAM = 7_411  # the share's own random stream: the other subsets stay those of the full run


def labelled_share(indices: np.ndarray, spec: RunSpec) -> np.ndarray:
    """The ``train_fraction`` share of the training pairs: the first ``ceil(f n)`` of a seeded permutation.

    The shares of one seed are nested (the 5% pairs are among the 10% ones),
    as a label-efficiency curve needs; fewer pairs than one batch is an error.
    """
    if spec.train_fraction is None or spec.train_fraction >= 1:  # an unresolved spec: the fallback, all pairs
        return indices
    count = math.ceil(spec.train_fraction * len(indices))
    if count < spec.batch_size:
        raise SpecError(f"--train-fraction {spec.train_fraction:g} leaves {count} of {len(indices)} training pairs, "
                        f"fewer than one batch (--batch-size {spec.batch_size}); raise the fraction or lower the "
                        "batch size")
    order = np.random.default_rng([spec.seed, FRACTION_STREAM]).permutation(indices)
    return np.sort(order[:count])


def _limit(count: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or limit >= count:
        return np.arange(count)
    return np.sort(rng.choice(count, limit, replace=False))


def pretraining_set(spec: RunSpec, data: Data, branch: str) -> tuple[ImageList, pd.DataFrame, np.ndarray]:
    """The images Table 3.1's column asks for (the branch's view of train, val or both), their metadata, and
    which of them pre-training uses: at most ``max_pretrain_images`` of each subset, drawn by the seed.

    ``all`` therefore sees the images of both subsets, strictly more than
    ``train`` or ``val`` alone (unless one gallery serves both, as in VIGOR's
    same-area split, where each image counts once).
    """
    view = "ground" if branch == "ground" else "aerial"
    chosen = {"train": [data.train], "val": [data.val], "all": [data.train, data.val]}[spec.pretrain_data]
    lists = [getattr(pairs, view) for pairs in chosen]
    metas = [getattr(pairs, f"{view}_meta") for pairs in chosen]
    if len(lists) == 2 and _same_images(*lists):
        lists, metas = lists[:1], metas[:1]  # one gallery serves both subsets (VIGOR same-area): each tile once
    meta = pd.concat(metas, ignore_index=True) if all(len(m.columns) for m in metas) else pd.DataFrame()
    rng = np.random.default_rng(spec.seed)
    offsets = np.cumsum([0] + [len(images) for images in lists[:-1]])
    indices = np.concatenate([offset + _limit(len(images), spec.max_pretrain_images, rng)
                              for images, offset in zip(lists, offsets)])
    return (lists[0] if len(lists) == 1 else ConcatImages(*lists)), meta, indices


def _same_images(first: ImageList, second: ImageList) -> bool:
    if first is second:
        return True
    paths = image_paths(first), image_paths(second)
    return paths[0] is not None and paths[0] == paths[1]


def run(spec: RunSpec, runs_dir: str | Path = "runs", quiet: bool = False, stage: str = "run",
        finetune_stage: bool = True) -> Path:
    """Run the pipeline for ``spec``; returns the run folder (its ``result.json`` holds the numbers).

    Started by ``torchrun`` with several processes, the ranks share the work
    (:mod:`cvbench.distributed`) and rank 0 alone writes the run folder.
    """
    spec = resolve_spec(spec)
    if not finetune_stage and spec.pretrainer == NO_PRETRAINER:
        raise SpecError("`cvbench pretrain` needs --pretrainer")
    with distributed.setup(select_device(spec.device)) as device:
        return _run(spec, device, runs_dir, quiet or not distributed.is_main(), stage, finetune_stage)


def resume_run(run_dir: str | Path, quiet: bool = False, device_name: str | None = None,
               workers: int | None = None) -> Path:
    """Continue an interrupted run in its own folder from ``checkpoints/state.pt``.

    The spec comes from the run folder; only the device and the number of
    loader workers may change (the numbers then may differ from an
    uninterrupted run's). A finished run is refused.
    """
    run_dir = Path(run_dir)
    try:
        record = json.loads((run_dir / RESULT).read_text(encoding="utf-8"))
        spec = RunSpec.from_dict(json.loads((run_dir / SPEC).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise CvbenchError(f"{run_dir} is not a cvbench run folder that can be resumed ({exc})") from None
    if record.get("status") == "finished":
        raise CvbenchError(f"{run_dir} already finished; there is nothing to resume")
    state = load_state(run_dir / CHECKPOINTS / STATE)
    for leftover in run_dir.rglob(".*.tmp"):  # an atomic write that SIGKILL cut short
        leftover.unlink(missing_ok=True)
    if device_name is not None:
        spec.device = device_name
    if workers is not None:
        spec.workers = workers
    stage = record.get("stage", "run")
    with distributed.setup(select_device(spec.device)) as device:
        return _run(spec, device, run_dir.parent, quiet or not distributed.is_main(), stage, stage != "pretrain",
                    resume=(run_dir, record, state))


def _run(spec: RunSpec, device: torch.device, runs_dir: str | Path, quiet: bool, stage: str,
         finetune_stage: bool, resume: tuple[Path, dict[str, Any], dict[str, Any]] | None = None) -> Path:
    generator = seed_everything(spec.seed)
    model = build_model(spec)
    if distributed.active():  # same weights everywhere, different augmentation draws per rank
        seed_everything(spec.seed + 1000 * distributed.rank())
    dataset, split = open_dataset(spec)
    where = f", {distributed.world_size()} processes" if distributed.active() else ""
    verb = f"resuming {resume[0].name} at {_position(resume[2])}" if resume else f"cvbench {stage}"
    log(f"[bold]{verb}[/]: dataset {spec.dataset} ({split}), backbone {spec.backbone}, head {spec.head}, "
        f"pretrainer {spec.pretrainer}, device {describe(device)}{where}", quiet)
    with make_progress(quiet) as progress:
        data = load_data(spec, dataset, split, progress)
    if spec.polar and data.val.semi_positives is not None:
        log(f"[yellow]warning:[/] --polar assumes queries at the tile centre, but {spec.dataset}/{split} places "
            "them anywhere on the tile (it has semi-positives); the transform will misalign the views", quiet)
    if resume is None:
        run_dir = distributed.broadcast_object(new_run_dir(runs_dir, spec, stage) if distributed.is_main() else None)
        recorder = RunRecorder(run_dir, spec, stage, write=distributed.is_main())
        state = None
    else:
        run_dir, record, state = resume
        recorder = RunRecorder(run_dir, spec, stage, write=distributed.is_main(), resumed=(record, state["rows"]))
    checkpointer = Checkpointer(recorder.checkpoint(STATE), state, write=distributed.is_main())
    fields: dict[str, Any] = state["fields"] if state else {"split": split, "pretraining": {}}
    fields["device"] = describe(device)
    if distributed.active():
        fields["processes"] = distributed.world_size()
    started = time.perf_counter() - (state.get("elapsed", 0.0) if state else 0.0)
    extra: dict[str, Any] = {}

    def run_state() -> dict[str, Any]:
        """The run's part of a saved training state (the loops add their own)."""
        return {"spec": spec.to_dict(), "model": model.state_dict(), "fields": fields, "rows": recorder.rows,
                "elapsed": time.perf_counter() - started, **extra}

    try:
        with make_progress(quiet) as progress, checkpointer.stop.installed():
            parts = [part for b in BRANCHES for part in (model.branch(b).backbone, model.branch(b).head)]
            prepare_module(model, device, use_channels_last(device, spec.channels_last), parts if spec.compile else ())
            if state is not None:
                check_fit(model, state["model"], f"the saved training state of {run_dir.name}", "two-branch model",
                          {"spec": state.get("spec")})
                model.load_state_dict(state["model"])
            for branch in BRANCHES:
                if pretrains(spec, branch) and not checkpointer.stage_done(f"pretrain:{branch}"):
                    images, meta, indices = pretraining_set(spec, data, branch)
                    fields["pretraining"][branch] = pretrain_backbone(
                        spec, branch, model.branch(branch).backbone, images, readers(spec)[branch], device, generator,
                        progress, recorder.checkpoint(f"pretrained_{branch}.safetensors"), indices, meta,
                        checkpointer, run_state, probe_images=getattr(data.val, "ground" if branch == "ground"
                                                                      else "aerial"))
            fields.setdefault("timings", {"pretrain_s": time.perf_counter() - started})
            if finetune_stage:
                fields.update(_finetune_and_evaluate(spec, model, data, device, generator, progress, recorder, quiet,
                                                     checkpointer, run_state, extra))
                fields["timings"].update(fields.pop("stage_timings"))
        fields["timings"]["total_s"] = time.perf_counter() - started
        record = recorder.write_result("finished", **fields)
        recorder.discard(STATE)  # a finished run is never resumed
    except KeyboardInterrupt as exc:
        command = f"cvbench {stage} --resume {run_dir}"
        recorder.write_result("interrupted", resume=command, **fields)
        if isinstance(exc, RunInterrupted):
            raise RunInterrupted(f"{exc}; continue with: {command}") from None
        raise
    except Exception as exc:
        recorder.write_result("failed", error=f"{type(exc).__name__}: {error_message(exc)}", **fields)
        raise
    if finetune_stage:
        log(_summary(record), quiet)
    log(f"run folder: {run_dir}", quiet)
    return run_dir


def _position(state: dict[str, Any]) -> str:
    where = f"{state['stage']} epoch {state['epoch'] + 1}"
    return where + (f" batch {state['batch'] + 1}" if state["batch"] else "")


def _finetune_and_evaluate(spec: RunSpec, model: TwoBranchNet, data: Data, device: torch.device,
                           generator: torch.Generator, progress, recorder: RunRecorder, quiet: bool,
                           checkpointer: Checkpointer, run_state: Callable[[], dict[str, Any]],
                           extra: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune with an evaluation before and every ``eval_every`` epochs; the record's metrics.

    ``extra`` carries what a resumed run needs of the evaluations (their
    numbers and time); it is part of every saved training state.
    """
    objective = Objective.from_spec(spec)
    augment = None
    if spec.finetune_aug != NO_AUGMENTATION:
        augment = create("augmentation", spec.finetune_aug, tuple(spec.ground_size), tuple(spec.aerial_size),
                         **spec.finetune_aug_options)
    resuming = checkpointer.resumes(FINETUNE_STAGE)
    saved = checkpointer.resumed if resuming else {}
    evaluations: dict[int, dict[str, Any]] = {int(k): v for k, v in saved.get("evaluations", {}).items()}
    extra.update(evaluations=evaluations, eval_seconds=saved.get("eval_seconds", 0.0))

    def measure(epoch: int) -> Evaluation | None:
        started = time.perf_counter()
        result = evaluate(model, data.val, readers(spec), device, spec.eval_batch_size,
                          data.val_queries, progress, spec.seed, spec.workers)
        extra["eval_seconds"] += time.perf_counter() - started
        if result is not None:
            evaluations[epoch] = {"metrics": result.metrics, "uniformity": result.uniformity,
                                  "num_queries": result.num_queries, "num_references": result.num_references}
        return result

    def row(epoch: int, stats: dict[str, float], result: Evaluation | None) -> dict[str, Any]:
        values: dict[str, Any] = {"epoch": epoch, **stats}
        if result is not None:
            values.update(result.metrics)
            values.update({f"uniformity_{k}": v for k, v in result.uniformity.items()})
        return values

    if not resuming:
        recorder.save_weights(INITIAL_CHECKPOINT, model, metadata={"spec": spec.to_dict()})
        recorder.log_epoch(row(0, {}, measure(0)))

    def on_epoch_end(epoch: int, stats: dict[str, float]) -> None:
        result = measure(epoch) if epoch % spec.eval_every == 0 or epoch == spec.epochs else None
        recorder.log_epoch(row(epoch, stats, result))
        if result is not None and not quiet:
            progress.console.log(f"epoch {epoch}: loss {stats['loss']:.4f}  R@1 {result.metrics['R@1']:.2f}  "
                                 f"R@5 {result.metrics['R@5']:.2f}  R@1% {result.metrics['R@1%']:.2f}")

    train_seconds = finetune(model, objective, data.train, data.train_indices, spec, device, generator, progress,
                             augment, on_epoch_end, checkpointer, run_state)
    recorder.save_weights(MODEL_CHECKPOINT, model, metadata={"spec": spec.to_dict()})
    timings = {"stage_timings": {"finetune_s": train_seconds, "eval_s": extra["eval_seconds"]}}
    if not distributed.is_main():
        return timings
    final = evaluations[max(evaluations)]
    return {
        "metrics": final["metrics"],
        "num_queries": final["num_queries"],
        "num_references": final["num_references"],
        "uniformity": {"before": evaluations[0]["uniformity"], "after": final["uniformity"]},
        **timings,
    }


def _summary(record: dict[str, Any]) -> str:
    metrics = record.get("metrics", {})
    text = "  ".join(f"{k} {v:.2f}" for k, v in metrics.items())
    return f"[bold green]done[/] in {record['timings']['total_s']:.0f} s: {text}"


def evaluate_run(run_dir: str | Path, split: str | None = None, quiet: bool = False,
                 device_name: str | None = None, predictions: int = 0, index: str = "exact",
                 index_options: dict | None = None) -> dict[str, Any]:
    """Re-evaluate a finished run's model on the val subset of its split (or ``split``).

    With ``predictions=k``, also writes ``predictions_<split>.csv``: each query's
    true tile and its k best references with their cosine scores (faiss top-k).
    ``index="hnsw"`` or ``"ivf"`` (options in ``index_options``) replaces the exact
    metrics by :func:`cvbench.retrieval.approximate_recall` and adds its "index"
    report; the exact ranking is then skipped (see docs/metrics.md).
    """
    from .retrieval import IndexSpec, approximate_recall

    try:  # bad options fail before the embedding
        approximate = IndexSpec(index, index_options or {})
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    run_dir = Path(run_dir)
    spec, model = load_run_model(run_dir)
    if device_name:
        spec.device = device_name
    if split:
        spec.split = split
    device = select_device(spec.device)
    seed_everything(spec.seed)
    dataset, split = open_dataset(spec)
    with make_progress(quiet) as progress:
        data = load_data(spec, dataset, split, progress)
        model.to(device)
        result = evaluate(model, data.val, readers(spec), device, spec.eval_batch_size,
                          data.val_queries, progress, spec.seed, spec.workers,
                          exact_recall=approximate.kind == "exact")
    summary = {"run": run_dir.name, "split": split, "metrics": result.metrics, "uniformity": result.uniformity,
               "num_queries": result.num_queries, "num_references": result.num_references}
    if approximate.kind != "exact":
        summary.update(approximate_recall(result.ground, result.aerial, data.val.positives[data.val_queries],
                                          index=approximate, seed=spec.seed))
    if predictions:
        summary["predictions"] = str(write_predictions(run_dir / f"predictions_{split}.csv", result, data, predictions))
    return summary


def read_run_spec(run_dir: str | Path, checkpoint: str = MODEL_CHECKPOINT) -> RunSpec:
    """The spec stored in a run's ``checkpoints/<checkpoint>``, naming the folder if it is not a run."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINTS / checkpoint
    if not (run_dir / SPEC).is_file() or not path.is_file():
        raise CvbenchError(f"{run_dir} is not a finished cvbench run (expected {SPEC} and {CHECKPOINTS}/{checkpoint})")
    return RunSpec.from_dict(read_metadata(path)["spec"])


def load_run_model(run_dir: str | Path, checkpoint: str = MODEL_CHECKPOINT) -> tuple[RunSpec, TwoBranchNet]:
    """A run's spec and its two-branch model with the weights of ``checkpoints/<checkpoint>``, on the CPU."""
    spec = read_run_spec(run_dir, checkpoint)
    # the checkpoint replaces every weight: build without loading anything else
    model = build_model(dataclasses.replace(spec, ground_init="random", aerial_init="random"))
    load_weights(model, Path(run_dir) / CHECKPOINTS / checkpoint, what=f"two-branch model of {Path(run_dir).name}")
    return spec, model


def write_predictions(path: Path, result: Evaluation, data: Data, k: int) -> Path:
    """Each evaluated query's true tile and its top-k references (faiss), written atomically."""
    import pandas as pd

    from .atomic import atomic_path
    from .retrieval import topk

    scores, indices = topk(result.ground, result.aerial, min(k, len(result.aerial)))
    frame = pd.DataFrame({"query": data.val_queries, "positive": data.val.positives[data.val_queries]})
    for rank in range(indices.shape[1]):
        frame[f"top{rank + 1}"] = indices[:, rank]
        frame[f"score{rank + 1}"] = scores[:, rank]
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


__all__ = ["run", "evaluate_run", "resolve_spec", "build_model"]
