"""What a user and a packager read about cvbench itself: licence, citation, changelog, type marker, metadata.

The wheel is built from this tree (setuptools, offline, about a second) so
the checks read what ``pip install`` would install, not the source files.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THESIS = "Improving Cross-View Matching with Self-Supervised Learning"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """cvbench's wheel, built from a copy of this tree's packaging inputs."""
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("cvbench", "plugins"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; "
                            f"print(build_meta.build_wheel({str(dist)!r}))"],
                           cwd=source, capture_output=True, text=True, check=True)
    return zipfile.ZipFile(dist / built.stdout.strip().splitlines()[-1])


def _metadata(wheel: zipfile.ZipFile):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def test_the_license_file_is_the_mit_text_that_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "MIT" and text.startswith("MIT License\n")
    assert "Copyright (c) 2026 cvbench contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_the_citation_names_cvbench_and_the_thesis_it_reproduces():
    text = (ROOT / "CITATION.cff").read_text()
    assert f'title: "{THESIS}"' in text and "cff-version: 1.2.0" in text
    yaml = pytest.importorskip("yaml")  # the full check where PyYAML is installed (it is with the test extras)
    citation = yaml.safe_load(text)
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["title"].startswith("cvbench") and citation["license"] == "MIT"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert citation["version"] == version
    (thesis,) = [ref for ref in citation["references"] if ref["type"] == "thesis"]
    assert thesis["title"] == THESIS and thesis["year"] == 2022
    assert thesis["authors"] == [{"family-names": "Cui", "given-names": "Jianfeng"}]


def test_the_changelog_has_an_unreleased_section_above_0_1_0():
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings[0] == "## Unreleased" and headings[-1].startswith("## 0.1.0 - ")


def test_the_wheel_carries_the_type_marker_the_license_and_the_metadata(wheel):
    names = wheel.namelist()
    assert "cvbench/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Intended Audience :: Science/Research" in classifiers
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)


def test_the_installed_package_is_typed_and_has_its_metadata():
    """After ``pip install -e .``: what type checkers and ``pip show`` read from this environment."""
    assert importlib.resources.files("cvbench").joinpath("py.typed").is_file()
    metadata = importlib.metadata.metadata("cvbench")
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or []), "reinstall: pip install --no-deps -e ."
    assert any(url.startswith("Changelog, ") for url in metadata.get_all("Project-URL") or [])
