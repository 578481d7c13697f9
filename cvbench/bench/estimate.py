"""Time-to-result: how long the missing runs of a grid will take, here or on N GPUs (``cvbench bench FILE --estimate``).

Each missing stage and (row, seed) is turned into its planned work, counted
from its resolved spec and its data by :func:`cvbench.runs.expected_time.plan_run`
(the count a run's first line multiplies too): images through pre-training
(steps x batch, per branch), pairs through fine-tuning (epochs x steps x
batch), images embedded by its evaluations and pre-training probes (and by
a mining sampler's epochs). Each kind of work gets a rate in seconds per
unit from the first of these sources that has one:

- ``runs``: finished runs in the results folder whose stage ran the same
  network at the same sizes, batch and device (their recorded seconds over
  their own planned work);
- ``measured``: a few timed steps of that network on this machine, through
  the run's own step functions and data (a few seconds, once per configuration;
  :func:`cvbench.runs.expected_time.measure_step`, which times a run's first line);
- ``gpu``: with ``--gpus N``, the throughputs that ``benchmarks/perf/throughput.py``
  measured on a GPU (``benchmarks/perf/results/throughput_*.json``), scaled by the
  pixels per image and divided among N data-parallel GPUs at an assumed efficiency.

It is an estimate: the ranking (negligible next to embedding at these gallery
sizes), a synthetic world's generation (done now, while counting the data) and
a shared machine's noise are not in it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CvbenchError
from ..nn.device import describe, prepare_module, select_device, use_channels_last
from ..runs.assemble import build_model
from ..runs.expected_time import Plan, measure_step, plan_run
from ..runs.folder import RunFolder
from ..runs.subsets import Data, load_data, open_dataset
from ..spec import RunSpec
from ..spec.run_spec import from_record
from .scheduler import Job, plan

STAGES = ("pretrain", "finetune", "mining", "eval", "overhead")
DATA_PARALLEL_EFFICIENCY = 0.9  # assumed share of N GPUs' throughput a DDP run keeps; not measured here
EVAL_SPEEDUP = 3.0  # forward only against forward + backward: the usual 1:2 cost of a backward pass
GPU_RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "results"
# throughput_*.json written before it recorded its sizes: the sizes benchmarks/perf/gpu_check.sh measured at
MEASURED_SIZES = {"vgg16": ((224, 448), (224, 224)), "resnet18": ((32, 128), (64, 64))}


# ---------------------------------------------------------------- data


class DataCache:
    """Each dataset's subsets loaded once (their sizes do not depend on the seed), with the seconds it took."""

    def __init__(self) -> None:
        self.loaded: dict[str, tuple[Data, float]] = {}

    def get(self, spec: RunSpec) -> tuple[Data, float]:
        keys = ("dataset", "data_root", "data_options", "split", "bad_images", "max_train_pairs", "train_fraction",
                "max_val_queries", "eval_dataset", "eval_split", "eval_data_root", "eval_data_options", "batch_size")
        key = json.dumps({k: getattr(spec, k) for k in keys}, sort_keys=True, default=str)
        if key not in self.loaded:
            load_data(spec, *open_dataset(spec))  # a synthetic world is generated once, here: no run pays it again
            started = time.perf_counter()
            data = load_data(spec, *open_dataset(spec))
            self.loaded[key] = (data, time.perf_counter() - started)
        return self.loaded[key]


# ---------------------------------------------------------------- rates


def _configuration(spec: RunSpec, *names: str) -> tuple:
    return tuple(json.dumps(getattr(spec, name), sort_keys=True, default=str) for name in names)


NETWORK = ("backbone", "backbone_stage", "backbone_options", "channels_last", "compile", "workers", "gpu_decode",
           "gpu_augment")  # what a step computes, and the machine options that change how fast
KEYS: dict[str, Callable[[RunSpec, str], tuple]] = {
    "pretrain": lambda spec, branch: (branch, *_configuration(spec, *NETWORK, f"{branch}_size", "pretrainer",
                                                              "pretrain_options", "pretrain_batch_size")),
    "finetune": lambda spec, _: _configuration(spec, *NETWORK, "ground_size", "aerial_size", "polar", "fov", "head",
                                               "head_options", "dim", "shared_backbone", "freeze_backbone", "loss",
                                               "loss_options", "sampler", "sampler_options", "finetune_aug",
                                               "batch_size"),
    "eval": lambda spec, _: _configuration(spec, *NETWORK, "ground_size", "aerial_size", "polar", "fov", "head",
                                           "head_options", "dim", "shared_backbone", "eval_batch_size"),
}

RECORDED_AS = {"pretrain": "pretrain", "finetune": "finetune", "mining": "finetune", "eval": "eval"}  # the key's kind
MEASURED_AS = {"pretrain": "pretrain", "finetune": "finetune", "mining": "eval", "eval": "eval"}  # mining embeds


@dataclass
class Rate:
    """Seconds per unit of one kind of work, where the number comes from, and the seconds a run's first step
    of it takes beyond the others (a fresh network's warm-up, paid once a stage)."""

    seconds: float
    source: str
    first: float = 0.0


@dataclass
class Estimate:
    """One stage or (row, seed) of the grid: its planned work and the seconds each part of it should take."""

    row: str
    seed: int
    work: Plan
    seconds: dict[str, float]
    sources: dict[str, str]

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


class RecordedRates:
    """Rates from the finished runs in a results folder: each stage's recorded seconds over its planned work."""

    def __init__(self, runs_dir: Path, data: DataCache, device: str) -> None:
        self.pooled: dict[tuple[str, tuple], list[float]] = {}  # (kind, key) -> [seconds, units, runs]
        for folder in RunFolder.all_under(runs_dir):
            record = folder.record()
            if record.get("status") != "finished" or record.get("device") != device:
                continue
            try:
                self._add(from_record(record["spec"]), record, data)
            except (CvbenchError, OSError, KeyError, TypeError, ValueError):
                continue  # a run this cvbench cannot read again tells nothing about its rates

    def _add(self, spec: RunSpec, record: dict[str, Any], data: DataCache) -> None:
        timings = record.get("timings") or {}
        for branch, stage in (record.get("pretraining") or {}).items():
            self._pool("pretrain", KEYS["pretrain"](spec, branch), stage["train_seconds"],
                       stage["steps"] * spec.pretrain_batch_size)
        if record.get("stage", "run") != "run":
            return
        work = plan_run(spec, data.get(spec)[0])
        evaluated, eval_seconds = work.evaluations * work.eval_images, timings.get("eval_s", 0.0)
        self._pool("finetune", KEYS["finetune"](spec, ""), timings.get("finetune_s", 0.0), work.finetune_pairs)
        self._pool("mining", KEYS["finetune"](spec, ""), timings.get("mining_s", 0.0), work.mining_images)
        self._pool("eval", KEYS["eval"](spec, ""), eval_seconds, evaluated)
        staged = sum(timings.get(name, 0.0) for name in ("pretrain_s", "finetune_s", "mining_s", "eval_s"))
        trained = sum(stage["train_seconds"] for stage in (record.get("pretraining") or {}).values())
        # the pre-training probes are in pretrain_s; an estimate counts them as embedded images (at the "eval"
        # rate), so the fixed cost leaves them out, at this run's own embedding rate
        probes = work.other_images * eval_seconds / evaluated if evaluated else 0.0
        self._pool("overhead", KEYS["finetune"](spec, ""), timings.get("total_s", staged) - staged
                   + timings.get("pretrain_s", 0.0) - trained - probes, 1)

    def _pool(self, kind: str, key: tuple, seconds: float, units: int) -> None:
        if units > 0:
            entry = self.pooled.setdefault((kind, key), [0.0, 0, 0])
            entry[0] += seconds
            entry[1] += units
            entry[2] += 1

    def rate(self, kind: str, key: tuple) -> Rate | None:
        entry = self.pooled.get((kind, key))
        if entry is None:
            return None
        return Rate(entry[0] / entry[1], f"runs ({entry[2]})")


def _random_start(spec: RunSpec) -> RunSpec:
    """The same network with random weights: a step costs what it costs whatever the weights."""
    return dataclasses.replace(spec, base_init="random", ground_init="auto", aerial_init="auto",
                               pretrain_from="random", pretrained_weights=None)


class MeasuredRates:
    """Rates measured on this machine: a few timed steps of a row's network at its sizes, once per configuration."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cache: dict[tuple[str, tuple], Rate] = {}

    def rate(self, kind: str, key: tuple, spec: RunSpec, data: Data, branch: str = "") -> Rate:
        if (kind, key) not in self.cache:
            model = prepare_module(build_model(_random_start(spec)), self.device,
                                   use_channels_last(self.device, spec.channels_last))
            step = measure_step("embed" if kind == "eval" else kind, spec, model, data, self.device, branch)
            self.cache[(kind, key)] = Rate(step.per_item, "measured", step.first)
        return self.cache[(kind, key)]

    def build_seconds(self, spec: RunSpec) -> float:
        """Seconds to build the run's network, which every run does before its first stage."""
        key = ("build", KEYS["eval"](spec, ""))
        if key not in self.cache:
            started = time.perf_counter()
            build_model(_random_start(spec))
            self.cache[key] = Rate(time.perf_counter() - started, "measured")
        return self.cache[key].seconds


@dataclass
class GpuRates:
    """Rates from ``throughput.py``'s GPU measurements, per pixel of the images, divided among ``gpus``."""

    gpus: int
    folder: Path = GPU_RESULTS
    measured: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path in sorted(self.folder.glob("throughput_*.json")):
            result = json.loads(path.read_text())
            sizes = MEASURED_SIZES.get(result.get("backbone"))
            ground, aerial = (tuple(result[k]) for k in ("ground_size", "aerial_size")) if "ground_size" in result \
                else sizes or (None, None)
            if ground is not None and "cuda" in str(result.get("device")):
                self.measured.append({**result, "file": path.name, "ground": ground, "aerial": aerial})
        if not self.measured:
            raise CvbenchError(f"--gpus: no GPU throughput measurements in {self.folder}; expected the "
                               "throughput_*.json that benchmarks/perf/gpu_check.sh writes")

    @property
    def speedup(self) -> float:
        return self.gpus * (DATA_PARALLEL_EFFICIENCY if self.gpus > 1 else 1.0)

    def rate(self, kind: str, spec: RunSpec, branch: str = "") -> Rate | None:
        """Seconds per unit of ``kind`` for ``spec`` on ``gpus`` GPUs, or None when its backbone was not measured."""
        same = [m for m in self.measured if m["backbone"] == spec.backbone]
        if not same:
            return None
        candidates = [m for m in same if m["compile"] == spec.compile] or same
        measurement = "finetune" if kind != "pretrain" else _pretraining_measured(candidates[0]["results"], spec)
        chosen = max(candidates, key=lambda m: m["results"][measurement]["harness_images_per_s"])
        result = chosen["results"][measurement]
        per_item = result["harness_s_per_step"] / result.get("batch", chosen["batch"])  # newer files: per case
        pixels = {"ground": math.prod(spec.ground_size), "aerial": math.prod(spec.aerial_size)}
        if kind == "pretrain":  # MoCov2 was measured on tiles; another branch scales by its pixels
            seconds = per_item * pixels[branch] / math.prod(chosen["aerial"])
        else:
            measured_pixels = math.prod(chosen["ground"]) + math.prod(chosen["aerial"])
            seconds = per_item * (pixels["ground"] + pixels["aerial"]) / measured_pixels
            if kind in ("eval", "mining"):
                seconds /= 2 * EVAL_SPEEDUP  # per image, not per pair, and forward only
        return Rate(seconds / self.speedup, f"gpu ({chosen['file']})")


# ---------------------------------------------------------------- the grid


@dataclass
class GridEstimate:
    """The estimate of every missing stage and run of a grid, with what it could not estimate."""

    jobs: list[Estimate]
    invalid: list[tuple[str, int, str]]
    done: int
    gpus: int | None
    device: str
    load: tuple[float, int] = (0.0, 1)  # the machine's 1-minute load average when measuring, and its cores

    def stage_jobs(self) -> list[Estimate]:
        return [job for job in self.jobs if job.row.startswith("@")]

    def sequential(self) -> float:
        """Seconds for the local launcher: one run after another."""
        return sum(job.total for job in self.jobs)

    def longest_job(self) -> float:
        """Seconds for the submitit launcher when every job starts at once: the stages, then the longest row."""
        rows = [job.total for job in self.jobs if not job.row.startswith("@")]
        return sum(job.total for job in self.stage_jobs()) + max(rows, default=0.0)

    def device_hours(self) -> float:
        """GPU-hours (or, on this machine, hours of it) that the jobs hold in all."""
        return self.sequential() * (self.gpus or 1) / 3600


def estimate_grid(bench: Any, runs_dir: Path, only: Any = None, gpus: int | None = None) -> GridEstimate:
    """Plan the grid, then estimate each missing stage and (row, seed) from recorded, measured or GPU rates."""
    if gpus is not None and gpus < 1:
        raise CvbenchError(f"--gpus {gpus}: expected a positive number of GPUs")
    stages, rows = plan(bench, runs_dir, only)
    device = select_device("cpu" if gpus else "auto")
    data = DataCache()
    recorded = RecordedRates(runs_dir, data, describe(device)) if gpus is None else None
    measured = MeasuredRates(device)
    gpu = GpuRates(gpus) if gpus is not None else None
    jobs, invalid, done = [], [], 0
    for job, finetunes in [*((s, False) for s in stages.values()), *((r, True) for r in rows)]:
        if job.error is not None:
            invalid.append((job.row, job.seed, job.error))
        elif job.done is not None:
            done += 1
        else:
            jobs.append(_estimate(job, finetunes, data, recorded, measured, gpu))
    return GridEstimate(jobs, invalid, done, gpus, describe(device) if gpus is None else f"{gpus} GPU(s)",
                        (os.getloadavg()[0], os.cpu_count() or 1))


def _estimate(job: Job, finetunes: bool, data: DataCache, recorded: RecordedRates | None, measured: MeasuredRates,
              gpu: GpuRates | None) -> Estimate:
    spec = job.spec
    loaded, load_seconds = data.get(spec)
    work = plan_run(spec, loaded, finetunes)
    seconds: dict[str, float] = {}
    sources: dict[str, str] = {}

    def apply(kind: str, units: int, branch: str = "") -> None:
        if units == 0:
            return
        rate = recorded.rate(kind, KEYS[RECORDED_AS[kind]](spec, branch)) if recorded is not None else None
        if gpu is not None:
            rate = gpu.rate(kind, spec, branch)
            if rate is None:
                raise CvbenchError(f"--gpus: no GPU measurement of backbone {spec.backbone} (row {job.row}) in "
                                   f"{gpu.folder}; measure it with benchmarks/perf/throughput.py --device cuda "
                                   f"--backbone {spec.backbone}, or estimate without --gpus")
        if rate is None:
            rate = measured.rate(MEASURED_AS[kind], KEYS[MEASURED_AS[kind]](spec, branch), spec, loaded, branch)
        seconds[kind] = seconds.get(kind, 0.0) + units * rate.seconds + rate.first
        sources[kind] = rate.source

    for branch, images in work.pretrain_images.items():
        apply("pretrain", images, branch)
    apply("finetune", work.finetune_pairs)
    apply("mining", work.mining_images)
    apply("eval", work.embedded_images)  # the evaluations' and the pre-training probes'
    overhead = recorded.rate("overhead", KEYS["finetune"](spec, "")) if recorded is not None and finetunes else None
    seconds["overhead"] = overhead.seconds if overhead is not None else load_seconds + measured.build_seconds(spec)
    sources["overhead"] = overhead.source if overhead is not None else "measured"
    return Estimate(job.row, job.seed, work, seconds, sources)


def _pretraining_measured(results: dict, spec: RunSpec) -> str:
    """The throughput file's pre-training measurement for ``spec``: its own pretrainer's where the file has it,
    else the one pretrainer the file measured, a stand-in (their steps cost alike: two views through the
    backbone and a momentum encoder)."""
    return spec.pretrainer if spec.pretrainer in results else next(key for key in results if key != "finetune")

