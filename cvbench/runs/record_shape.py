"""The shape a ``result.json`` must have before a listing reads it.

A runs folder is not only written by cvbench: a crash, a hand edit, a
shared folder written by another version can leave a record whose ``spec``
is ``null`` or whose R@1 is text. The leaderboard reads the fields checked
here by name, so a record that does not fit is listed as ``unreadable``
naming the field and what it should hold, never ranked and never a
traceback. Fields a listing does not read are left unchecked (``extra``),
so records of older and newer versions stay readable.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, FiniteFloat, ValidationError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SpecShape(_Open):
    """The spec fields a listing formats (every other option is shown as text, whatever its type)."""

    name: Optional[str] = None
    tags: Optional[list[str]] = None
    dataset: Optional[str] = None
    split: Optional[str] = None
    head: Optional[str] = None
    backbone: Optional[str] = None
    pretrainer: Optional[str] = None
    pretrain_branches: Optional[str] = None
    pretrain_data: Optional[str] = None
    pretrain_from: Optional[str] = None
    base_init: Optional[str] = None
    ground_init: Optional[str] = None
    aerial_init: Optional[str] = None
    sampler: Optional[str] = None
    seed: Optional[int] = None
    epochs: Optional[int] = None
    dim: Optional[int] = None
    train_fraction: Optional[FiniteFloat] = None
    loss: Optional[list[tuple[str, FiniteFloat]]] = None
    ground_size: Optional[tuple[int, int]] = None
    aerial_size: Optional[tuple[int, int]] = None
    fov: Optional[FiniteFloat] = None
    shared_backbone: Optional[bool] = None
    freeze_backbone: Optional[bool] = None


class RecordShape(_Open):
    """The record fields a listing reads: metrics must be finite numbers, texts texts, counts whole numbers."""

    run: Optional[str] = None
    status: str
    stage: Optional[str] = None
    split: Optional[str] = None
    spec: SpecShape
    metrics: Optional[dict[str, Optional[FiniteFloat]]] = None
    conventions: Optional[dict[str, str | FiniteFloat]] = None
    evaluated_on: Optional[dict[str, Optional[str]]] = None
    uniformity: Optional[dict[str, Optional[dict[str, Optional[FiniteFloat]]]]] = None
    num_queries: Optional[int] = None
    num_references: Optional[int] = None
    timings: Optional[dict[str, Optional[FiniteFloat]]] = None
    warnings: Optional[list[str]] = None
    error: Optional[str] = None
    heartbeat: Optional[str] = None
    owner: Optional[dict[str, Any]] = None


def shape_problem(record: Any) -> str | None:
    """None when ``record`` fits :class:`RecordShape`; else one line naming the first field that does not."""
    try:  # strictly as JSON: "10" is no R@1, and 1 no text; a JSON array may stand for a pair
        RecordShape.model_validate_json(json.dumps(record), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the record"
        return f"field {where!r}: {first['msg'].lower()} (got {_short(first.get('input'))})"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
