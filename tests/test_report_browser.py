"""The report as a browser shows it: headless Chromium renders the written page and dumps its DOM.

One launch checks what a reader sees after the page's own script ran: the
leaderboard has one row per finished run, sorted by R@1 (the rows are
shuffled in the file first, so the order seen is the script's), every figure
decoded (the script marks each ``data-decoded="true"``), and the console
stayed silent: no script error, no request refused by the page's
Content-Security-Policy. A probe script the test adds reads each row's
rendered height: a long setting must not make its row taller than the others.
Chromium is Debian's package (``make browser`` installs it); without it the test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import cli
from report_runs import write_runs

PROBE = """<script>
document.querySelectorAll("table.leaderboard tbody tr").forEach(function (row) {
  row.dataset.height = row.getBoundingClientRect().height;
});
</script>
"""
"""The test's own instrument, run after the page's script: each leaderboard row's height as laid out."""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="no chromium or chromium-browser on PATH (install it: make browser)")
def test_the_report_renders_sorted_with_every_figure_decoded_and_a_silent_console(tmp_path):
    write_runs(tmp_path / "runs")
    out = tmp_path / "report.html"
    assert cli("report", str(tmp_path / "runs"), "--out", str(out)).returncode == 0
    text = out.read_text(encoding="utf-8")
    body = re.search(r'(<table class="sortable leaderboard"[^>]*>.*?<tbody>)(.*?)(</tbody>)', text, re.S)
    rows = re.findall(r"<tr .*?</tr>", body.group(2), re.S)
    shuffled = [rows[2], rows[0], rows[3], rows[1]]
    out.write_text(text.replace(body.group(2), "".join(shuffled)).replace("</body>", PROBE + "</body>"),
                   encoding="utf-8")

    result = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                             "--v=0", "--virtual-time-budget=5000", "--dump-dom", out.as_uri()],
                            capture_output=True, text=True, timeout=120)
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    board = re.search(r'<table class="sortable leaderboard"([^>]*)>(.*?)</table>', dom, re.S)
    assert 'data-sorted-by="R@1"' in board.group(1) and 'data-order="descending"' in board.group(1)
    order = re.findall(r'<tr data-run="([^"]*)"', board.group(2))
    assert order == ["unmapped", "plain", "mapped", "hostile"]  # one row per finished run, R@1 50, 40, 30, 10
    heights = re.findall(r'<tr data-run="[^"]*"[^>]*data-height="([\d.]+)"', board.group(2))
    assert len(heights) == 4 and len(set(heights)) == 1, heights  # plain's long sampler options on one line too
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 3  # two figures of `mapped` and its error map
    assert all('data-decoded="true"' in image for image in images), images
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
