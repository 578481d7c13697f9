"""The shapes dataset's options: defaults, coercion from CLI strings, validation.

Options arrive as Python values or as strings from ``--data-option key=value``
(``"60"``, ``"32x128"``); both are coerced to one canonical form. Any problem
raises :class:`SpecError` naming the option and what it expects.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from cvbench.errors import SpecError

from .draw import CLASS_NAMES

MIN_SIDE, MAX_SIDE = 8, 1024


@dataclass(frozen=True)
class ShapesOptions:
    """Every option of the shapes dataset, in canonical form (see ``docs/datasets.md``)."""

    seed: int = 0
    train_images: int = 4000
    val_images: int = 1000
    ground_size: tuple[int, int] = (32, 128)
    aerial_size: tuple[int, int] = (64, 64)
    classes: int = len(CLASS_NAMES)

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> "ShapesOptions":
        """Coerce and validate keyword options; unknown names and bad values raise SpecError."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SpecError(f"unknown shapes dataset option {unknown[0]!r}; the options are: {', '.join(known)}")
        return cls(**{name: _COERCE[name](name, value) for name, value in options.items()})

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes in use: the first ``classes`` of :data:`CLASS_NAMES`."""
        return CLASS_NAMES[:self.classes]


def _fail(name: str, expected: str, value: Any) -> SpecError:
    return SpecError(f"shapes option {name!r} expects {expected}, got {value!r}")


def _integer(minimum: int, maximum: int) -> Callable[[str, Any], int]:
    def coerce(name: str, value: Any) -> int:
        expected = f"an integer from {minimum} to {maximum}"
        if isinstance(value, bool):
            raise _fail(name, expected, value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _fail(name, expected, value) from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or not minimum <= value <= maximum:
            raise _fail(name, expected, value)
        return value
    return coerce


def _size(name: str, value: Any) -> tuple[int, int]:
    """``"32x128"``, a pair, or one integer for a square; each side from MIN_SIDE to MAX_SIDE."""
    expected = f"a size 'HxW' (or a pair, or one integer for a square) with sides from {MIN_SIDE} to {MAX_SIDE}"
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            parts = [value, value]
        elif isinstance(value, str):
            parts = value.lower().split("x") if "x" in value.lower() else [value, value]
        else:
            parts = list(value)
        height, width = (int(str(part).strip()) for part in parts)
    except (TypeError, ValueError):
        raise _fail(name, expected, value) from None
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise _fail(name, expected, value)
    return height, width


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "seed": _integer(0, 2**63 - 1),
    "train_images": _integer(1, 1_000_000),
    "val_images": _integer(1, 1_000_000),
    "ground_size": _size,
    "aerial_size": _size,
    "classes": _integer(2, len(CLASS_NAMES)),
}
