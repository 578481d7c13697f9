"""Checks for the numeric options of the self-supervised methods.

Each check returns the value it accepted or raises :class:`cvbench.errors.SpecError`
naming the method, the option, what was expected and what was given.
"""

from __future__ import annotations

from numbers import Integral, Real

from cvbench.errors import SpecError


def require_int(method: str, name: str, value: object, *, minimum: int) -> int:
    """``value`` as an ``int`` no smaller than ``minimum``; booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise SpecError(f"{method} option {name!r} must be an integer >= {minimum}, got {value!r}")
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
        raise SpecError(f"{method} option {name!r} must be a number in {interval}, got {value!r}")
    return float(value)
