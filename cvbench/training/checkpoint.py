"""Weights on disk as safetensors, saved atomically and loaded strictly.

A checkpoint records the spec it was made with in its metadata. Loading
fails with the list of missing, unexpected and misshapen keys instead of
silently keeping random weights (``strict=False`` is how one public code base
evaluates untrained networks without noticing). A run's own checkpoint must
also have been made with the run's spec (:func:`check_made_with`): weights of
another run that happen to fit would otherwise be reported under this run's name.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_path
from ..errors import CheckpointError
from ..spec import RunSpec, flag, from_record
from ..spec.parse import show
from ..spec.run_spec import EVALUATION, MACHINE

NOT_IN_WEIGHTS = ("preset", "data_root", "pretrained_weights", "max_val_queries", "name", "tags")
"""Fields of the data, model and training groups that do not change the weights: the preset's name (its values
are in the resolved spec), where the data and the ImageNet weights lie on a machine, the evaluation subset, and the
run's labels (``--name``, ``--tag``: cvbench.spec.LABELS)."""


def weight_fields() -> tuple[str, ...]:
    """The spec fields that define a checkpoint's weights: the data, model and training, with the seed.

    Left out: how the model is evaluated (the Evaluation group), on what
    machine it ran (``--device`` and ``--workers`` may change on ``--resume``),
    and :data:`NOT_IN_WEIGHTS`.
    """
    return tuple(item.name for item in dataclasses.fields(RunSpec)
                 if item.metadata["group"] not in (EVALUATION, MACHINE) and item.name not in NOT_IN_WEIGHTS)


def check_made_with(path: str | Path, metadata: dict[str, Any], expected: RunSpec, expected_source: str,
                    owner: str) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint at ``path`` was made with ``expected``'s weight fields.

    ``metadata`` is the checkpoint's (its ``spec``, and its ``run`` where
    cvbench recorded one), ``expected_source`` names where ``expected`` comes
    from (``RUN/spec.json``) and ``owner`` the run it should belong to. The
    one-line message names both, and every field that differs with both values.
    """
    if not isinstance(metadata.get("spec"), dict):
        raise CheckpointError(f"{path} records no spec in its metadata, so it cannot be shown to be {owner}'s model "
                              "(expected a checkpoint written by `cvbench run`)")
    made = from_record(metadata["spec"]).to_dict()  # options added since then at their fallbacks
    wanted = expected.to_dict()
    differing = [name for name in weight_fields() if made.get(name) != wanted.get(name)]
    if not differing:
        return
    maker = f"run {metadata['run']}" if metadata.get("run") else "another run"
    theirs = ", ".join(f"{flag(name)} {show(made.get(name), 40)}" for name in differing)
    ours = ", ".join(f"{flag(name)} {show(wanted.get(name), 40)}" for name in differing)
    raise CheckpointError(f"{path} was made by {maker} with {theirs}, but {expected_source} says {ours}: it is not "
                          f"the model of run {owner} (evaluate the run that made it instead)")


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
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        lines += [f"  {label}: {k}" for k in keys[:20]] + ([f"  ... and {len(keys) - 20} more {label}"]
                                                          if len(keys) > 20 else [])
    lines += [f"  shape: {m}" for m in misshapen[:20]]
    raise CheckpointError("\n".join(lines))


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path
