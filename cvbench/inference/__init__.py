"""A trained run put to work: embed images, index geo-tagged tiles, localise query images.

- :mod:`.loaded_run`: :func:`load_run` rebuilds a finished run's model; :meth:`LoadedRun.embed`
  embeds images exactly as the run's evaluation does.
- :mod:`.places`, :mod:`.tiles`: CSV files of images with positions, and where an index's tiles come from.
- :mod:`.tile_index`: the tiles' embeddings in a saved faiss index with their paths and coordinates.
- :mod:`.localize`: each query's top-k tiles, and its error in metres where the truth is known.
- :mod:`.outputs`: the results as CSV, GeoJSON or JSON.
"""

from .loaded_run import LoadedRun, load_run
from .localize import Localization, localize
from .outputs import FORMATS, write_localization
from .tile_index import IndexMismatchError, TileIndex, build_tile_index, load_tile_index
from .tiles import TileSource, read_tiles

__all__ = ["FORMATS", "IndexMismatchError", "Localization", "LoadedRun", "TileIndex", "TileSource",
           "build_tile_index", "load_run", "load_tile_index", "localize", "read_tiles", "write_localization"]
