"""The plugin template in templates/cvbench-plugin installs as pip leaves a package, and its own tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import cli

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "cvbench-plugin"


def test_the_template_installs_registers_its_head_and_passes_its_own_tests(tmp_path):
    source, site = tmp_path / "cvbench-plugin", tmp_path / "site"
    shutil.copytree(TEMPLATE, source)  # pip builds in the source folder; keep the repository's copy clean
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                              "--no-build-isolation", "--target", str(site), str(source)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    assert list(site.glob("cvbench_maxpool-0.1.0.dist-info/entry_points.txt"))

    listing = cli("plugins", site=site)
    assert listing.returncode == 0, listing.stderr
    assert "maxpool" in listing.stdout and "cvbench-maxpool" in listing.stdout

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    shutil.rmtree(source / "src")  # the tests must import the installed package, not the source tree
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
                           cwd=source, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
