"""The few HTML elements the report writes, each filled with escaped text.

Everything shown on the page passes through :func:`text` (``html.escape``),
so a run name or an option value holding ``<script>`` reads as text.
"""

from __future__ import annotations

import html
from typing import Iterable


def text(value: object) -> str:
    """``value`` as HTML text, quotes escaped too (safe inside an attribute)."""
    return html.escape(str(value), quote=True)


def paragraph(value: str, css: str = "note") -> str:
    """A paragraph of plain (escaped) text."""
    return f'<p class="{css}">{text(value)}</p>'


def command(words: str) -> str:
    """A command a reader can type, as code."""
    return f"<code>{text(words)}</code>"


def plain_table(headers: Iterable[str], rows: Iterable[Iterable[object]], numeric: Iterable[bool] | None = None,
                css: str = "") -> str:
    """A table of escaped cells; columns flagged in ``numeric`` are right-aligned."""
    headers = list(headers)
    flags = list(numeric) if numeric is not None else [False] * len(headers)
    align = [' class="number"' if flag else "" for flag in flags]
    head = "".join(f"<th{a}>{text(h)}</th>" for h, a in zip(headers, align))
    body = "".join("<tr>" + "".join(f"<td{a}>{text(cell)}</td>" for cell, a in zip(row, align)) + "</tr>"
                   for row in rows)
    classes = f' class="{css}"' if css else ""
    return f'<div class="table-wrap"><table{classes}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
