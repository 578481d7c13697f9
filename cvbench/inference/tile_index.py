"""A saved tile index: the tiles' embeddings in a faiss inner-product index, their paths and coordinates beside it.

``INDEX_DIR/tiles.faiss``  the faiss index (exact inner product over unit rows: cosine similarity)
``INDEX_DIR/tiles.csv``    one row per tile, in index order: ``path`` and ``lat,lon`` or ``x,y``
``INDEX_DIR/index.json``   the run that embedded the tiles (name, path, a SHA-256 of its weights),
                           the spec fields that define the embedding, its size, the tile count and the source

An index is written into a fresh folder beside ``INDEX_DIR`` and swapped in
whole, so an interrupted ``cvbench index`` leaves the previous index intact.
Loading checks the three files agree, and :meth:`TileIndex.check_run` that
the run searching it is the run that built it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
from rich.progress import Progress

from ..atomic import write_json
from ..errors import CvbenchError, DatasetNotFoundError
from ..evaluation.localisation import Positions
from ..evaluation.retrieval import build_index
from .loaded_run import LoadedRun
from .places import COORDINATES
from .tiles import TileSource

FAISS_FILE = "tiles.faiss"
TABLE_FILE = "tiles.csv"
META_FILE = "index.json"
FORMAT = "cvbench tile index"
EXPECTED = f"a folder made by `cvbench index` ({META_FILE}, {FAISS_FILE}, {TABLE_FILE})"


class IndexMismatchError(CvbenchError):
    """An index searched with another run's embeddings than the ones it holds."""


@dataclass
class TileIndex:
    """The tiles' embeddings (``index``), their paths and positions in index order, and what built them (``meta``)."""

    index: faiss.Index
    paths: list[str]
    positions: Positions
    meta: dict[str, Any]
    folder: Path | None = None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def run(self) -> str:
        """The name of the run whose embeddings the index holds."""
        return str(self.meta["run"])

    def save(self, folder: str | Path) -> Path:
        """Write the index into ``folder``, replacing an earlier index there in one step."""
        folder = check_target(folder)
        fresh = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        faiss.write_index(self.index, str(fresh / FAISS_FILE))
        table = pd.DataFrame({"path": self.paths})
        for column, values in zip(COORDINATES[self.positions.kind], self.positions.values.T):
            table[column] = values
        table.to_csv(fresh / TABLE_FILE, index=False)
        write_json(fresh / META_FILE, self.meta)
        old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
        if folder.exists():
            folder.rename(old)
        fresh.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        self.folder = folder
        return folder

    def check_run(self, run: LoadedRun) -> None:
        """Refuse a run whose embeddings differ from the index's (other weights or another size), naming both."""
        where = self.folder or "INDEX_DIR"
        embedding = json.loads(json.dumps(run.embedding_spec()))  # as index.json holds it: lists, not tuples
        differ = sorted(name for name in set(embedding) | set(self.meta.get("embedding", {}))
                        if embedding.get(name) != self.meta.get("embedding", {}).get(name))
        if self.meta["fingerprint"] == run.fingerprint() and int(self.meta["dim"]) == run.dim and not differ:
            return
        if self.meta["fingerprint"] == run.fingerprint() and int(self.meta["dim"]) == run.dim:
            raise IndexMismatchError(f"index {where} was built by run {self.run} with the same weights as run "
                                     f"{run.name} but other {', '.join(differ)}; rebuild it with "
                                     f"`cvbench index {run.path} --tiles ... --out {where}`")
        raise IndexMismatchError(
            f"index {where} was built by run {self.run} (embedding size {self.meta['dim']}), but run {run.name} "
            f"(embedding size {run.dim}, other weights) was given to search it; rebuild it with "
            f"`cvbench index {run.path} --tiles ... --out {where}` or localize with run {self.run}")


def check_target(folder: str | Path) -> Path:
    """``folder`` if an index may be written there: new, empty, or an earlier index (else an error naming it)."""
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / META_FILE).is_file())):
        raise CvbenchError(f"--out {folder} exists and is not a tile index; expected a new folder or {EXPECTED}")
    return folder


def build_tile_index(run: LoadedRun, tiles: TileSource, progress: Progress | None = None,
                     batch_size: int | None = None) -> TileIndex:
    """Embed every tile through the run's aerial branch and index the embeddings (exact inner product)."""
    embeddings = run.embed([str(path) for path in tiles.paths], view="aerial", batch_size=batch_size,
                           progress=progress)
    meta = {"format": FORMAT, "run": run.name, "run_path": str(run.path.resolve()), "fingerprint": run.fingerprint(),
            "dim": run.dim, "embedding": run.embedding_spec(), "tiles": len(tiles),
            "coordinates": tiles.positions.kind, "source": tiles.described, "faiss": "IndexFlatIP"}
    return TileIndex(build_index(embeddings, "exact"), [str(path) for path in tiles.paths], tiles.positions, meta)


def load_tile_index(folder: str | Path) -> TileIndex:
    """The index saved in ``folder``; a missing or inconsistent folder is an error naming what was expected."""
    folder = Path(folder).expanduser()
    missing = [name for name in (META_FILE, FAISS_FILE, TABLE_FILE) if not (folder / name).is_file()]
    if missing:
        what = (f"lacks {', '.join(missing)}" if folder.is_dir() else
                "is a file, not a folder" if folder.exists() else "does not exist")
        raise DatasetNotFoundError(f"--index {folder} {what}; expected {EXPECTED}")
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT}")
        index = faiss.read_index(str(folder / FAISS_FILE))
        table = pd.read_csv(folder / TABLE_FILE)
        kind = meta["coordinates"]
        positions = Positions(kind, table[list(COORDINATES[kind])].to_numpy(np.float64))
        paths = table["path"].astype(str).tolist()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CvbenchError(f"--index {folder} cannot be read ({exc}); rebuild it with `cvbench index`") from None
    if index.ntotal != len(paths) or index.ntotal != meta.get("tiles") or index.d != meta.get("dim"):
        raise CvbenchError(f"--index {folder} is inconsistent: {index.ntotal} vectors of size {index.d}, "
                           f"{len(paths)} rows in {TABLE_FILE}, {META_FILE} says {meta.get('tiles')} tiles of size "
                           f"{meta.get('dim')}; rebuild it with `cvbench index`")
    return TileIndex(index, paths, positions, meta, folder)
