"""``cvbench report``: one self-contained HTML page of a runs folder or a benchmark grid's results.

The page opens offline: its style sheet and script are inlined, every figure
is a ``data:`` URI, and a Content-Security-Policy forbids the browser to fetch
anything. Every string from a record (run names, options, tags) is escaped.

Modules, one concept each: :mod:`.leaderboard_table` (the sortable table, from
the leaderboard's own frame), :mod:`.figures` (inlined images and a run's
analysis figures), :mod:`.error_map` (query positions coloured by error),
:mod:`.findings` (a grid's findings, from :mod:`cvbench.bench.report`),
:mod:`.source` (what the command's argument names) and :mod:`.page` (the page).
"""

from __future__ import annotations
