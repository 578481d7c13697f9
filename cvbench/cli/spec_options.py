"""The run options of ``run``, ``pretrain`` and ``train``, generated from :class:`cvbench.spec.RunSpec`'s fields.

Each option is declared once, as a spec field with its help text, its help
panel and its CLI shape in the field's metadata (:func:`cvbench.spec.option`).
Its CLI name is the field's (or the metadata's ``cli`` name) with dashes, so
the CLI, benchmark TOML rows and ``result.json`` use the same names.
"""

from __future__ import annotations

import dataclasses
import inspect
from functools import cache
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import typer

from ..spec import RunSpec, hints
from ..spec import flag as spec_flag
from ..spec.parse import (
    COUNT,
    EPOCH_LIST,
    FLAG,
    LOSSES,
    NAMED_OPTIONS,
    NAMES,
    OPTIONS,
    REPEATABLE,
    SIZE,
    VALUE,
    from_cli,
)

P = inspect.Parameter
# What the help shows as each shape's value.
METAVARS = {OPTIONS: "KEY=VALUE", NAMED_OPTIONS: "NAME.KEY=VALUE", LOSSES: "NAME[:WEIGHT]", NAMES: "NAME",
            SIZE: "HxW", EPOCH_LIST: "E1,E2,...", COUNT: "N|auto"}


@dataclasses.dataclass(frozen=True)
class CliOption:
    """One run option as the CLI has it: the spec field it fills, its parameter name, type and typer option."""

    field: str
    parameter: str
    shape: str
    annotation: Any
    option: Any
    example: str | None

    @property
    def flag(self) -> str:
        return "--" + self.parameter.replace("_", "-")


@cache
def cli_options() -> tuple[CliOption, ...]:
    """Every :class:`RunSpec` field as a CLI option, in the order of the fields."""
    types = hints()
    options = []
    for spec_field in dataclasses.fields(RunSpec):
        meta = spec_field.metadata
        shape, parameter = meta["shape"], meta["cli"] or spec_field.name
        flag = spec_flag(spec_field.name)
        if shape == FLAG:
            annotation, default, names = Optional[bool], None, (f"{flag}/--no-{flag[2:]}",)
        elif shape in REPEATABLE:
            annotation, default, names = Optional[list[str]], None, ()
        elif shape in (SIZE, EPOCH_LIST, COUNT):
            annotation, default, names = Optional[str], None, ()
        elif shape == VALUE:
            annotation, default, names = _scalar(types[spec_field.name]), spec_field.default, ()
            if meta.get("choices"):  # typer lists them in --help, and in the error for any other value
                annotation = Literal[meta["choices"]]
            if default is None:
                annotation = Optional[annotation]
        else:
            raise ValueError(f"RunSpec.{spec_field.name}: unknown CLI shape {shape!r}")
        option = typer.Option(default, *names, help=meta["help"], rich_help_panel=meta["group"],
                              metavar=METAVARS.get(shape))
        options.append(CliOption(spec_field.name, parameter, shape, annotation, option, meta["example"]))
    return tuple(options)


def _scalar(hint: Any) -> Any:
    """``int | None`` -> ``int``: typer reads the member type, ``Optional`` adds the ``None`` default."""
    members = [member for member in getattr(hint, "__args__", (hint,)) if member is not type(None)]
    return members[0]


def spec_from_cli(values: dict[str, Any], config: Path | None = None, context: typer.Context | None = None) -> RunSpec:
    """Turn the parsed CLI values into a :class:`RunSpec` (unset options stay ``None``).

    With ``config`` (``--config row.toml``) the file's options come first and
    the flags given on the command line (``context`` tells which) override them.
    """
    fields = {option.field: from_cli(option.shape, values[option.parameter], option.flag, option.example)
              for option in cli_options()}
    if config is None:
        return RunSpec.from_dict(fields)
    from ..spec.config import load_config, merge

    given = {option.field: fields[option.field] for option in cli_options() if _given(option, values, context)}
    return RunSpec.from_dict(merge(load_config(config), given))


def _given(option: CliOption, values: dict[str, Any], context: typer.Context | None) -> bool:
    """Whether the command line set this option (the click context knows; without one: a value off its default)."""
    if context is not None:
        source = context.get_parameter_source(option.parameter)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
    default = option.option.default
    return values[option.parameter] not in (None, [], default)


def with_spec_options(extra: list[P] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every run option (plus ``extra`` parameters) through its signature."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        params = [P(option.parameter, P.KEYWORD_ONLY, default=option.option, annotation=option.annotation)
                  for option in cli_options()]
        func.__signature__ = inspect.Signature(params + list(extra or []))  # type: ignore[attr-defined]
        return func

    return decorate


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run-option values, the command's other values)."""
    names = {option.parameter for option in cli_options()}
    return {k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names}
