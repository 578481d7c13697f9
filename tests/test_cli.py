"""The command line's own options: version, shell completion, flags, choices, and what a run prints."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import typer
from conftest import cli

import cvbench
from cvbench.cli import app
from cvbench.spec import RunSpec

NOT_OPTIONS = frozenset()
"""RunSpec fields that are deliberately no `cvbench run` option (none today): each would be named here, with why."""


def _commands() -> dict[str, typing.Any]:
    """Every command as click has it (``"data check"`` for a subcommand), built by typer as `cvbench` does."""
    found, todo = {}, [("", typer.main.get_command(app))]
    while todo:
        path, command = todo.pop()
        found[path] = command
        todo += [(f"{path} {name}".strip(), sub) for name, sub in getattr(command, "commands", {}).items()]
    return found


def test_version_prints_the_installed_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cvbench {cvbench.__version__}"


def test_help_offers_shell_completion():
    result = cli("--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "--install-completion" in result.stdout and "--version" in result.stdout


def test_every_boolean_option_has_its_no_form():
    """`--polar/--no-polar`, `--quiet/--no-quiet`, `--dry-run/--no-dry-run`: each flag can be turned off again
    (a script's defaults, a shell alias). The eager actions (--help, --version, completion) are not options."""
    flags = {(path, param.name): param for path, command in _commands().items() for param in command.params
             if getattr(param, "is_bool_flag", False) and param.expose_value and not param.is_eager}
    assert ("run", "polar") in flags and ("bench", "dry_run") in flags and ("data check", "quiet") in flags
    missing = [f"cvbench {path} {param.opts[0]}" for (path, _), param in flags.items()
               if f"--no-{param.opts[0].removeprefix('--')}" not in param.secondary_opts]
    assert not missing, f"boolean options without a --no- form: {', '.join(missing)}"


def test_a_flag_takes_no_value():
    """`--polar true` is refused as an extra argument, and `--no-polar` sets the option to False."""
    from conftest import cli_spec

    assert cli_spec(polar=False).polar is False
    result = cli("run", "--polar", "true")
    assert result.returncode == 2 and "true" in result.stderr


FIXED_CHOICES = {
    ("run", "--orientation"): ("known", "random"),
    ("run", "--ties"): ("random", "optimistic"),
    ("run", "--optimizer"): ("adam", "adamw"),
    ("run", "--schedule"): ("constant", "milestones", "cosine"),
    ("run", "--bad-images"): ("fail", "skip"),
    ("run", "--channels-last"): ("auto", "on", "off"),
    ("eval RUN", "--index"): ("exact", "hnsw", "ivf"),
    ("leaderboard", "--format"): ("table", "markdown", "csv", "json"),
    ("data preview", "--subset"): ("train", "val"),
}


@pytest.mark.parametrize("command, option", list(FIXED_CHOICES))
def test_options_with_fixed_choices_list_them(command, option):
    """In --help (`<known|random>`) and in the error for any other value, before any work."""
    words = command.split()
    choices = FIXED_CHOICES[command, option]
    shown = cli(*(w for w in words if w != "RUN"), "--help", env={"COLUMNS": "250"})
    assert shown.returncode == 0 and "|".join(choices) in shown.stdout, shown.stdout
    wrong = cli(*words, option, "bogus", env={"COLUMNS": "250"})
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "bogus" in wrong.stderr and all(f"'{choice}'" in wrong.stderr for choice in choices), wrong.stderr


def test_every_spec_field_with_choices_is_a_choice_on_the_command_line():
    """The spec declares the choices; the run command offers exactly those."""
    run = _commands()["run"]
    declared = {f.name: f.metadata["choices"] for f in dataclasses.fields(RunSpec) if f.metadata.get("choices")}
    assert {"orientation", "ties", "one_percent", "hit_rate", "optimizer", "schedule", "bad_images"} <= set(declared)
    for param in run.params:
        if param.name in declared:
            assert typing.get_args(param.type_descriptor.annotation) == declared[param.name], param.name


def test_static_choices_match_the_modules_that_define_them():
    """Choices written out so that --help needs no torch or pandas: held equal to their source."""
    from cvbench.cli.leaderboard import HTML, Format
    from cvbench.data import SUBSETS
    from cvbench.evaluation.retrieval import INDEX_KINDS
    from cvbench.runs.leaderboard import FORMATS

    assert typing.get_args(Format) == (*FORMATS, HTML)  # html: cvbench.html_report's page, above the runs layer
    params = {(path, param.name): param for path, command in _commands().items() for param in command.params}
    assert typing.get_args(params["eval", "index"].type_descriptor.annotation) == INDEX_KINDS
    assert typing.get_args(params["data preview", "subset"].type_descriptor.annotation) == SUBSETS


def test_every_run_spec_field_has_a_flag():
    """Each RunSpec field is an option of `cvbench run` (`--pretrain-weight-decay`, ...), except NOT_OPTIONS."""
    from cvbench.cli.spec_options import cli_options

    run = _commands()["run"]
    flags = {opt for param in run.params for opt in (*param.opts, *param.secondary_opts)}
    by_field = {option.field: option.flag for option in cli_options()}
    missing = [f.name for f in dataclasses.fields(RunSpec)
               if f.name not in NOT_OPTIONS and by_field.get(f.name) not in flags]
    assert not missing, f"RunSpec fields without a `cvbench run` flag: {', '.join(missing)}"
    assert "--pretrain-weight-decay" in flags and "--data-option" in flags


def test_paper_preset_names_a_wrong_data_root_before_fetching_weights(monkeypatch, tmp_path):
    """The paper preset starts from ImageNet weights: a wrong --data-root is reported first, not after timm has
    retried the download for a minute."""
    import timm

    fetched = []

    def no_download(name, *args, **kwargs):
        fetched.append(name)
        raise RuntimeError(f"the test forbids building {name}")

    monkeypatch.setattr(timm, "create_model", no_download)
    result = cli("run", "--preset", "paper", "--dataset", "vigor", "--data-root", "/nonexistent",
                 "--runs-dir", str(tmp_path), env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    assert "data root /nonexistent is not a folder" in result.stderr and "Traceback" not in result.stderr
    assert fetched == [] and not any(tmp_path.iterdir())
