"""A run's options as the text a reader compares, and the ``--where`` / ``--group-by`` keys that select by it.

Every :class:`~cvbench.spec.RunSpec` field of a record is written as its CLI
text (``32x128``, ``120,160``, ``infonce.temperature=0.07``), so a filter
``epochs=4``, a grouping by ``epochs`` and a column ``epochs`` read the
same value. The leaderboard shows an option's column only where the listed
runs differ in it (:func:`differing`).

``--name`` and ``--tag`` are labels (:data:`cvbench.spec.LABELS`), not
settings: they have columns of their own, ``--where name=NAME`` and
``--where tag=TAG`` (a run holding that tag among others) select by them,
and ``--group-by all`` leaves them out, so the seeds of one setting merge
whatever their labels (``--group-by name`` groups by them when asked).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import CvbenchError
from ..spec import LABELS, MACHINE, NO_PRETRAINER, RunSpec, closest
from ..spec.parse import EPOCH_LIST, LOSSES, NAMED_OPTIONS, NAMES, OPTIONS, SIZE
from ..spec.run_spec import PRETRAINING

_FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}

SUMMARISED = frozenset({
    "dataset", "split", "eval_dataset", "eval_split",  # the ``dataset`` column
    "pretrainer", "pretrain_branches", "pretrain_data", "pretrain_from",  # ``pretrainer``, ``pretraining``
    "base_init", "ground_init", "aerial_init",  # ``ground init``, ``aerial init``
    "backbone", "shared_backbone", "freeze_backbone",  # ``backbone``
    "head", "loss", "sampler", "train_fraction", "seed",  # ``head``, ``loss``, ``sampler``, ``labels``, ``seed``
    "fov", "orientation", "ties", "one_percent", "hit_rate",  # the protocol columns
    "metrics",  # the metric columns themselves
    *LABELS,  # ``name`` and ``tags``
})
"""Options the leaderboard already shows in a column of its own (``pretraining`` joins four of them)."""

MACHINE_FIELDS = frozenset(name for name, f in _FIELDS.items() if f.metadata["group"] == MACHINE)
"""Where and how fast a run computed (device, workers, ...), not what: never a column nor a grouping key."""

OPTION_FIELDS = tuple(name for name in _FIELDS if name not in SUMMARISED | MACHINE_FIELDS)
"""The options that get a column of their own (named as the option) when the listed runs differ in them."""

RECORD_KEYS = ("run", "status", "stage")
TAG = "tag"  # ``--where tag=TAG``: one of the run's tags
WHERE_KEYS = tuple(sorted({*_FIELDS, *RECORD_KEYS, TAG}))
GROUP_ALL = "all"
GROUP_ALL_FIELDS = tuple(name for name in _FIELDS if name not in MACHINE_FIELDS | {"seed", *LABELS})
"""``--group-by all``: runs alike in every option but the seed, the machine and the labels are one setting."""
GROUP_FIELDS = (*GROUP_ALL_FIELDS, *LABELS)
"""What ``--group-by`` may name."""

NO_VALUE = "-"


class LeaderboardOptionError(CvbenchError):
    """A ``--where`` or ``--group-by`` that names no option or is not ``KEY=VALUE``."""


def option_column(name: str) -> str:
    """The leaderboard column of an option: its name as a reader writes it (``ground_size`` -> ``ground size``)."""
    return name.replace("_", " ")


def _scalar(value: Any) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def option_text(name: str, value: Any) -> str:
    """An option's value as its CLI text (the option's shape decides the form); ``-`` for unset or empty."""
    shape = _FIELDS[name].metadata["shape"] if name in _FIELDS else None
    if value is None or (isinstance(value, (list, tuple, dict)) and not value):
        return NO_VALUE
    if shape == SIZE and isinstance(value, (list, tuple)):
        return "x".join(_scalar(side) for side in value)
    if shape in (EPOCH_LIST, NAMES) and isinstance(value, (list, tuple)):
        return ",".join(_scalar(item) for item in value)
    if shape == LOSSES and isinstance(value, (list, tuple)):
        return " + ".join(str(item[0]) if float(item[1]) == 1.0 else f"{item[0]}:{float(item[1]):g}"
                          for item in value)
    if shape == OPTIONS and isinstance(value, dict):
        return " ".join(f"{key}={_scalar(item)}" for key, item in sorted(value.items()))
    if shape == NAMED_OPTIONS and isinstance(value, dict):
        return " ".join(f"{plugin}.{key}={_scalar(item)}" for plugin, options in sorted(value.items())
                        for key, item in sorted((options or {}).items()))
    return _scalar(value)


def setting(record: dict[str, Any], name: str) -> str:
    """One option (or ``run``, ``status``, ``stage``) of a record as text.

    ``split`` is the protocol the run used (recorded even where the spec left
    it to the dataset); the pre-training options of a run that never
    pre-trained read ``-``: a preset's pre-training epochs say nothing there.
    """
    if name in RECORD_KEYS:
        return _scalar(record.get(name))
    spec = record.get("spec") or {}
    if name == "split":
        return _scalar(record.get("split") or spec.get("split"))
    if (_FIELDS[name].metadata["group"] == PRETRAINING and name != "pretrainer"
            and spec.get("pretrainer", NO_PRETRAINER) == NO_PRETRAINER):
        return NO_VALUE
    return option_text(name, spec.get(name))


def differing(records: list[dict[str, Any]], names: tuple[str, ...] = OPTION_FIELDS) -> list[str]:
    """The options among ``names`` whose text differs between the records, in ``names``' order."""
    return [name for name in names if len({setting(record, name) for record in records}) > 1]


def _listing(keys: tuple[str, ...]) -> str:
    return ", ".join(keys)


def parse_where(items: list[str]) -> dict[str, str]:
    """``["dataset=NAME,split=SPLIT"]`` -> ``{"dataset": NAME, "split": SPLIT}`` (every pair must hold).

    Pairs are separated by commas or given as repeated options; a piece
    without ``=`` continues the previous value (``milestones=120,160``).
    ``tag`` may be given more than once: ``tag=a,tag=b`` is ``tag=a,b``, a run
    holding both tags.
    """
    where: dict[str, str] = {}
    last = None
    for piece in (piece for item in items for piece in item.split(",")):
        key, sep, value = piece.partition("=")
        if not sep:
            if last is None:
                raise LeaderboardOptionError(f"--where {piece!r}: expected KEY=VALUE pairs separated by commas, "
                                             "e.g. dataset=vigor,split=cross_area")
            where[last] += "," + piece
            continue
        key = key.strip()
        if key not in WHERE_KEYS:
            close = closest(key, list(WHERE_KEYS))
            hint = f" (did you mean {close!r}?)" if close else ""
            raise LeaderboardOptionError(f"--where {key!r}: unknown key{hint}; valid keys are: {_listing(WHERE_KEYS)}")
        repeated = key == TAG and key in where  # tag=a,tag=b: both tags, as tag=a,b
        where[key], last = (f"{where[key]},{value.strip()}" if repeated else value.strip()), key
    return where


def _same(text: str, wanted: str) -> bool:
    """Whether a setting's text is the value a ``--where`` asked for (``1e-3`` is ``0.001``, ``True`` is ``true``)."""
    if text == wanted or text.lower() == wanted.lower():
        return True
    try:
        return math.isclose(float(text), float(wanted), rel_tol=1e-12)
    except ValueError:
        return False


def matches(record: dict[str, Any], where: dict[str, str]) -> bool:
    """Whether the record holds every ``KEY=VALUE`` of ``where`` (``tag=A,B``: A and B are among its tags)."""
    return all(_has_tag(record, value) if key == TAG else _same(setting(record, key), value)
               for key, value in where.items())


def _has_tag(record: dict[str, Any], wanted: str) -> bool:
    tags = [str(tag) for tag in (record.get("spec") or {}).get("tags") or ()]
    return all(any(_same(tag, one.strip()) for tag in tags) for one in wanted.split(","))


def parse_group_by(text: str) -> tuple[str, ...]:
    """``"head,loss"`` -> ``("head", "loss")``; ``"all"`` -> every option but the seed, the machine's and the
    labels."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if names == (GROUP_ALL,):
        return GROUP_ALL_FIELDS
    unknown = [name for name in names if name not in GROUP_FIELDS]
    if unknown or not names:
        raise LeaderboardOptionError(f"--group-by {text!r}: expected {GROUP_ALL} or options separated by commas, "
                                     f"from: {_listing(tuple(sorted(GROUP_FIELDS)))}")
    return names


def group_key(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    """The settings a run is grouped by (:func:`parse_group_by`'s names) as text."""
    return tuple(setting(record, name) for name in names)
