"""The report page: one HTML file holding the leaderboard, a grid's findings and every run's figures and map.

The style sheet and script (``report.css``, ``report.js`` beside this
module) are inlined, the figures are ``data:`` URIs, and the page's
Content-Security-Policy lets the browser load nothing else: the file opens
offline, mailed or moved, and a stray reference would show up as a console
error rather than a silent request.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import write_text
from ..errors import CvbenchError
from ..runs.folder import RunFolder
from .elements import command, paragraph, plain_table, text
from .error_map import has_coordinates, map_html
from .figures import figure_file, run_figures
from .findings import findings_html
from .leaderboard_table import leaderboard_html, report_frame
from .source import ReportSource

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def asset(name: str) -> str:
    """``report.css`` or ``report.js``, shipped beside this module (package data)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body`` (already HTML), with the style and script inlined."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<link rel="icon" href="data:,">\n<title>{text(title)}</title>\n'
            f"<style>\n{asset('report.css')}</style>\n</head>\n<body>\n{body}\n"
            f"<script>\n{asset('report.js')}</script>\n</body>\n</html>\n")


def check_out(out: Path) -> None:
    """A one-line error, before any work, when ``out`` cannot be written: its folder is missing or read-only,
    or it is a folder."""
    folder = out.parent
    if not folder.is_dir():
        raise CvbenchError(f"--out {out}: the folder {folder} does not exist (create it first)")
    if out.is_dir():
        raise CvbenchError(f"--out {out}: is a folder; expected an HTML file name")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise CvbenchError(f"--out {out}: not writable")


def write_page(out: Path, html: str) -> Path:
    """Write the page atomically (a reader sees the old file or the new one); a one-line error if it fails."""
    check_out(out)
    try:
        write_text(out, html)
    except OSError as exc:
        raise CvbenchError(f"--out {out}: could not write it ({exc.strerror or exc})") from None
    return out


def _run_section(folder: RunFolder, record: dict[str, Any]) -> str | None:
    """One run's figures (``cvbench analyze``) and error map, in an open block; None when it has neither."""
    parts = [figure_file(path) for path in run_figures(folder.path)]
    error_map = map_html(folder.path, record)
    if not parts and "<img" not in error_map:
        return None
    if not parts:
        parts = [f'<p class="note">No figures yet: {command(f"cvbench analyze {folder.path}")} draws them.</p>']
    return (f'<details class="run" open id="run-{text(folder.name)}"><summary>{text(record.get("run"))} '
            f'<span class="note">({text(record.get("status"))})</span></summary>'
            f'<div class="figures">{error_map}{"".join(parts)}</div></details>')


def _to_draw(entries: list[tuple[RunFolder, dict[str, Any]]]) -> str:
    """The runs with nothing to show yet, one line each, with the commands that draw their figures and map."""
    rows = [(record.get("run"), record.get("status"), f"cvbench analyze {folder.path}",
             f"cvbench eval {folder.path} --predictions 1" if has_coordinates(record) else "")
            for folder, record in entries]
    return (f'<details class="run"><summary>{len(rows)} runs without figures or map yet</summary>'
            + plain_table(("run", "status", "figures", "error map (queries with coordinates)"), rows) + "</details>")


def _runs_html(entries: list[tuple[RunFolder, dict[str, Any]]]) -> list[str]:
    """Every run that has figures or a map, then the list of the others."""
    shown, bare = [], []
    for folder, record in entries:
        section = _run_section(folder, record)
        if section is None:
            bare.append((folder, record))
        else:
            shown.append(section)
    return shown + ([_to_draw(bare)] if bare else [])


def named_by_row(record: dict[str, Any], row: str | None) -> dict[str, Any]:
    """The record labelled with its grid row's name where it carries no ``--name`` of its own, as a grid labels
    its runs today; runs written before that would otherwise show no name, and two rows read alike."""
    spec = record.get("spec")
    if row is None or not spec or spec.get("name"):
        return record
    return {**record, "spec": {**spec, "name": row}}


def report_html(source: ReportSource, label: str) -> str:
    """The report page of ``source``; ``label`` is how the page names what it reports (the command's argument)."""
    folders = RunFolder.all_under(source.runs_dir)
    if not folders:
        raise CvbenchError(f"{source.runs_dir}: no runs in it (no result.json below it); runs are written there "
                           "with --runs-dir")
    entries = [(folder, folder.record()) for folder in folders]
    records = [named_by_row(record, source.row_of(folder.path)) for folder, record in entries]
    title = source.bench.title if source.bench is not None else f"cvbench report: {label}"
    body = [f"<h1>{text(title)}</h1>",
            f'<p class="source">Runs in <code>{text(source.runs_dir)}</code>; '
            f"written by {command(f'cvbench report {label}')}. R@k in percent. Click a header to sort.</p>",
            "<h2>Leaderboard</h2>", leaderboard_html(report_frame(records))]
    if source.bench is not None:
        body += ["<h2>Findings</h2>", findings_html(source.bench, source.runs_dir)]
    shown = [(folder, record) for folder, record in entries if record.get("stage") != "pretrain"]
    body += ["<h2>Runs</h2>",
             paragraph("Each run's figures (cvbench analyze) and, where its queries have coordinates, a map of "
                       "their positions coloured by the localisation error of the top-1 tile.")]
    body += _runs_html(shown)
    return page(title, "\n".join(body))


def leaderboard_page(frame: pd.DataFrame, label: str) -> str:
    """``cvbench leaderboard --format html``: the sortable leaderboard alone, as a page that opens offline."""
    title = f"cvbench leaderboard: {label}"
    return page(title, f"<h1>{text(title)}</h1>\n" + leaderboard_html(frame))


def write_report(source: ReportSource, out: Path, label: str) -> Path:
    """Build the page and write it atomically to ``out``; the path written."""
    return write_page(out, report_html(source, label))
