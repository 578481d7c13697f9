"""Checks for the options of plugins: one helper for every method, loss, head and third-party package.

:func:`typed_options` gives a factory its options with the types its
signature declares (``p: float`` gets ``3.0`` from ``--head-option p=3``, a
``str`` parameter gets ``"3"``), validated by pydantic; a value that does not
fit names the plugin, the option and the expected type. Options of a factory
that declares no type (``**options``, ``Any``) are read from their text as the
most specific of int, float, bool, none or str (:func:`guess_value`).

Each check returns the value it accepted or raises :class:`cvbench.errors.SpecError`
naming the plugin, the option, what was expected and what was given
(``"soft_triplet: option gamma must be a number in (0, inf), got -1"``).
Booleans are refused where numbers are expected, and NaN and infinity
fall outside every interval with an open or finite end.
"""

from __future__ import annotations

import inspect
import types
import typing
from numbers import Integral, Real
from typing import Any, Callable, Sequence

from cvbench.errors import SpecError

NONE_WORDS = ("none", "null")


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


def guess_value(text: Any) -> Any:
    """Text read as the most specific of int, float, bool, none or str; a value that is not text stays."""
    if not isinstance(text, str):
        return text
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in NONE_WORDS:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def typed_options(plugin: str, factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the types ``factory``'s signature declares, validated by pydantic.

    ``plugin`` (``"head 'NAME'"``) is named in the error. An option the
    signature does not list, or lists without a type, is read by
    :func:`guess_value`; unknown names are the registry's to refuse.
    """
    parameters = _parameters(factory)
    return {key: _typed(plugin, key, value, parameters.get(key)) for key, value in options.items()}


def _parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The factory's parameters with their annotations evaluated (``from __future__ import annotations``)."""
    for evaluate in (True, False):
        try:
            return dict(inspect.signature(factory, eval_str=evaluate).parameters)
        except (NameError, TypeError, ValueError, AttributeError):
            continue
    return {}


def _typed(plugin: str, key: str, value: Any, parameter: inspect.Parameter | None) -> Any:
    annotation = inspect.Parameter.empty if parameter is None else parameter.annotation
    if annotation in (inspect.Parameter.empty, Any, object) or isinstance(annotation, str) \
            or parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
        return guess_value(value)
    from pydantic import TypeAdapter, ValidationError  # only when a plugin is built: keeps `--help` fast

    try:
        adapter = TypeAdapter(annotation)
    except Exception:  # noqa: BLE001 - a type pydantic cannot check (a class of the plugin's): the plugin checks it
        return guess_value(value)
    for candidate in _readings(value, annotation):
        try:
            return adapter.validate_python(candidate)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
    raise SpecError(f"{plugin}: option {key} = {value!r}: expected {_type_name(annotation)} ({reason})")


def _readings(value: Any, annotation: Any) -> list[Any]:
    """What a value may mean, in order: ``"none"`` as None, the value itself, ``"1,2"`` as a sequence."""
    readings = [value]
    if isinstance(value, str):
        if value.strip().lower() in NONE_WORDS:
            readings.insert(0, None)
        if typing.get_origin(_without_none(annotation)) in (tuple, list, set, frozenset):
            readings.append([part.strip() for part in value.split(",")])
    return readings


def _without_none(annotation: Any) -> Any:
    members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return members[0] if union and len(members) == 1 else annotation


def _type_name(annotation: Any) -> str:
    """``float``, ``tuple[int, int]``, ``int | None``: the type as the factory's signature spells it."""
    return annotation.__name__ if isinstance(annotation, type) and not typing.get_args(annotation) \
        else str(annotation).replace("typing.", "")
