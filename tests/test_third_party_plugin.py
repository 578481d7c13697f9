"""A third-party package registers through the entry-point group and works in every command."""

from __future__ import annotations

import json

from conftest import SMALL_WORLD_ARGS, cli, make_distribution, run_cli

HEAD_PACKAGE = """
import torch
from torch import nn
from cvbench.hookspecs import hookimpl


class MaxPoolHead(nn.Module):
    '''Global max pooling then a linear map.'''

    def __init__(self, in_channels, feature_hw, dim, **options):
        super().__init__()
        self.linear = nn.Linear(in_channels, dim)

    def forward(self, fmap):
        return self.linear(fmap.amax(dim=(2, 3)))


@hookimpl
def register_heads(register):
    register("maxpool", MaxPoolHead, summary="global max pool + linear (acme)")
"""


def test_third_party_head_is_listed_and_runs_end_to_end(tmp_path):
    site = make_distribution(tmp_path / "site", "acme-cvbench", "acme_cvbench", HEAD_PACKAGE,
                             {"acme": "acme_cvbench"})
    listing = cli("plugins", site=site)
    assert listing.returncode == 0, listing.stderr
    assert "maxpool" in listing.stdout and "acme-cvbench" in listing.stdout

    runs = tmp_path / "runs"
    result = run_cli("run", "--preset", "smoke", "--head", "maxpool", "--dim", "64", "--runs-dir", str(runs),
                     "--quiet", *SMALL_WORLD_ARGS, site=site)
    assert result.returncode == 0, result.stderr
    (record_path,) = runs.glob("*/result.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "finished"
    assert record["spec"]["head"] == "maxpool"
    assert set(record["metrics"]) >= {"R@1", "R@5", "R@10", "R@1%"}


def test_disable_env_skips_third_party_packages(tmp_path):
    site = make_distribution(tmp_path / "site", "acme-cvbench", "acme_cvbench", HEAD_PACKAGE,
                             {"acme": "acme_cvbench"})
    listing = cli("plugins", site=site, env={"CVBENCH_DISABLE_PLUGINS": "1"})
    assert listing.returncode == 0, listing.stderr
    assert "maxpool" not in listing.stdout and "safa" in listing.stdout


def test_a_module_that_fails_to_import_is_named_and_the_rest_work(tmp_path):
    site = make_distribution(tmp_path / "site", "broken-cvbench", "broken_cvbench",
                             "raise ImportError('needs libfoo')\n", {"broken": "broken_cvbench"})
    listing = cli("plugins", site=site)
    assert listing.returncode == 0, listing.stderr
    text = " ".join(listing.stdout.split())  # rich wraps long lines at the terminal width
    assert "broken_cvbench" in text and "needs libfoo" in text
    assert "safa" in listing.stdout


def test_a_clashing_name_is_an_error_naming_both_packages(tmp_path):
    clash = HEAD_PACKAGE.replace('register("maxpool"', 'register("safa"')
    site = make_distribution(tmp_path / "site", "acme-cvbench", "acme_cvbench", clash, {"acme": "acme_cvbench"})
    result = cli("plugins", site=site)
    assert result.returncode == 2
    assert "'cvbench'" in result.stderr and "'acme-cvbench'" in result.stderr


def test_unknown_plugin_on_the_command_line_fails_fast(tmp_path):
    result = cli("run", "--preset", "smoke", "--head", "saffa", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "did you mean 'safa'" in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_misspelled_hook_is_an_error_naming_the_hook_and_the_module(tmp_path):
    misspelled = HEAD_PACKAGE.replace("def register_heads(", "def register_head(")
    site = make_distribution(tmp_path / "site", "acme-cvbench", "acme_cvbench", misspelled, {"acme": "acme_cvbench"})
    result = cli("plugins", site=site)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    assert "unknown hook 'register_head'" in line and "did you mean 'register_heads'" in line
    assert "'acme_cvbench'" in line and "'acme-cvbench'" in line
