"""The text forms of run options: what ``--ground-size 32x128``, ``--loss
uniformity:0.001`` or ``--data-option queue_size=4096`` mean.

A run option is typed text on the command line; this module turns that text
into the values a :class:`cvbench.spec.RunSpec` holds, and names the flag
when the text is wrong. Each :class:`~cvbench.spec.RunSpec` field declares
its *shape* (one of the constants below) in its metadata, and
:func:`from_cli` reads a parsed CLI value by that shape, so the CLI needs
no per-option code. It imports nothing of :mod:`cvbench.spec`, which
re-exports the parsers.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..contract.options import guess_value as parse_value
from ..errors import SpecError

AUTO_SIZE = "auto"

# The CLI shapes of run options: how one option is typed on the command line.
VALUE = "value"  # one value, typed by the field (str, int, float): --epochs 3
FLAG = "flag"  # an on/off switch, unset = the preset's: --polar, --no-polar
OPTIONS = "options"  # repeatable KEY=VALUE into a dict: --data-option layout=offset
NAMED_OPTIONS = "named_options"  # repeatable NAME.KEY=VALUE into a dict of dicts: --loss-option LOSS.margin=0.5
LOSSES = "losses"  # repeatable NAME[:WEIGHT]: --loss soft_triplet --loss uniformity:0.001
SIZE = "size"  # HxW text, one number for a square, or auto: --ground-size 32x128
EPOCH_LIST = "epoch_list"  # comma-separated whole numbers: --pretrain-milestones 120,160
NAMES = "names"  # repeatable NAME into a tuple: --metric recall --metric uniformity
COUNT = "count"  # a whole number, or auto: --dim 1024, --dim auto
SHAPES = (VALUE, FLAG, OPTIONS, NAMED_OPTIONS, LOSSES, SIZE, EPOCH_LIST, NAMES, COUNT)
REPEATABLE = (OPTIONS, NAMED_OPTIONS, LOSSES, NAMES)


def from_cli(shape: str, raw: Any, flag: str, example: str | None = None) -> Any:
    """The spec value of one parsed CLI value ``raw`` of the given shape; ``None`` when the option was not given.

    ``flag`` (``--loss-option``) is named in every error; ``example`` is the
    ``NAME.KEY=VALUE`` example a :data:`NAMED_OPTIONS` error shows.
    """
    if shape in (VALUE, FLAG):
        return raw
    if shape == OPTIONS:  # the text stays: the plugin's signature types it (cvbench.spec.plugin_options)
        return parse_options(raw or [], flag, guess=False)
    if shape == NAMED_OPTIONS:
        return parse_named_options(raw or [], flag, example or "NAME.key=1", guess=False)
    if shape == LOSSES:
        return [parse_loss(text) for text in raw] if raw else None
    if shape == SIZE:
        return parse_size(raw) if raw else None
    if shape == EPOCH_LIST:
        return None if raw is None else parse_epochs(raw, flag)
    if shape == NAMES:
        return tuple(raw) if raw else None
    if shape == COUNT:
        return None if raw is None else parse_count(raw, flag)
    raise ValueError(f"unknown option shape {shape!r}; expected one of {', '.join(SHAPES)}")


def parse_size(text: str | tuple | list) -> tuple[int, int] | str:
    """``"32x128"`` or ``"64"`` (square) -> ``(height, width)``; ``"auto"`` (the dataset's own) stays."""
    if isinstance(text, str) and text.strip().lower() == AUTO_SIZE:
        return AUTO_SIZE
    if isinstance(text, (tuple, list)):
        if len(text) != 2 or not all(is_whole(side) for side in text):
            raise SpecError(f"image size {show(text)}: expected [height, width], two whole numbers such as "
                            "[32, 128]")
        return (text[0], text[1])
    match = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX]\s*(\d{1,9}))?\s*", text) if isinstance(text, str) else None
    if not match:
        raise SpecError(f"image size {show(text)}: expected HxW such as 32x128, one number for a square, "
                        "or auto for the dataset's own")
    height = int(match.group(1))
    return (height, int(match.group(2) or height))


def parse_count(text: str | int, flag: str) -> int | str:
    """``"1024"`` -> 1024; ``"auto"`` stays (the plugin's natural size); anything else names ``flag``."""
    if isinstance(text, str) and text.strip().lower() == AUTO_SIZE:
        return AUTO_SIZE
    if is_whole(text):
        return int(text)
    if isinstance(text, str) and re.fullmatch(r"\s*\d{1,9}\s*", text):
        return int(text)
    raise SpecError(f"{flag} {show(text)}: expected a whole number or auto")


def parse_loss(text: str) -> tuple[str, float]:
    """``"uniformity:0.001"`` -> ``("uniformity", 0.001)``; the weight defaults to 1."""
    name, _, weight = str(text).partition(":")
    if not name.strip():
        raise SpecError(f"--loss {show(text)}: expected NAME or NAME:WEIGHT")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SpecError(f"--loss {show(text)}: the weight after ':' must be a finite number")
    return name.strip(), value


def weighted_loss(item: Any) -> tuple[str, float]:
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
        raise SpecError(f"--loss {show(item)}: expected NAME, NAME:WEIGHT or [NAME, WEIGHT] with a finite weight")
    return name, weight


def parse_options(pairs: list[str], flag: str, guess: bool = True) -> dict[str, Any]:
    """``["queue_size=4096", "momentum=0.99"]`` -> typed dict (int, float, bool, None or str).

    ``guess=False`` keeps each value as its text, for a caller that knows the
    types the plugin declares (:func:`cvbench.contract.options.typed_options`).
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{flag} {pair!r}: expected KEY=VALUE")
        options[key.strip()] = parse_value(value.strip()) if guess else value.strip()
    return options


def parse_named_options(items: list[str], flag: str, example: str, guess: bool = True) -> dict[str, dict[str, Any]]:
    """``["triplet.margin=0.5", "triplet.scale=8"]`` -> ``{"triplet": {"margin": 0.5, "scale": 8}}``.

    The options of one plugin among several (a loss, a metric), the name before the first dot.
    """
    named: dict[str, dict[str, Any]] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        if not dot:
            raise SpecError(f"{flag} {item!r}: expected NAME.KEY=VALUE, e.g. {example}")
        named.setdefault(name, {}).update(parse_options([rest], flag, guess))
    return named


def parse_epochs(text: str, flag: str) -> tuple[int, ...]:
    """``"120,160"`` -> ``(120, 160)``; empty items are skipped, so ``""`` is no epoch at all."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise SpecError(f"{flag} {text!r}: expected epochs such as 120,160") from None


def is_whole(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (TOML and JSON whole numbers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error message names a hostile value without reprinting all of it."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"
