"""Checks for the numeric options of plugins: one helper for every method, loss, head and third-party package.

Each check returns the value it accepted or raises :class:`cvbench.errors.SpecError`
naming the plugin, the option, what was expected and what was given
(``"soft_triplet: option gamma must be a number in (0, inf), got -1"``).
Booleans are refused where numbers are expected, and NaN and infinity
fall outside every interval with an open or finite end.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Sequence

from cvbench.errors import SpecError


def require_int(method: str, name: str, value: object, *, minimum: int) -> int:
    """``value`` as an ``int`` no smaller than ``minimum``; booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise SpecError(f"{method}: option {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def require_float(
    method: str,
    name: str,
    value: object,
    *,
    low: float,
    high: float = float("inf"),
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a ``float`` inside the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the respective end point.
    """
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        number = float(value)
        ok = (number > low if low_open else number >= low) and (number < high if high_open else number <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise SpecError(f"{method}: option {name} must be a number in {interval}, got {value!r}")
    return float(value)


def require_choice(method: str, name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        raise SpecError(f"{method}: option {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def require_bool(method: str, name: str, value: object) -> bool:
    """``value`` when it is ``True`` or ``False`` (``--*-option KEY=true`` reads as a bool)."""
    if not isinstance(value, bool):
        raise SpecError(f"{method}: option {name} must be true or false, got {value!r}")
    return value
