"""The run spec: every option of a run, with the same names in the CLI, in
benchmark TOML rows and in ``result.json``.

A spec is resolved in three layers: the fields the user set explicitly, then
the chosen preset (registered by a plugin package), then the fallbacks below.
Validation of everything that can be checked without compute happens in
:func:`validate`, so a bad option fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .layout import expand_user, path_is

BRANCHES = ("ground", "aerial")
PRETRAIN_BRANCHES = ("aerial", "ground", "both")
PRETRAIN_DATA = ("train", "val", "all")
STARTS = ("random", "imagenet")
NO_PRETRAINER = "none"
NO_AUGMENTATION = "none"
AUTO_SIZE = "auto"
BAD_IMAGES = ("fail", "skip")
CHANNELS_LAST = ("auto", "on", "off")


@dataclass
class RunSpec:
    """All options of one run. ``None`` means "from the preset"."""

    preset: str = "default"
    dataset: str | None = None
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    bad_images: str | None = None
    max_train_pairs: int | None = None
    train_fraction: float | None = None
    max_val_queries: int | None = None
    max_pretrain_images: int | None = None
    backbone: str | None = None
    backbone_stage: int | None = None
    ground_size: tuple[int, int] | str | None = None
    aerial_size: tuple[int, int] | str | None = None
    polar: bool = False
    head: str | None = None
    head_options: dict[str, Any] = field(default_factory=dict)
    dim: int | None = None
    loss: list[tuple[str, float]] | None = None
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    pretrainer: str | None = None
    pretrain_branches: str | None = None
    pretrain_data: str | None = None
    pretrain_from: str | None = None
    pretrain_epochs: int | None = None
    pretrain_batch_size: int | None = None
    pretrain_lr: float | None = None
    pretrain_weight_decay: float | None = None
    pretrain_milestones: tuple[int, ...] | None = None
    pretrain_options: dict[str, Any] = field(default_factory=dict)
    base_init: str | None = None
    ground_init: str | None = None
    aerial_init: str | None = None
    imagenet_weights: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    finetune_aug: str | None = None
    finetune_aug_options: dict[str, Any] = field(default_factory=dict)
    grad_clip: float | None = None
    eval_every: int | None = None
    eval_batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    channels_last: str = "auto"
    compile: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunSpec":
        """Build a spec from a dict, naming any key that is not an option."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields), key=str)
        if unknown:
            close = closest(str(unknown[0]), list(fields))
            hint = f" (did you mean {close!r}?)" if close else ""
            raise SpecError(f"unknown option(s) {', '.join(map(_show, unknown))}{hint}; valid options are: "
                            f"{', '.join(sorted(fields))}")
        return cls(**{name: _typed(name, value, fields[name].type) for name, value in values.items()})


FALLBACKS: dict[str, Any] = {
    "backbone_stage": -1,
    "pretrainer": NO_PRETRAINER,
    "pretrain_branches": "aerial",
    "pretrain_data": "all",
    "bad_images": "fail",
    "pretrain_weight_decay": 1e-4,
    "pretrain_milestones": (),
    "base_init": "random",
    "ground_init": "auto",
    "aerial_init": "auto",
    "weight_decay": 1e-4,
    "finetune_aug": NO_AUGMENTATION,
    "eval_every": 1,
    "eval_batch_size": 256,
    "train_fraction": 1.0,
}


def resolve(spec: RunSpec, preset_values: dict[str, Any]) -> RunSpec:
    """Fill every ``None`` field from the preset, then from :data:`FALLBACKS`."""
    names = {f.name for f in dataclasses.fields(RunSpec)}
    unknown = sorted(set(preset_values) - names)
    if unknown:
        raise SpecError(f"preset {spec.preset!r} sets unknown option(s): {', '.join(unknown)}")
    values = dataclasses.asdict(spec)
    for name, value in values.items():
        if value is None:
            if name in preset_values:
                values[name] = preset_values[name]
            elif name in FALLBACKS:
                values[name] = FALLBACKS[name]
        elif isinstance(value, dict) and isinstance(preset_values.get(name), dict):
            values[name] = {**preset_values[name], **value}
    resolved = RunSpec.from_dict(values)
    if resolved.pretrain_from is None:
        resolved.pretrain_from = resolved.base_init
    missing = [f.name for f in dataclasses.fields(RunSpec)
               if getattr(resolved, f.name) is None and f.name not in OPTIONAL]
    if missing:
        raise SpecError(f"preset {spec.preset!r} leaves these options unset: {', '.join(missing)}")
    return resolved


OPTIONAL = {"data_root", "split", "max_train_pairs", "max_val_queries", "max_pretrain_images", "imagenet_weights",
            "grad_clip"}


def validate(spec: RunSpec) -> None:
    """Check what needs no plugin and no compute; raise :class:`SpecError` naming the option."""
    _choice("pretrain_branches", spec.pretrain_branches, PRETRAIN_BRANCHES)
    _choice("pretrain_data", spec.pretrain_data, PRETRAIN_DATA)
    for name in ("pretrain_from", "base_init"):
        for branch in BRANCHES:
            start_checkpoint(getattr(spec, name), branch, name)
    for branch in BRANCHES:
        init = getattr(spec, f"{branch}_init")
        if init not in ("auto", "pretrained"):
            start_checkpoint(init, branch, f"{branch}_init")
        if init == "pretrained" and not pretrains(spec, branch):
            raise SpecError(f"--{branch}-init pretrained needs pre-training of the {branch} branch: "
                            f"set --pretrainer and --pretrain-branches {branch} (or both)")
    for name in ("epochs", "batch_size", "pretrain_batch_size", "eval_every", "eval_batch_size", "dim"):
        if int(getattr(spec, name)) < 1:
            raise SpecError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(spec, name)}")
    if spec.batch_size < 2:
        raise SpecError("--batch-size must be at least 2: the losses need in-batch negatives")
    if spec.pretrain_epochs < 0:
        raise SpecError(f"--pretrain-epochs must be 0 or more, got {spec.pretrain_epochs}")
    for name in ("max_train_pairs", "max_val_queries", "max_pretrain_images"):
        value = getattr(spec, name)
        if value is not None and value < 2:
            raise SpecError(f"--{name.replace('_', '-')} must be at least 2, got {value}")
    if not 0 < spec.train_fraction <= 1:  # also rejects NaN
        raise SpecError(f"--train-fraction must be above 0 and at most 1 (the share of the training pairs "
                        f"fine-tuning uses), got {spec.train_fraction}")
    _choice("bad_images", spec.bad_images, BAD_IMAGES)
    for name in ("ground_size", "aerial_size"):
        size = getattr(spec, name)
        if size == AUTO_SIZE:
            continue
        if len(size) != 2 or min(size) < 8:
            raise SpecError(f"--{name.replace('_', '-')} must be HxW with both sides at least 8, got {size}")
    if not spec.loss:
        raise SpecError("at least one --loss is needed")
    _choice("channels_last", spec.channels_last, CHANNELS_LAST)
    if not 0 <= spec.seed <= MAX_SEED:
        raise SpecError(f"--seed {spec.seed}: expected a whole number from 0 to {MAX_SEED}")
    if spec.workers < 0:
        raise SpecError(f"--workers {spec.workers}: expected 0 (load in the main process) or more")
    if spec.data_root is not None:
        expand(spec.data_root, "data_root")
    if spec.device not in ("auto", "cpu", "cuda", "mps") and not re.fullmatch(r"cuda:\d{1,3}", spec.device):
        raise SpecError(f"--device {_show(spec.device)}: expected auto, cpu, cuda, cuda:N or mps")


CHECKPOINT_SUFFIX = ".safetensors"
MAX_SEED = 2**32 - 1  # what every generator seeded from it (Python, NumPy, torch) accepts


def expand(text: str, option: str) -> Path:
    """``text`` as a path with ``~`` expanded; SpecError naming the option when ``~user`` names no user."""
    return expand_user(text, SpecError, f"--{option.replace('_', '-')} {_show(text)}")


def is_file(path: Path) -> bool:
    """``path.is_file()``, False where the system cannot even look the name up (too long, say)."""
    return path_is(Path.is_file, path)


def start_checkpoint(start: str, branch: str, option: str = "base_init") -> Path | None:
    """The backbone checkpoint a start value names for ``branch``; None for ``random`` / ``imagenet``.

    A start is ``random``, ``imagenet``, a ``.safetensors`` backbone file (both
    branches) or a folder with ``pretrained_<branch>.safetensors`` (a
    ``cvbench pretrain`` run folder, or its ``checkpoints/``): the offline
    ImageNet stand-in of the benchmark grids is such a folder.
    """
    if start in STARTS:
        return None
    path = expand(start, option)
    if path.suffix == CHECKPOINT_SUFFIX:
        if not is_file(path):
            raise SpecError(f"--{option.replace('_', '-')} {_show(start)}: no such checkpoint file")
        return path
    for candidate in (path / f"pretrained_{branch}{CHECKPOINT_SUFFIX}",
                      path / "checkpoints" / f"pretrained_{branch}{CHECKPOINT_SUFFIX}"):
        if is_file(candidate):
            return candidate
    raise SpecError(f"--{option.replace('_', '-')} {_show(start)}: expected {', '.join(STARTS)}, a {CHECKPOINT_SUFFIX} "
                    f"backbone checkpoint, or a folder holding pretrained_{branch}{CHECKPOINT_SUFFIX} "
                    "(a `cvbench pretrain` run folder)")


def pretrains(spec: RunSpec, branch: str) -> bool:
    """Whether this run pre-trains the given branch."""
    return spec.pretrainer != NO_PRETRAINER and spec.pretrain_branches in (branch, "both")


def branch_init(spec: RunSpec, branch: str) -> str:
    """The effective initialisation of a branch: ``auto`` becomes ``pretrained`` or the base init."""
    init = getattr(spec, f"{branch}_init")
    if init == "auto":
        return "pretrained" if pretrains(spec, branch) else spec.base_init
    return init


def parse_size(text: str | tuple | list) -> tuple[int, int] | str:
    """``"32x128"`` or ``"64"`` (square) -> ``(height, width)``; ``"auto"`` (the dataset's own) stays."""
    if isinstance(text, str) and text.strip().lower() == AUTO_SIZE:
        return AUTO_SIZE
    if isinstance(text, (tuple, list)):
        if len(text) != 2 or not all(_whole(side) for side in text):
            raise SpecError(f"image size {_show(text)}: expected [height, width], two whole numbers such as "
                            "[32, 128]")
        return (text[0], text[1])
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX]\s*(\d{1,9}))?\s*", text) if isinstance(text, str) else None
    if not match:
        raise SpecError(f"image size {_show(text)}: expected HxW such as 32x128, one number for a square, "
                        "or auto for the dataset's own")
    height = int(match.group(1))
    return (height, int(match.group(2) or height))


def parse_loss(text: str) -> tuple[str, float]:
    """``"uniformity:0.001"`` -> ``("uniformity", 0.001)``; the weight defaults to 1."""
    name, _, weight = str(text).partition(":")
    if not name.strip():
        raise SpecError(f"--loss {_show(text)}: expected NAME or NAME:WEIGHT")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SpecError(f"--loss {_show(text)}: the weight after ':' must be a finite number")
    return name.strip(), value


def parse_options(pairs: list[str], flag: str) -> dict[str, Any]:
    """``["queue_size=4096", "momentum=0.99"]`` -> typed dict (int, float, bool, None or str)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{flag} {pair!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(value.strip())
    return options


def parse_value(text: str) -> Any:
    """Read a CLI value as the most specific of int, float, bool, none or str."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


_KINDS = {"str": (str, "a string"), "int": (int, "a whole number"), "float": ((int, float), "a number"),
          "bool": (bool, "true or false")}


def _typed(name: str, value: Any, annotation: str) -> Any:
    """``value`` checked against the option's type (its annotation), lists normalised; SpecError naming it."""
    if value is None and annotation.endswith("| None"):
        return None
    base = annotation.split(" | ")[0]
    where = f"option {name} = {_show(value)}"
    if name in ("ground_size", "aerial_size"):
        try:
            return parse_size(value)
        except SpecError as exc:
            raise SpecError(f"option {name}: {exc}") from None
    if name == "loss":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise SpecError(f"{where}: expected a list of losses such as [\"soft_triplet\", \"uniformity:0.001\"]")
        return [parse_loss(item) if isinstance(item, str) else _weighted_loss(item) for item in items]
    if name == "pretrain_milestones":
        if not isinstance(value, (list, tuple)) or not all(_whole(v) for v in value):
            raise SpecError(f"{where}: expected a list of epochs such as [120, 160]")
        return tuple(value)
    if base.startswith("dict["):
        inner = base.startswith("dict[str, dict[")
        if not isinstance(value, dict) or not all(isinstance(k, str) and (not inner or isinstance(v, dict))
                                                  for k, v in value.items()):
            what = "a table of NAME = { KEY = VALUE }" if inner else "a table of KEY = VALUE"
            raise SpecError(f"{where}: expected {what}")
        return value
    if base not in _KINDS:
        return value
    kind, what = _KINDS[base]
    if not isinstance(value, kind) or (isinstance(value, bool) and base != "bool"):
        raise SpecError(f"{where}: expected {what}")
    return value


def _weighted_loss(item: Any) -> tuple[str, float]:
    """A ``[name, weight]`` pair (as ``result.json`` stores a loss), checked like ``NAME:WEIGHT``."""
    name, weight = "", math.nan
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) \
            and isinstance(item[1], (int, float)) and not isinstance(item[1], bool):
        name = item[0].strip()
        try:
            weight = float(item[1])
        except OverflowError:  # an int beyond float range
            pass
    if not name or not math.isfinite(weight):
        raise SpecError(f"--loss {_show(item)}: expected NAME, NAME:WEIGHT or [NAME, WEIGHT] with a finite weight")
    return name, weight


def closest(name: str, names: list[str]) -> str | None:
    """The valid name a mistyped ``name`` most likely meant (the same but for case, else the nearest), or None."""
    same = [candidate for candidate in names if candidate.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, names, n=1)
    return close[0] if close else None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error message names a hostile value without reprinting all of it."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"--{name.replace('_', '-')} {_show(value)}: expected one of {', '.join(choices)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
