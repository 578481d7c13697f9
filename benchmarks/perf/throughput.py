"""Training throughput: cvbench's fine-tuning and MoCov2 steps against a bare PyTorch loop.

Both loops run in this process on the same model, batch and tensors (seeded
random images, already in memory: data loading is measured elsewhere):

* ``finetune``: :func:`cvbench.finetune.finetune_step` (ImageNet
  normalisation, the objective of eq 3.10, the NaN check, the optimiser step)
  against a bare loop doing the same forward, soft-margin triplet loss,
  backward and Adam step;
* ``mocov2``: :func:`cvbench.pretrain.pretrain_step` around the MoCov2
  pretrainer against a bare loop calling the same module and SGD step.

Measurements of harness and bare alternate, ``--repeats`` times (the first
of each pair swapping every repeat), after ``--warmup`` steps of each; the best time of each is reported, with images
per second and the ratio harness / bare (1.00 = the harness costs nothing).

Usage::

    python benchmarks/perf/throughput.py --preset default --batch 64 --steps 10 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from cvbench.device import select_device
from cvbench.finetune import Objective, finetune_step
from cvbench.loaders import normalize
from cvbench.pretrain import pretrain_step
from cvbench.registry import create
from cvbench.runner import build_model, resolve_spec
from cvbench.spec import RunSpec
from cvbench.training import trainable


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


def finetune_case(spec: RunSpec, batch: int, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    model = build_model(spec).to(device).train()
    objective = Objective.from_spec(spec).to(device)
    objective.attach(model)
    params = trainable(model, objective)
    optimizer = torch.optim.Adam(params, lr=spec.lr)
    ground = torch.rand(batch, 3, *spec.ground_size, device=device)
    aerial = torch.rand(batch, 3, *spec.aerial_size, device=device)
    loss_fn = objective.terms[0]

    def harness() -> None:
        finetune_step(model, objective, optimizer, params, ground, aerial, device, spec.grad_clip)

    def bare() -> None:
        z_ground = F.normalize(model.ground(normalize(ground)).float(), dim=-1)
        z_aerial = F.normalize(model.aerial(normalize(aerial)).float(), dim=-1)
        loss = loss_fn(z_ground, z_aerial)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return harness, bare


def mocov2_case(spec: RunSpec, batch: int, device: torch.device) -> tuple[Callable, Callable]:
    torch.manual_seed(0)
    backbone = build_model(spec).aerial.backbone
    pretrainer = create("pretrainer", "mocov2", backbone, backbone.out_channels,
                        queue_size=4096).to(device).train()
    params = trainable(pretrainer)
    optimizer = torch.optim.SGD(params, lr=spec.pretrain_lr, momentum=0.9)
    view1 = torch.rand(batch, 3, *spec.aerial_size, device=device)
    view2 = torch.rand(batch, 3, *spec.aerial_size, device=device)

    def harness() -> None:
        pretrain_step(pretrainer, optimizer, params, view1, view2, [], device, spec.grad_clip)

    def bare() -> None:
        loss = pretrainer(normalize(view1), normalize(view2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        pretrainer.after_step()

    return harness, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    spec = resolve_spec(RunSpec(preset=args.preset, device=args.device))
    device = select_device(spec.device)
    rows = {}
    for name, case in (("finetune", finetune_case), ("mocov2", mocov2_case)):
        harness, bare = case(spec, args.batch, device)
        per_harness, per_bare = compare(harness, bare, args.steps, args.warmup, args.repeats, device)
        images = 2 * args.batch  # a pair per item in fine-tuning, two views per image in pre-training
        rows[name] = {"harness_s_per_step": per_harness, "bare_s_per_step": per_bare,
                      "harness_images_per_s": images / per_harness, "bare_images_per_s": images / per_bare,
                      "ratio": per_harness / per_bare}
        print(f"{name:9s} harness {images / per_harness:8.1f} img/s   bare {images / per_bare:8.1f} img/s   "
              f"ratio {per_harness / per_bare:.3f}")
    result = {"preset": args.preset, "backbone": spec.backbone, "batch": args.batch, "device": str(device),
              "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "results": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
