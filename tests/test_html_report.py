"""`cvbench report` and `cvbench leaderboard --format html`: one self-contained page, escaped, atomic.

The pages are read back with Python's own HTML parser; the browser's view of
them is tests/test_report_browser.py's.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from conftest import cli
from report_runs import CONVENTIONS_LINE, HOSTILE, LONG_SAMPLER_TEXT, record, write_run, write_runs


class Page(HTMLParser):
    """Every tag with its attributes, the text of each table row, and every <script>'s text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self.rows: list[list[str]] = []
        self._in_script = False
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def attributes(self, name: str) -> list[str]:
        return [attrs[name] for _, attrs in self.tags if attrs.get(name) is not None]

    def images(self) -> list[bytes]:
        return [base64.b64decode(src.split(",", 1)[1]) for tag, attrs in self.tags if tag == "img"
                for src in [attrs["src"]]]


def assert_self_contained(text: str) -> None:
    """No src or href leaves the file, nothing is imported by the style sheet, and the page forbids fetching."""
    page = Page(text)
    for value in page.attributes("src") + page.attributes("href"):
        assert value.startswith(("data:", "#")), value
    assert not re.search(r"url\(\s*['\"]?(?!data:)", text) and "@import" not in text
    policy = next(attrs["content"] for tag, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy")
    assert policy.startswith("default-src 'none'")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the hand-written runs of tests/report_runs.py: (runs folder, page text)."""
    root = tmp_path_factory.mktemp("report")
    folders = write_runs(root / "runs")
    result = cli("report", str(root / "runs"), "--out", str(root / "report.html"))
    assert result.returncode == 0, result.stderr
    return folders, (root / "report.html").read_text(encoding="utf-8")


def test_the_report_is_one_file_that_fetches_nothing(report):
    _, text = report
    assert_self_contained(text)
    page = Page(text)
    assert len(page.scripts) == 1 and "sortBy" in page.scripts[0]  # the script inline, and only ours
    assert not [attrs for tag, attrs in page.tags if tag == "link" and attrs.get("rel") == "stylesheet"]


def test_the_leaderboard_has_a_row_per_finished_run_best_r1_first_and_the_conventions_under_it(report):
    _, text = report
    page = Page(text)
    board = [attrs for tag, attrs in page.tags if tag == "table" and "leaderboard" in attrs.get("class", "")]
    assert [attrs["data-sort-by"] for attrs in board] == ["R@1"]
    runs = [attrs["data-run"] for tag, attrs in page.tags if tag == "tr" and "data-run" in attrs]
    assert runs == ["unmapped", "plain", "mapped", "hostile"]  # R@1 50, 40, 30, 10
    assert f'<p class="note">{CONVENTIONS_LINE}</p>' in text
    # the name, the settings the rows differ in, then the numbers; options only one row sets after them
    assert page.rows[0] == ["run", "head", "backbone", "R@1", "R@5", "error_median_m", "sampler options"]
    assert "Every row: pretrainer none, pretraining -, ground init random," in text  # what no row differs in, once
    assert re.search(r'<td class="number" data-value="50\.00">50\.00</td>', text)  # sorted as a number
    assert "Unfinished or failed runs" in text and "broken" in text  # listed apart, never ranked


def test_a_long_setting_is_clipped_to_one_line_and_kept_whole_in_its_title(report):
    _, text = report
    cell = f'<td title="{LONG_SAMPLER_TEXT}"><span class="clip">{LONG_SAMPLER_TEXT}</span></td>'
    assert cell in text
    style = re.search(r"<style>(.*?)</style>", text, re.S).group(1)
    assert re.search(r"table\.leaderboard td \{[^}]*white-space: nowrap", style)
    assert re.search(r"table\.leaderboard \.clip \{[^}]*overflow: hidden; text-overflow: ellipsis", style)


def test_the_most_used_metrics_come_first_whatever_order_the_records_hold_them_in():
    from cvbench.html_report.leaderboard_table import leaderboard_html, report_frame

    measured = {"acc@1m": 1.0, "error_mean_m": 2.0, "error_median_m": 3.0, "AP": 4.0, "R@10": 5.0, "R@1%": 6.0,
                "R@5": 7.0, "R@1": 8.0}
    entries = [record(name, 0.0, head=head) for name, head in (("a", "gem"), ("b", "safa"))]
    for entry in entries:
        entry["metrics"] = dict(measured)
    header = Page(leaderboard_html(report_frame(entries))).rows[0]
    assert header == ["run", "head", "R@1", "R@5", "R@10", "R@1%", "AP", "error_median_m", "acc@1m", "error_mean_m"]


def test_a_records_strings_are_escaped_not_run(report):
    _, text = report
    page = Page(text)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in text
    assert any(HOSTILE in cell for row in page.rows for cell in row)  # shown as the text it is
    assert sum(tag == "script" for tag, _ in page.tags) == 1


def test_each_runs_figures_are_inlined_byte_for_byte(report):
    folders, text = report
    images = Page(text).images()
    for name in ("curves.png", "embeddings.png"):
        assert (folders["mapped"] / "analysis" / name).read_bytes() in images
    assert text.index('alt="curves.png"') < text.index('alt="embeddings.png"')  # training first, as analyze orders


def test_a_run_with_predictions_gets_its_error_map_and_one_without_the_command(report):
    folders, text = report
    caption = "predictions_val.csv: 3 queries coloured by the error of their top-1 tile (median 100.1 m)"
    assert f'alt="{caption}"' in text
    maps = [data for data in Page(text).images() if data not in {p.read_bytes() for p in
                                                                (folders["mapped"] / "analysis").iterdir()}]
    assert len(maps) == 1
    width, height = Image.open(io.BytesIO(maps[0])).size
    assert (width, height) == (640, 520)
    assert f"cvbench eval {folders['unmapped']} --predictions 1" in text
    assert f"cvbench eval {folders['plain']} --predictions 1" not in text  # no coordinates: nothing to map


def test_an_error_map_in_metres_from_x_y_columns(tmp_path):
    from cvbench.html_report.error_map import map_html

    folder = write_run(tmp_path, record("xy", 20.0, coordinates=True))
    (folder / "predictions_val.csv").write_text("query,query_index,query_x,query_y,error_m\n"
                                                "a,0,0.0,0.0,5.0\nb,1,10.0,0.0,7.0\nc,2,0.0,10.0,30.0\n")
    text = map_html(folder, json.loads((folder / "result.json").read_text()))
    assert "3 queries coloured by the error of their top-1 tile (median 7.0 m)" in text
    old = write_run(tmp_path, record("old", 20.0, coordinates=True))
    (old / "predictions_val.csv").write_text("query,positive,top1,score1\n0,0,0,0.9\n")
    assert "holds no query positions" in map_html(old, {}) and "<img" not in map_html(old, {})


def test_an_error_maps_title_naming_a_long_run_folder_stays_inside_the_figure():
    """A run folder's name (50 to 100 characters with --name) made one title line that ran off the left edge."""
    import pandas as pd

    from cvbench.html_report.error_map import error_map_png

    frame = pd.DataFrame({"query_x": [0.0, 100.0, 200.0], "query_y": [0.0, 50.0, 100.0], "error_m": [1.0, 2.0, 3.0]})
    for title in ("20261206-013134-run-mybase-synthetic-none-safa-s0: cross_area queries",
                  f"20261206-013134-run-{'long_label' * 6}-synthetic-mocov2-safa-s0: val queries"):
        pixels = np.asarray(Image.open(io.BytesIO(error_map_png(frame, title))).convert("L"))
        assert pixels.shape == (520, 640)
        edges = np.concatenate([pixels[:, :2].ravel(), pixels[:, -2:].ravel(), pixels[:2].ravel(), pixels[-2:].ravel()])
        assert edges.min() == 255, title  # nothing drawn on the figure's border: no text cut off


def test_seeds_of_one_setting_merge_into_mean_and_95_percent_interval(tmp_path):
    for seed, r1 in ((0, 10.0), (1, 14.0)):
        write_run(tmp_path / "runs", record(f"s{seed}", r1, seed=seed))
    assert cli("report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html")).returncode == 0
    half = stats.t.ppf(0.975, 1) * np.std([10.0, 14.0], ddof=1) / math.sqrt(2)  # 12.706 * 2.828 / 1.414
    assert f"12.00 ± {half:.2f}" == "12.00 ± 25.41"
    assert '<td class="number" data-value="12.00">12.00 ± 25.41</td>' in (tmp_path / "r.html").read_text()


GRID = """
[bench]
title = "two heads"
seeds = [0, 1, 2]

[defaults]
dataset = "synthetic"
preset = "smoke"

[[rows]]
name = "base"

[[rows]]
name = "other"
head = "gem"

[[findings]]
question = "gem above safa?"
baseline = "base"
treatment = "other"
expected = "higher"
"""


def test_a_grids_report_holds_its_findings_with_their_intervals(tmp_path):
    from cvbench.bench.scheduler import plan
    from cvbench.bench.schema import load_bench

    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    scores = {"base": [10.0, 12.0, 11.0], "other": [15.0, 16.0, 18.0]}
    _, jobs = plan(load_bench(grid), tmp_path / "runs")
    for job in jobs:
        spec = job.spec.to_dict()
        if job.seed < 2:
            del spec["name"]  # written before a grid labelled its runs with the row's name: the folder says it
        entry = {"status": "finished", "spec": spec, "conventions": record("x", 0)["conventions"],
                 "metrics": {"R@1": scores[job.row][job.seed]}}
        folder = tmp_path / "runs" / job.row / f"seed{job.seed}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(entry))
    result = cli("report", str(grid), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    d = np.subtract(scores["other"], scores["base"])  # 5, 4, 7
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    text = (tmp_path / "r.html").read_text()
    assert "<h1>two heads</h1>" in text
    assert f"<td class=number>+{d.mean():.2f}</td><td>[+{d.mean() - half:.2f}, +{d.mean() + half:.2f}]</td>" \
        in text.replace('class="number"', "class=number")
    assert text.count("data-run=") == 2  # the two rows, each merged over its three seeds
    board = Page(text).rows
    assert board[0][:2] == ["name", "head"] and [row[0] for row in board[1:3]] == ["other", "base"]


def test_the_leaderboard_as_html_is_the_table_alone_and_self_contained(report, tmp_path):
    folders, _ = report
    runs = folders["mapped"].parent
    result = cli("leaderboard", str(runs), "--format", "html", "--out", str(tmp_path / "board.html"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "board.html").read_text()
    assert_self_contained(text)
    assert text.count("data-run=") == 4 and CONVENTIONS_LINE in text
    assert "<figure" not in text and "Findings" not in text


def test_a_folder_without_runs_is_named_and_an_existing_report_is_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "report.html"
    out.write_text("the old report")
    result = cli("report", str(tmp_path / "empty"), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'empty'}: no runs in it (no result.json below it); runs " \
                                    "are written there with --runs-dir"
    assert out.read_text() == "the old report" and sorted(os.listdir(tmp_path)) == ["empty", "report.html"]


def test_an_out_in_a_missing_or_unwritable_place_is_one_line(report, tmp_path):
    runs = report[0]["mapped"].parent
    result = cli("report", str(runs), "--out", str(tmp_path / "nowhere" / "r.html"))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: --out {tmp_path / 'nowhere' / 'r.html'}: the folder "
                                     f"{tmp_path / 'nowhere'} does not exist (create it first)")
    if Path("/proc").is_dir():  # not writable even for root
        result = cli("report", str(runs), "--out", "/proc/cvbench-report.html")
        assert result.returncode == 2 and result.stderr.startswith("error: --out /proc/cvbench-report.html: ")
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_argument_that_names_nothing_is_one_line(tmp_path):
    result = cli("report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'missing'}: no such runs folder, grid file or shipped grid "
                                     "(cvbench bench --list names the shipped grids)")


def test_a_folder_named_as_a_shipped_grid_with_its_rows_is_read_as_that_grids_results(tmp_path):
    from cvbench.bench.schema import load_bench, shipped_grids

    bench = load_bench(shipped_grids()["baselines_synthetic"])
    write_run(tmp_path / "baselines_synthetic" / "gem", record("lone", 5.0, head="gem"))
    result = cli("report", str(tmp_path / "baselines_synthetic"), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.html").read_text()
    assert f"<h1>{bench.title.replace(chr(39), '&#x27;')}</h1>" in text and "<h2>Findings</h2>" in text
    assert text.count(">not run</td>") == len(bench.findings)  # no row has two seeds of the grid's own runs
