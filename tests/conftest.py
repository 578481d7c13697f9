"""Shared test set-up: a private dataset cache and helpers to fake installed plugin packages."""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

if TYPE_CHECKING:
    from cvbench.spec import RunSpec

# One cache per test session, shared by in-process and subprocess runs, never the user's.
_OWN_CACHE = "CVBENCH_CACHE" not in os.environ
if _OWN_CACHE:
    os.environ["CVBENCH_CACHE"] = tempfile.mkdtemp(prefix="cvbench-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["CVBENCH_CACHE"], ignore_errors=True)


SMALL_WORLD = {"train_pairs": 160, "val_pairs": 160}
"""A synthetic world for end-to-end runs in a fresh interpreter: generated in about 2 s where the default
world takes about 20, and evaluated against 160 tiles, not 1,000. The smoke preset uses 128 of its pairs."""
SMALL_WORLD_ARGS = tuple(arg for key, value in SMALL_WORLD.items() for arg in ("--data-option", f"{key}={value}"))


PERF_SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks" / "perf"


def perf_script(name: str):
    """The benchmark script ``benchmarks/perf/<name>.py``, imported as a module (the folder is no package)."""
    spec = importlib.util.spec_from_file_location(f"perf_{name}", PERF_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_distribution(site: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> Path:
    """Lay out an installed distribution exactly as pip leaves it: a module and its .dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[cvbench]\n{lines}\n")
    return site


def run_cli(*args: str, site: Path | None = None, env: dict[str, str] | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``cvbench ARGS`` in a fresh interpreter, with ``site`` on its path."""
    environment = {**os.environ, **(env or {})}
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environment.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "cvbench", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout)


def cli(*args: str, site: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cvbench ARGS`` in this process, with ``site`` on the path and the plugins found anew.

    For listings and errors: a fresh interpreter spends about 5 s importing
    torch and torchvision before such a command does its millisecond of work.
    What must start fresh (signals, torchrun, a package installed as pip
    leaves it and run end to end) uses :func:`run_cli`. Returns what
    :func:`run_cli` returns: the exit status and the two streams.
    """
    from cvbench.cli import main
    from cvbench.contract.registry import reset_registry

    out, err = io.StringIO(), io.StringIO()
    saved_path, saved_modules, saved_showwarning = list(sys.path), set(sys.modules), warnings.showwarning
    with mock.patch.dict(os.environ, env or {}), redirect_stdout(out), redirect_stderr(err):
        if site is not None:
            sys.path.insert(0, str(site))
            importlib.invalidate_caches()
        reset_registry()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.path[:] = saved_path
            warnings.showwarning = saved_showwarning
            for name in set(sys.modules) - saved_modules:
                if site is not None and str(getattr(sys.modules[name], "__file__", "")).startswith(str(site)):
                    del sys.modules[name]
            reset_registry()
    return subprocess.CompletedProcess(["cvbench", *args], code, out.getvalue(), err.getvalue())


def cli_spec(**values: Any) -> "RunSpec":
    """The (unresolved) spec ``cvbench run`` would build from these CLI parameter values, the rest at their defaults."""
    from cvbench.cli.spec_options import cli_options, spec_from_cli

    base = {option.parameter: option.option.default for option in cli_options()}
    base.update(values)
    return spec_from_cli(base)


def smoke_run(dataset: str, root: Path, runs_dir: Path, *extra: str) -> dict:
    """``cvbench run --preset smoke`` on a dataset folder; returns its ``result.json`` after checking it exited 0."""
    result = run_cli("run", "--preset", "smoke", "--dataset", dataset, "--data-root", str(root),
                     "--runs-dir", str(runs_dir), "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    (record_path,) = Path(runs_dir).glob("*/result.json")
    return json.loads(record_path.read_text())


@pytest.fixture
def registry():
    """The process registry, reloaded so a test's additions never leak into another test."""
    from cvbench.contract.registry import get_registry, reset_registry

    reset_registry()
    yield get_registry()
    reset_registry()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One finished smoke run on the small world (about 7 s), shared by every test that needs a trained model.

    Read-only: a test that writes into a run folder copies it first (``shutil.copytree``). What the run
    printed on stderr is kept beside it, in ``stderr.txt`` (stdout, not a terminal, holds the folder alone).
    """
    runs = tmp_path_factory.mktemp("trained")
    result = cli("run", "--preset", "smoke", *SMALL_WORLD_ARGS, "--runs-dir", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    (runs / "stderr.txt").write_text(result.stderr)
    return Path(result.stdout.strip())
