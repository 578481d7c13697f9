"""``hard_negatives``: each batch holds pairs the current model confuses, mined at the start of every epoch.

Sample4Geo's recipe [0] after its first epoch: embed the training queries
and tiles with the model as it is, find for each query the ``pool`` tiles
it scores highest besides its own (faiss, exact inner product), and fill
its batch with the pairs of those tiles. Of the ``count`` companions a pair
pulls in, a share ``1 - random_share`` are its nearest tiles' pairs and the
rest are drawn at random from the remaining tiles of its pool (Sample4Geo:
half and half), so a batch is hard without being always the same. The
first epoch, before the model knows anything, uses ``first_epoch``:
``gps_neighbours`` (Sample4Geo on VIGOR; needs coordinates) or
``conflict_free``. Mining costs one embedding pass over the training pairs
per epoch; the run records it as ``mining_s``.

- [0] Deuser, Habel, Oswald. "Sample4Geo: Hard negative sampling for
  cross-view geo-localisation", ICCV 2023.
"""

from __future__ import annotations

import math

import faiss
import numpy as np
import torch

from cvbench import Batching, Sampler
from cvbench.contract.hookspecs import Register, hookimpl
from cvbench.contract.options import require_choice, require_float, require_int
from cvbench.data.sampling import fill_batches
from cvbench.errors import SpecError

from .gps_neighbours import GPSNeighbours

FIRST_EPOCH = ("conflict_free", "gps_neighbours")


class HardNegatives(Sampler):
    """Batches of pairs the model confuses: ``count`` companions per pair from its ``pool`` hardest tiles."""

    mines = True

    def __init__(self, count: int = 8, pool: int = 32, random_share: float = 0.5, first_epoch: str = "conflict_free",
                 radius: float = 500.0) -> None:
        self.count = require_int("hard_negatives", "count", count, minimum=1)
        self.pool = require_int("hard_negatives", "pool", pool, minimum=1)
        if self.pool < self.count:
            raise SpecError(f"hard_negatives: pool {self.pool} must hold at least the count {self.count} of "
                            "companions drawn from it")
        self.random_share = require_float("hard_negatives", "random_share", random_share, low=0.0, high=1.0)
        self.first_epoch = require_choice("hard_negatives", "first_epoch", first_epoch, FIRST_EPOCH)
        self.gps = GPSNeighbours(count=self.count, radius=radius) if self.first_epoch == "gps_neighbours" else None

    def check(self, batching: Batching) -> None:
        tiles = len(np.unique(batching.tiles))
        if self.count >= batching.batch_size:
            raise SpecError(f"hard_negatives: count {self.count} companions and the pair itself do not fit a batch "
                            f"of {batching.batch_size}; use --sampler-option count=N with N < --batch-size")
        if self.pool >= tiles:
            raise SpecError(f"hard_negatives: pool {self.pool} hard tiles per pair, but the training pairs hold "
                            f"{tiles} tiles in all; use --sampler-option pool=N with N < {tiles}")
        if self.gps is not None:
            self.gps.check(batching)

    def plan(self, batching: Batching) -> list[list[int]]:
        self.check(batching)
        if batching.epoch == 1:
            if self.gps is not None:
                return self.gps.plan(batching)
            order = torch.randperm(len(batching.conflicts), generator=batching.generator).tolist()
            return fill_batches(order, batching.conflicts, batching.batch_size)
        companions = self.mine(batching)
        order = torch.randperm(len(batching.conflicts), generator=batching.generator).tolist()
        return fill_batches(order, batching.conflicts, batching.batch_size, companions=companions.__getitem__)

    def mine(self, batching: Batching) -> list[list[int]]:
        """Each pair's companions: the pairs of its nearest tiles and of randomly drawn further tiles in its pool."""
        queries, gallery = batching.embed()
        tiles = np.asarray(batching.tiles)
        candidates = np.unique(tiles)  # only tiles of some training pair can bring a pair into a batch
        index = faiss.IndexFlatIP(gallery.shape[1])
        index.add(np.ascontiguousarray(gallery[candidates], dtype=np.float32))
        widest = max(len(c) for c in batching.conflicts)
        _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32),
                                min(self.pool + widest, len(candidates)))
        pairs_of: dict[int, list[int]] = {}
        for item, tile in enumerate(tiles.tolist()):
            pairs_of.setdefault(int(tile), []).append(item)
        nearest = math.ceil(self.count * (1.0 - self.random_share))
        shuffle = torch.rand(len(tiles), self.pool, generator=batching.generator).argsort(dim=1).numpy()
        result = []
        for item, row in enumerate(candidates[found]):
            own = set(batching.conflicts[item])
            hard = [int(tile) for tile in row if tile not in own][: self.pool]
            far = hard[nearest:]
            drawn = [far[j] for j in shuffle[item] if j < len(far)][: self.count - nearest]
            result.append([pair for tile in hard[:nearest] + drawn for pair in pairs_of[tile]])
        return result


@hookimpl
def register_samplers(register: Register) -> None:
    """Register ``hard_negatives``."""
    register("hard_negatives", HardNegatives, summary="batches of pairs the model confuses, mined each epoch with "
                                                      "faiss (Sample4Geo)")
