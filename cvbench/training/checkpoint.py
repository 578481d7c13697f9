"""Weights on disk as safetensors, saved atomically and loaded strictly.

A checkpoint records the spec it was made with in its metadata. Loading
fails with the list of missing, unexpected and misshapen keys instead of
silently keeping random weights (``strict=False`` is how one public code base
evaluates untrained networks without noticing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_path
from ..errors import CheckpointError


def save_weights(path: str | Path, module: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``module.state_dict()`` to ``path`` atomically, with JSON metadata."""
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in module.state_dict().items()}
    meta = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata stored in a checkpoint; a truncated or foreign file is a :class:`CheckpointError`."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
    except Exception as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(f"cannot read checkpoint {path}: {exc} (expected a .safetensors file written by cvbench; "
                           "a truncated file is what an interrupted copy leaves)")


def load_weights(module: nn.Module, path: str | Path, what: str = "model") -> dict[str, Any]:
    """Load a checkpoint into ``module`` strictly; returns the checkpoint's metadata.

    Raises :class:`CheckpointError` listing every missing key, unexpected key
    and shape mismatch, and the spec the checkpoint was made with.
    """
    path = _existing(path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise _unreadable(path, exc) from None
    metadata = read_metadata(path)
    check_fit(module, tensors, f"checkpoint {path}", what, metadata)
    with torch.no_grad():
        module.load_state_dict(tensors, strict=True)
    return metadata


def check_fit(module: nn.Module, tensors: dict[str, torch.Tensor], source: str, what: str,
              metadata: dict[str, Any] | None = None) -> None:
    """Raise :class:`CheckpointError` unless ``tensors`` has exactly ``module``'s keys and shapes.

    The message lists every missing key, unexpected key and shape mismatch,
    and the spec the weights were made with when ``metadata`` holds one.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    misshapen = [f"{key}: checkpoint {tuple(tensors[key].shape)} vs {what} {tuple(expected[key].shape)}"
                 for key in sorted(set(expected) & set(tensors)) if tensors[key].shape != expected[key].shape]
    if not (missing or unexpected or misshapen):
        return
    made_with = (metadata or {}).get("spec") or (metadata or {}).get("backbone")
    lines = [f"{source} does not fit the {what}"]
    if made_with:
        lines.append(f"  it was made with: {json.dumps(made_with)[:300]}")
    lines += [f"  missing: {k}" for k in missing[:20]] + ([f"  ... and {len(missing) - 20} more missing"] if len(missing) > 20 else [])
    lines += [f"  unexpected: {k}" for k in unexpected[:20]] + ([f"  ... and {len(unexpected) - 20} more unexpected"] if len(unexpected) > 20 else [])
    lines += [f"  shape: {m}" for m in misshapen[:20]]
    raise CheckpointError("\n".join(lines))


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path
