"""The ``cvbench`` command line (typer + rich).

Commands: ``plugins``, ``run``, ``pretrain``, ``train``, ``eval``,
``leaderboard``, ``analyze``, ``bench``, ``report``, ``index``, ``localize`` and ``data``.
Errors the user can fix print one clear line and exit with status 2, without a traceback.

The commands' modules import torch, timm, faiss, scikit-learn, matplotlib and
pandas inside the commands that use them, never at the top: typer builds
every command's options to show ``cvbench --help``, and that takes well
under a second only while nothing heavy is imported (tests/test_cli_startup.py,
benchmarks/perf/startup.py).
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.text import Text

from ..errors import CvbenchError, error_message
from ..progress import STDERR
from . import analyze as analyze_commands
from . import bench as bench_commands
from . import data as data_commands
from . import leaderboard as leaderboard_commands
from . import localize as localize_commands
from . import plugins as plugins_commands
from . import report as report_commands
from . import stages as stage_commands

app = typer.Typer(
    name="cvbench",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"cvbench {version('cvbench')}")  # what cvbench.__version__ reads, without importing upwards
        except PackageNotFoundError:
            print("cvbench 0+unknown (not installed; run `pip install -e .`)")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                          help="Print cvbench's version and exit.")) -> None:
    """Does self-supervised pre-training help cross-view geo-localization, and by how much?"""
plugins_commands.register(app)
stage_commands.register(app)
leaderboard_commands.register(app)
analyze_commands.register(app)
bench_commands.register(app)
report_commands.register(app)
localize_commands.register(app)
app.add_typer(data_commands.app, name="data")


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """Dataset warnings (skipped pairs, converted images) as one plain ``warning:`` line."""
    from ..data.problems import DatasetWarning  # the data package imports pandas: not for `cvbench --help`

    if issubclass(category, DatasetWarning):
        STDERR.print(Text("warning: ", style="bold yellow") + Text(str(message)), soft_wrap=True)
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    try:
        code = app(args=argv, standalone_mode=False)  # click returns typer.Exit's code here
        if isinstance(code, int) and code:
            sys.exit(code)
    except CvbenchError as exc:
        STDERR.print(Text("error: ", style="bold red") + Text(error_message(exc)), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        STDERR.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        if isinstance(exc, _usage_errors()):  # a bad option value, an unknown option, an extra argument
            if hasattr(exc, "show"):
                exc.show()
            else:
                STDERR.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
            sys.exit(getattr(exc, "exit_code", 2))
        raise


def _usage_errors() -> tuple[type[Exception], ...]:
    """click's usage errors, and their copies in the click that typer >= 0.2x carries inside itself.

    Catching only ``click.ClickException`` let ``cvbench run --epochs abc``
    end in a traceback with typer's own copy.
    """
    errors: list[type[Exception]] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    try:
        import click
    except ImportError:
        return tuple(errors)
    return (*errors, click.ClickException)
