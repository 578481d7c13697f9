"""The command line's own options: version and shell completion."""

from __future__ import annotations

from conftest import cli

import cvbench


def test_version_prints_the_installed_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cvbench {cvbench.__version__}"


def test_help_offers_shell_completion():
    result = cli("--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "--install-completion" in result.stdout and "--version" in result.stdout
