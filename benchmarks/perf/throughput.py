"""Training throughput: cvbench's fine-tuning and MoCov2 steps against a bare PyTorch loop.

Both loops run in this process on the same model, batch and tensors (seeded
random images, already in memory: data loading is measured elsewhere):

* ``finetune``: :func:`cvbench.training.finetune.finetune_step` (ImageNet
  normalisation, the objective of eq 3.10, the NaN check, the optimiser step)
  against a bare loop doing the same forward, soft-margin triplet loss,
  backward and Adam step;
* ``mocov2``: :func:`cvbench.training.pretrain.pretrain_step` around the MoCov2
  pretrainer against a bare loop calling the same module and SGD step.

On CUDA both loops run under the same bf16 autocast and memory format
(``--channels-last``), and ``--compile`` compiles the model for both.

Each row also gives the achieved TFLOP/s of the harness step and its model
FLOPs utilisation (MFU): the FLOPs of one step as
``torch.utils.flop_counter.FlopCounterMode`` counts them (forward and
backward; an uncompiled copy of the step under ``--compile``), over the
step's time, against the device's dense bf16 peak (:mod:`flops`), or on a CPU
against a square GEMM measured in the same run.

Measurements of harness and bare alternate, ``--repeats`` times (the first
of each pair swapping every repeat), after ``--warmup`` steps of each; the best time of each is reported, with images
per second and the ratio harness / bare (1.00 = the harness costs nothing).

Usage::

    python benchmarks/perf/throughput.py --preset default --batch 64 --steps 10 --repeats 3 --json out.json
    python benchmarks/perf/throughput.py --device cuda --channels-last off --json contiguous.json
    python benchmarks/perf/throughput.py --device cuda --backbone vgg16 --backbone-stage -1 --dim 4096 \
        --ground-size 112x616 --aerial-size 256x256 --batch 96 --pretrain-batch 128 --json thesis.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from flops import count_flops, reference_peak

from cvbench.contract.registry import create
from cvbench.data.loaders import normalize
from cvbench.nn.device import autocast, describe, prepare_module, select_device, use_channels_last
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.spec import RunSpec, parse_size
from cvbench.training.finetune import FinetuneForward, Objective, finetune_step
from cvbench.training.loop import LossMonitor, trainable
from cvbench.training.pretrain import pretrain_step


def timed(function: Callable[[], object], steps: int, device: torch.device) -> float:
    """Seconds for ``steps`` calls, synchronising the device at the end only."""
    start = time.perf_counter()
    for _ in range(steps):
        function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def compare(harness: Callable[[], object], bare: Callable[[], object], steps: int, warmup: int, repeats: int,
            device: torch.device) -> tuple[float, float]:
    """Best seconds per step of the harness and of the bare loop, measured alternately."""
    timed(harness, warmup, device)
    timed(bare, warmup, device)
    best = {"harness": float("inf"), "bare": float("inf")}
    for repeat in range(repeats):
        order = [("harness", harness), ("bare", bare)]
        for name, function in order if repeat % 2 == 0 else order[::-1]:  # neither always runs first
            best[name] = min(best[name], timed(function, steps, device) / steps)
    return best["harness"], best["bare"]


def count_syncs(function: Callable[[], object], steps: int, device: torch.device) -> list[str]:
    """Where (file:line) CUDA reports a host synchronisation during ``steps`` calls (``set_sync_debug_mode``)."""
    if device.type != "cuda":
        return []
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                function()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]


def images(batch: int, size: tuple[int, int], device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = torch.rand(batch, 3, *size, device=device)
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


def finetune_case(spec: RunSpec, batch: int, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    channels_last = use_channels_last(device, spec.channels_last)
    model = build_model(spec).train()
    parts = [model.ground, model.aerial] if spec.compile else []
    prepare_module(model, device, channels_last, parts)
    objective = Objective.from_spec(spec).to(device)
    objective.attach(model)
    forward = FinetuneForward(model, objective)
    params = trainable(model, objective)
    optimizer = torch.optim.Adam(params, lr=spec.lr)
    ground = images(batch, spec.ground_size, device, channels_last)
    aerial = images(batch, spec.aerial_size, device, channels_last)
    loss_fn = objective.terms[0]
    monitor = LossMonitor.for_device("fine-tuning", device)

    def harness() -> None:
        finetune_step(forward, optimizer, params, ground, aerial, device, monitor, (1, 1), spec.grad_clip,
                      channels_last)

    def bare() -> None:
        with autocast(device):
            z_ground = F.normalize(model.ground(normalize(ground)).float(), dim=-1)
            z_aerial = F.normalize(model.aerial(normalize(aerial)).float(), dim=-1)
            loss = loss_fn(z_ground, z_aerial)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return harness, bare


def mocov2_case(spec: RunSpec, batch: int, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    channels_last = use_channels_last(device, spec.channels_last)
    backbone = build_model(spec).aerial.backbone
    splits = 8 if batch % 8 == 0 and batch >= 16 else 1  # the default split BatchNorm needs 8 sub-batches of 2+
    pretrainer = create("pretrainer", "mocov2", backbone, backbone.out_channels, queue_size=4096,
                        bn_splits=splits).train()
    prepare_module(pretrainer, device, channels_last, [backbone] if spec.compile else [])
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9)
    view1 = images(batch, spec.aerial_size, device, channels_last)
    view2 = images(batch, spec.aerial_size, device, channels_last)
    monitor = LossMonitor.for_device("pre-training", device)

    def harness() -> None:
        pretrain_step(pretrainer, optimizer, params, view1, view2, [], device, spec.grad_clip, monitor, (1, 1),
                      channels_last)

    def bare() -> None:
        with autocast(device):
            loss = pretrainer(normalize(view1), normalize(view2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pretrainer.after_step()

    return harness, bare


def count_only(spec: RunSpec, args: argparse.Namespace, device: torch.device) -> None:
    """Print (and write) the FLOPs of one step per image, as FlopCounterMode counts them, for each case."""
    rows = {}
    for name, case in (("finetune", finetune_case), ("mocov2", mocov2_case)):
        batch = args.batch if name == "finetune" or args.pretrain_batch is None else args.pretrain_batch
        flops = count_flops(case(dataclasses.replace(spec, compile=False), batch, device)[0])
        rows[name] = {"batch": batch, "flops_per_step": flops, "flops_per_image": flops / (2 * batch)}
        print(f"{name:9s} batch {batch}: {flops / 1e9:,.1f} GFLOP per step, {flops / 2e9 / batch:,.2f} GFLOP per image")
    if args.json:
        args.json.write_text(json.dumps({"backbone": spec.backbone, "ground_size": list(spec.ground_size),
                                         "aerial_size": list(spec.aerial_size), "dim": spec.dim, "results": rows},
                                        indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pretrain-batch", type=int, help="MoCov2's batch (default --batch; the thesis: 128)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", help="timm backbone instead of the preset's (e.g. vgg16)")
    parser.add_argument("--backbone-stage", type=int)
    parser.add_argument("--ground-size", help="HxW instead of the preset's (e.g. 224x448)")
    parser.add_argument("--aerial-size", help="HxW instead of the preset's (e.g. 224x224)")
    parser.add_argument("--dim", type=int, help="embedding dimension instead of the preset's")
    parser.add_argument("--sync-check", action="store_true",
                        help="CUDA only: count host synchronisations inside 5 harness steps of each case")
    parser.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (both loops)")
    parser.add_argument("--count-only", action="store_true",
                        help="only count each step's FLOPs per image (no timing): MFU of a rate measured elsewhere")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    overrides = {key: value for key, value in (("backbone", args.backbone), ("backbone_stage", args.backbone_stage),
                                               ("dim", args.dim)) if value is not None}
    for key in ("ground_size", "aerial_size"):
        if getattr(args, key):
            overrides[key] = parse_size(getattr(args, key))
    spec = resolve_spec(RunSpec(preset=args.preset, device=args.device, channels_last=args.channels_last,
                                compile=args.compile, **overrides))
    device = select_device(spec.device)
    if args.count_only:
        count_only(spec, args, device)
        return
    peak, peak_source = reference_peak(device)
    rows = {}
    for name, case in (("finetune", finetune_case), ("mocov2", mocov2_case)):
        batch = args.batch if name == "finetune" or args.pretrain_batch is None else args.pretrain_batch
        harness, bare = case(spec, batch, device)
        per_harness, per_bare = compare(harness, bare, args.steps, args.warmup, args.repeats, device)
        syncs = count_syncs(harness, 5, device) if args.sync_check and device.type == "cuda" else None
        eager = case(dataclasses.replace(spec, compile=False), batch, device)[0] if spec.compile else harness
        flops = count_flops(eager)
        tflops = flops / per_harness / 1e12
        images = 2 * batch  # a pair per item in fine-tuning, two views per image in pre-training
        rows[name] = {"batch": batch, "harness_s_per_step": per_harness, "bare_s_per_step": per_bare,
                      "harness_images_per_s": images / per_harness, "bare_images_per_s": images / per_bare,
                      "ratio": per_harness / per_bare, "host_syncs_in_5_steps": syncs,
                      "flops_per_step": flops, "tflops": tflops}
        print(f"{name:9s} harness {images / per_harness:8.1f} img/s   bare {images / per_bare:8.1f} img/s   "
              f"ratio {per_harness / per_bare:.3f}   {tflops:.3f} TFLOP/s"
              + (f"   host syncs in 5 steps: {len(syncs)}" if syncs is not None else ""))
        for message in sorted(set(syncs or [])):
            print(f"          sync: {message}")
    if device.type != "cuda":  # a measured roof: its best before and after the steps, on a shared machine
        peak = max(peak, reference_peak(device)[0])
    for name, row in rows.items():
        row["mfu"] = row["tflops"] / peak if peak else None
        print(f"{name:9s} MFU " + (f"{100 * row['mfu']:.1f}% of {peak:.3f} TFLOP/s" if peak else "unknown"))
    result = {"preset": args.preset, "backbone": spec.backbone, "batch": args.batch, "device": describe(device),
              "channels_last": use_channels_last(device, spec.channels_last), "compile": spec.compile,
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "peak_tflops": peak, "peak_source": peak_source, "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
