"""The ``synthetic`` dataset: procedurally generated cities seen from the street and from above."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvbench.contract import Dataset
from cvbench.data import CrossViewPairs

from .cache import SyntheticCache, cache_root
from .generate import SPLITS, generate, generation_units
from .options import SyntheticOptions


class Synthetic(Dataset):
    """Ground panoramas (queries) matched to satellite tiles (references) of generated cities.

    Splits: ``cross_area`` (default; train and val in different cities) and
    ``same_area`` (train and val shots from the same cities at disjoint
    places), each with ``train`` and ``val`` subsets. Generated on first use
    and cached under ``root``, else ``$CVBENCH_CACHE/synthetic``, else
    ``~/.cache/cvbench/synthetic``. Options (keyword; strings are coerced):

    - ``seed`` (0): every random draw derives from it.
    - ``layout`` ("aligned"): "aligned" puts each query at its own tile's centre
      (CVUSA, CVACT); "offset" covers each city with tiles on a grid of stride
      half a tile (VIGOR), the nearest tile positive and the other covering
      tiles semi-positives, and every subset's references cover its whole area.
    - ``num_train_cities`` (5), ``num_val_cities`` (2): cities of cross_area;
      same_area uses all of them. Val city j has train city j's style.
    - ``train_pairs`` (2000), ``val_pairs`` (1000): queries per subset.
    - ``tile_size`` (64): tile pixels per side. ``tile_metres`` (64.0): ground a tile covers.
    - ``pano_size`` ((32, 128)): panorama height and width, "HxW" or a pair; width divisible by 4.
    - ``city_size`` (768): side of each city in metres.
    - ``temporal_change`` (0.5): 0..1, how much cars, season and light differ between the views.
    - ``unknown_orientation`` (False): roll each panorama by a random yaw, recorded in ``yaw_deg``.
    - ``styles`` (all five): city styles to draw from, a list or comma-separated names
      of downtown, suburb, old_town, industrial, garden_city.
    """

    def __init__(self, root: Path | str | None = None, **options: Any) -> None:
        self.options = SyntheticOptions.parse(options)
        self.cache = SyntheticCache(cache_root(root), self.options)

    def splits(self) -> list[str]:
        """``["cross_area", "same_area"]``: the default first."""
        return list(SPLITS)

    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """The images as generated (``pano_size``, ``tile_size``): no resizing."""
        return {"ground": tuple(self.options.pano_size), "aerial": (self.options.tile_size, self.options.tile_size)}

    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` subset of ``split``, generated into the disk cache on first use."""
        if not self.cache.has(split, subset):
            unit = next(u for u in generation_units(split) if subset in u)
            for name, arrays in generate(self.options, split, unit).items():
                self.cache.write(split, name, arrays)
        return self.cache.read(split, subset)
