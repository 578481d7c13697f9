"""Type checks of run option values that come from TOML, JSON or a Python caller.

A benchmark row or an old ``result.json`` can hold any value in any field;
:func:`typed` checks one value against the field's resolved type hint (from
:func:`typing.get_type_hints`, read with :func:`typing.get_origin` and
:func:`typing.get_args`), normalises lists to the tuples the spec holds, and
raises a :class:`SpecError` naming the option. Sizes and losses also have
text forms (``"32x128"``, ``"uniformity:0.001"``), so those fields are read
by their CLI shape with the parsers of :mod:`cvbench.spec.parse`.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from ..errors import SpecError
from .parse import COUNT, LOSSES, SIZE, is_whole, parse_count, parse_loss, parse_size, show, weighted_loss

# A scalar type: (the Python types a value may have, what the error says is expected).
_SCALARS: dict[type, tuple[type | tuple[type, ...], str]] = {
    str: (str, "a string"),
    int: (int, "a whole number"),
    float: ((int, float), "a number"),
    bool: (bool, "true or false"),
}
_NONE = type(None)


def typed(name: str, value: Any, hint: Any, shape: str | None = None, expect: str | None = None) -> Any:
    """``value`` checked against the option's type hint, lists normalised; SpecError naming ``name``.

    ``shape`` is the field's CLI shape (sizes and losses accept their text
    forms too); ``expect`` overrides what the error says a list should be.
    """
    members = _members(hint)
    if value is None and _NONE in members:
        return None
    where = f"option {name} = {show(value)}"
    if shape == SIZE:
        try:
            return parse_size(value)
        except SpecError as exc:
            raise SpecError(f"option {name}: {exc}") from None
    if shape == COUNT:
        return parse_count(value, f"option {name}")
    if shape == LOSSES:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise SpecError(f"{where}: expected a list of losses such as [\"soft_triplet\", \"uniformity:0.001\"]")
        return [parse_loss(item) if isinstance(item, str) else weighted_loss(item) for item in items]
    hint = next(member for member in members if member is not _NONE) if len(members) > 1 else hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        return _table(where, value, args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(where, value, args[0], expect)
    if hint not in _SCALARS:
        return value  # Any, or a type no check is written for: the run checks it
    kind, what = _SCALARS[hint]
    if not isinstance(value, kind) or (isinstance(value, bool) and hint is not bool):
        raise SpecError(f"{where}: expected {what}")
    return value


def _members(hint: Any) -> tuple[Any, ...]:
    """The members of a union hint (``int | None`` -> ``(int, NoneType)``); the hint alone otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _table(where: str, value: Any, args: tuple[Any, ...]) -> dict[str, Any]:
    """A ``dict[str, Any]`` (KEY = VALUE) or ``dict[str, dict[str, Any]]`` (NAME = { KEY = VALUE }) option."""
    inner = len(args) == 2 and typing.get_origin(args[1]) is dict
    if not isinstance(value, dict) or not all(isinstance(k, str) and (not inner or isinstance(v, dict))
                                              for k, v in value.items()):
        what = "a table of NAME = { KEY = VALUE }" if inner else "a table of KEY = VALUE"
        raise SpecError(f"{where}: expected {what}")
    return value


def _sequence(where: str, value: Any, item: Any, expect: str | None) -> tuple[Any, ...]:
    """A ``tuple[item, ...]`` option from a list (or one string, for a tuple of strings), as a tuple."""
    if item is str and isinstance(value, str):
        value = [value]
    fits = is_whole if item is int else (lambda v: not isinstance(item, type) or isinstance(v, item))
    if not isinstance(value, (list, tuple)) or not all(fits(v) for v in value):
        what = expect or _PLURALS.get(item, "a list")
        raise SpecError(f"{where}: expected {what}")
    return tuple(value)


_PLURALS = {int: "a list of whole numbers", str: "a list of strings", float: "a list of numbers"}
