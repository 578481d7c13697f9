"""One run's options in a TOML file: ``cvbench run --config row.toml`` and ``--print-config``.

The file takes the keys of one row of a benchmark grid (``cvbench bench``):
the :class:`~cvbench.spec.RunSpec` option names, with underscores, and their
TOML values (``head_options = { p = 3.0 }``, ``loss = ["LOSS",
"OTHER:0.001"]``, ``ground_size = [32, 128]``). Flags given on the
command line override the file's values; a plugin option table is merged
key by key. ``--print-config`` writes a resolved spec in the same schema, so
its output read back with ``--config`` gives the same spec.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path
from typing import Any

import pydantic

from ..errors import SpecError
from .run_spec import RENAMED, RunSpec, closest

NAMED = ("loss_options", "metric_options")  # {plugin: {option: value}}: merged plugin by plugin


@functools.cache
def options_model() -> type[pydantic.BaseModel]:
    """The pydantic model of a run's options: every :class:`RunSpec` field (and each old name), nothing else.

    The values are typed by :meth:`RunSpec.from_dict`, which also reads the
    text forms (``"32x128"``, ``"LOSS:0.001"``); here a key that is no
    option is refused (``extra="forbid"``).
    """
    names = [f.name for f in dataclasses.fields(RunSpec)] + list(RENAMED)
    return pydantic.create_model("RunOptions", __config__=pydantic.ConfigDict(extra="forbid"),
                                 **{name: (Any, None) for name in names})


def check_options(options: dict[str, Any], where: str, listed: str = "") -> RunSpec:
    """``options`` as a :class:`RunSpec`; an unknown key or a wrong type is one line naming ``where`` and the key.

    ``listed`` names the other keys the table may hold (a grid row's ``name``),
    for the message.
    """
    try:
        options_model().model_validate(options)
    except pydantic.ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0])
        close = closest(key, [f.name for f in dataclasses.fields(RunSpec)])
        hint = f"; did you mean {close!r}?" if close else "."
        raise SpecError(f"{where} has unknown key {key!r}{hint} Expected {listed}an option of `cvbench run` (its "
                        "name with underscores for dashes)") from None
    try:
        return RunSpec.from_dict(options)
    except (SpecError, TypeError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is one line naming it and ``what`` it is."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file; expected {what}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); expected {what}") \
            from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror or exc}); expected {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None


def load_config(path: str | Path) -> dict[str, Any]:
    """The options a config file sets (as written, checked against :class:`RunSpec`)."""
    path = Path(path)
    options = read_toml(path, "a TOML table of run options, as one row of a benchmark grid")
    check_options(options, str(path))
    return options


def merge(file: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The file's options with the command line's ``given`` ones on top; plugin option tables merge by key."""
    merged = dict(file)
    for name, value in given.items():
        old = merged.get(name)
        if name in NAMED and isinstance(old, dict) and isinstance(value, dict):
            value = {plugin: {**old.get(plugin, {}), **options} for plugin, options in {**old, **value}.items()}
        elif isinstance(old, dict) and isinstance(value, dict):
            value = {**old, **value}
        merged[name] = value
    return merged


def dump_config(spec: RunSpec) -> str:
    """A spec as a config file (TOML, the grid-row schema): unset options left out, losses as ``NAME:WEIGHT``."""
    import tomli_w

    values = {name: value for name, value in spec.to_dict().items() if value is not None}
    values["loss"] = [name if weight == 1 else f"{name}:{weight!r}" for name, weight in spec.loss or ()]
    if not values["loss"]:
        del values["loss"]
    header = "# One run's options (cvbench run --config FILE); flags given with --config override them.\n"
    return header + tomli_w.dumps(values)
