"""Device choice, mixed precision and seeding."""

from __future__ import annotations

import contextlib
import random
from typing import Sequence

import numpy as np
import torch

from ..errors import SpecError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"--device {name}: CUDA is not available on this machine (use --device auto or cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SpecError(f"--device {name}: MPS is not available on this machine (use --device auto or cpu)")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def describe(device: torch.device) -> str:
    """A human-readable device name for run records."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def use_channels_last(device: torch.device, setting: str = "auto") -> bool:
    """Whether convolutions run in NHWC (channels_last): ``auto`` means on CUDA, where bf16 tensor cores want it."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def prepare_module(module: torch.nn.Module, device: torch.device, channels_last: bool = False,
                   compile: Sequence[torch.nn.Module] = ()) -> torch.nn.Module:
    """Move ``module`` to ``device`` in the chosen memory format and compile the ``compile`` parts in place.

    ``nn.Module.compile`` keeps each part's state-dict keys, so checkpoints of
    a compiled run load into an uncompiled model and back.
    """
    module.to(device)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    for part in compile:
        part.compile()
    return module


def to_device(batch: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """A host batch on ``device`` without waiting for the copy (pinned memory makes it asynchronous)."""
    batch = batch.to(device, non_blocking=True)
    if channels_last and batch.dim() == 4:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch
