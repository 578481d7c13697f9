"""Hostile plugins (a factory that raises or builds the wrong thing, a module that fails to import) and
hostile benchmark grids (unknown keys, wrong types, invalid TOML, non-UTF-8 bytes).

A plugin's failure is a cvbench error naming the plugin, its kind, its
package and entry point, and the original message; a grid's is a cvbench
error naming the file and the key (with the closest valid key for a typo).
"""

from __future__ import annotations

import builtins
import itertools
import json
import math

import pytest
from conftest import make_distribution
from hostile import FAST, TOKENS
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import cvbench.contract.registry
from cvbench.bench.scheduler import plan
from cvbench.bench.schema import (
    BENCH_KEYS,
    FINDING_KEYS,
    REPORT_KEYS,
    ROW_KEYS,
    RUN_OPTIONS,
    SECTIONS,
    SWEEP_KEYS,
    load_bench,
)
from cvbench.cli import main
from cvbench.errors import CvbenchError, UnknownPluginError

# ----------------------------------------------------------------- plugins

HOOKS = {"head": "register_heads", "loss": "register_losses", "pretrainer": "register_pretrainers",
         "dataset": "register_datasets", "augmentation": "register_augmentations"}
ARGUMENTS = {"head": (8, (2, 2), 4), "loss": (), "pretrainer": (nn.Identity(), 8), "dataset": (None,),
             "augmentation": ((16, 32), (16, 16))}
EXCEPTIONS = ["RuntimeError", "ImportError", "ModuleNotFoundError", "KeyError", "IndexError", "OSError",
              "ZeroDivisionError", "AttributeError", "NotImplementedError", "MemoryError", "SystemExit", "Boom",
              "ValueError", "TypeError"]
WRONG = {"None": None, "42": 42, "'text'": "text", "object()": object(), "[1, 2]": [1, 2]}
_numbers = itertools.count()


def plugin_source(where: str, kind: str, name: str, error: str, message: str, returns: str) -> str:
    """A plugin module that fails ``where`` ("import", "hook", "factory") with ``error(message)``, or (where
    "returns") whose factory builds ``returns``."""
    fail = f"raise {error}({message!r})"
    return "\n".join([
        "from cvbench.contract.hookspecs import hookimpl",
        "class Boom(Exception):",
        "    pass",
        fail if where == "import" else "",
        "def factory(*args, **options):",
        f"    {fail if where == 'factory' else 'return ' + returns}",
        "@hookimpl",
        f"def {HOOKS[kind]}(register):",
        f"    {fail if where == 'hook' else ''}",
        f"    register({name!r}, factory)",
    ]) + "\n"


def message_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["needs libfoo", "[/bold] not markup [red]", "", "x" * 300, "line\nbreak"]),
                     st.text(max_size=30))


@FAST
@given(where=st.sampled_from(["import", "hook", "factory", "returns"]), kind=st.sampled_from(sorted(HOOKS)),
       error=st.sampled_from(EXCEPTIONS), message=message_text(), returns=st.sampled_from(sorted(WRONG)))
def test_a_failing_plugin_is_named_with_its_kind_package_entry_point_and_error(
        tmp_path, monkeypatch, capsys, where, kind, error, message, returns):
    number = next(_numbers)
    module, dist, entry = f"hostile_plugin_{number}", f"hostile-plugin-{number}", f"hostile{number}"
    name = f"broken_{number}"
    site = make_distribution(tmp_path / f"site{number}", dist, module,
                             plugin_source(where, kind, name, error, message, returns), {entry: module})
    monkeypatch.syspath_prepend(str(site))
    cvbench.contract.registry.reset_registry()
    try:
        with pytest.raises(CvbenchError) as info:
            cvbench.contract.registry.create(kind, name, *ARGUMENTS[kind])
        text = str(info.value)
        assert repr(name) in text and kind in text and repr(dist) in text and entry in text, text
        if where == "returns":
            assert f"built {type(WRONG[returns]).__name__}" in text, text
        else:
            original = str(getattr(builtins, error, Exception)(message))  # KeyError quotes its message
            assert f"{error}: {original}" in text, text
            if where != "factory":  # nothing was registered: the unknown name points at the failed module
                assert isinstance(info.value, UnknownPluginError) and module in text, text
        capsys.readouterr()
        main(["plugins"])  # lists the failure (markup in its message is printed as it is), exits 0
        listing = capsys.readouterr().out
        assert "Traceback" not in listing
        if where in ("import", "hook"):
            assert "failed to load" in listing and module in " ".join(listing.split())
    finally:
        cvbench.contract.registry.reset_registry()


# ----------------------------------------------------------------- grids

def toml_value(value) -> str:
    """``value`` written as TOML (inline tables and arrays; TOML has no null, so None never gets here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(data: dict) -> str:
    return "".join(f"{toml_value(key)} = {toml_value(value)}\n" for key, value in data.items())


def base_grid() -> dict:
    """A valid grid that resolves without data: two rows, a stage, a finding and a report."""
    return {
        "bench": {"title": "hostile", "seeds": [0, 1]},
        "defaults": {"preset": "smoke", "dataset": "cvusa", "epochs": 1},
        "stages": {"start": {"pretrainer": "mocov2", "pretrain_branches": "both"}},
        "rows": [{"name": "plain", "base_init": "random", "reported": {"R@1": 1.5}},
                 {"name": "staged", "base_init": "@start", "mirrors": "exp 2", "seeds": [3]}],
        "sweep": [{"base_init": ["random", "@start"], "epochs": [1, 2]}],
        "findings": [{"question": "q?", "baseline": "plain", "treatment": "staged", "thesis": "higher"}],
        "report": {"compare": ["plain", "staged"]},
    }


PLACES = {  # where a key can go -> (the table there, its valid keys)
    "top": (lambda grid: grid, SECTIONS),
    "bench": (lambda grid: grid["bench"], BENCH_KEYS),
    "defaults": (lambda grid: grid["defaults"], RUN_OPTIONS),
    "stage": (lambda grid: grid["stages"]["start"], RUN_OPTIONS),
    "row": (lambda grid: grid["rows"][1], (*ROW_KEYS, *RUN_OPTIONS)),
    "sweep": (lambda grid: grid["sweep"][0], (*SWEEP_KEYS, *RUN_OPTIONS)),
    "reported": (lambda grid: grid["rows"][0]["reported"], ("R@1", "R@5", "R@1%")),
    "finding": (lambda grid: grid["findings"][0], FINDING_KEYS),
    "report": (lambda grid: grid["report"], REPORT_KEYS),
}


def values() -> st.SearchStrategy:
    scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=12),
                        st.sampled_from(TOKENS[:20]), st.sampled_from(["@start", "@nowhere", "smoke", "plain"]))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=2)),
                        max_leaves=5)


@st.composite
def typo(draw, valid) -> str:
    """A valid key with one character dropped, doubled or swapped: what a user mistypes."""
    key = draw(st.sampled_from(sorted(valid)))
    at = draw(st.integers(0, len(key) - 1))
    how = draw(st.sampled_from(["drop", "double", "upper"]))
    return key[:at] + key[at + 1:] if how == "drop" else key[:at] + key[at] * 2 + key[at + 1:] if how == "double" \
        else key[:at] + key[at].upper() + key[at + 1:]


@FAST
@given(data=st.data(), place=st.sampled_from(sorted(PLACES)), mistyped=st.booleans())
def test_an_unknown_key_anywhere_is_named_with_the_file(tmp_path, data, place, mistyped):
    grid = base_grid()
    table, valid = PLACES[place][0](grid), PLACES[place][1]
    key = data.draw(typo(valid) if mistyped else st.text(min_size=1, max_size=20))
    assume(key not in valid and key not in table)
    table[key] = data.draw(values())
    path = tmp_path / "grid.toml"
    path.write_text(toml_document(grid), encoding="utf-8")
    with pytest.raises(CvbenchError) as info:
        load_bench(path)
    text = str(info.value)
    assert str(path) in text and repr(key) in text, text
    if mistyped:
        assert "did you mean" in text, text


@st.composite
def mutated_grid(draw) -> dict:
    """The base grid with values replaced by anything (wrong types included), sections dropped or replaced."""
    grid = base_grid()
    for _ in range(draw(st.integers(1, 4))):
        place = draw(st.sampled_from(sorted(PLACES)))
        try:
            table, valid = PLACES[place][0](grid), PLACES[place][1]
        except (KeyError, IndexError, TypeError):  # an earlier change replaced the section holding it
            continue
        if not isinstance(table, dict):
            continue
        how = draw(st.sampled_from(["set", "set", "drop"]))
        key = draw(st.sampled_from(sorted(valid)))
        if how == "drop":
            table.pop(key, None)
        else:
            table[key] = draw(values())
    return grid


@FAST
@given(grid=mutated_grid())
def test_any_grid_loads_and_plans_or_names_the_file(registry, tmp_path, monkeypatch, capsys, grid):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "grid.toml"
    path.write_text(toml_document(grid), encoding="utf-8")
    try:
        bench = load_bench(path)
    except CvbenchError as error:
        assert str(path) in str(error), str(error)
    else:
        stages, jobs = plan(bench, tmp_path / "runs")
        for job in [*stages.values(), *jobs]:
            assert job.error is None or isinstance(job.error, str)
    capsys.readouterr()
    try:
        main(["bench", str(path), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    assert code in (0, 1, 2) and "Traceback" not in out + err
    if code == 2:
        assert str(path) in " ".join(err.split()).replace(" ", "") or "error" in err, err


@FAST
@given(kind=st.sampled_from(["syntax", "latin-1", "bytes", "utf-16"]), data=st.data())
def test_grid_files_that_are_not_toml_or_not_utf8_name_the_file(tmp_path, kind, data):
    path = tmp_path / "grid.toml"
    text = toml_document(base_grid())
    if kind == "syntax":
        lines = text.splitlines()
        at = data.draw(st.integers(0, len(lines) - 1))
        lines[at] = lines[at] + data.draw(st.sampled_from([" = 1", " ]", "[", " x", "\"", " = = ", "}"]))
        content = "\n".join(lines).encode()
    elif kind == "latin-1":
        content = (text + 'note = "café"\n').encode("latin-1")
    elif kind == "utf-16":
        content = text.encode("utf-16")
    else:
        content = data.draw(st.binary(min_size=1, max_size=300))
    path.write_bytes(content)
    try:
        load_bench(path)
    except CvbenchError as error:
        assert str(path) in str(error)
        if kind == "syntax":
            assert "not valid TOML" in str(error) and "line" in str(error)
        return
    assert kind == "bytes"  # random bytes may happen to be a valid grid? then they had to load


# ----------------------------------------------------------------- run config files (`cvbench run --config`)

CONFIG_KEYS = ("preset", "dataset", "epochs", "dim", "head", "ground_size", "loss", "lr", "seed", "head_options",
               "pretrainer", "fov", "orientation")


@FAST
@given(data=st.data())
def test_any_config_file_prints_its_spec_or_names_the_file(registry, tmp_path, monkeypatch, capsys, data):
    """`--config` takes one grid row: any such row, however wrong, resolves or is one error naming the file."""
    monkeypatch.chdir(tmp_path)
    row = {"preset": "smoke", "dataset": "cvusa"}
    for _ in range(data.draw(st.integers(0, 3))):
        key = data.draw(st.sampled_from(CONFIG_KEYS) | typo(CONFIG_KEYS))
        row[key] = data.draw(values())
    path = tmp_path / "row.toml"
    path.write_text(toml_document(row), encoding="utf-8")
    capsys.readouterr()
    try:
        main(["run", "--config", str(path), "--print-config"])
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in out + err, err
    if code == 2 and err.startswith("error: "):
        assert "row.toml" in err or "--" in err, err  # the file, or the option the file set
    if code == 0:
        assert "dataset" in out  # the resolved row, printed
