"""Datasets from the engine's side: the contract's types, layouts on disk, checks, loading and batching.

A dataset plugin returns :class:`CrossViewPairs` of image lists
(:class:`FileImages`, :class:`ArrayImages`), importable from here::

    from cvbench.data import CrossViewPairs, FileImages

- :mod:`.images`, :mod:`.pairs`: image lists and the pairs of a protocol's subset.
- :mod:`.layout`, :mod:`.problems`, :mod:`.entries`: the helpers dataset plugins
  use to check a folder and the entries of its list files (repeats, empty
  lists, paths outside the root), reporting what is wrong, naming file and line.
- :mod:`.imagecheck`, :mod:`.check`: ``cvbench data check``'s image and dataset checks.
- :mod:`.loaders`, :mod:`.augment`, :mod:`.polar`: images to tensors, view
  transforms, the polar transform of aerial tiles.
- :mod:`.sampling`: which pairs share a fine-tuning batch.
- :mod:`.preview`: contact sheets of a dataset's pairs.
"""

from .images import ArrayImages, ConcatImages, FileImages, ImageList, IndexedImages, read_image, take_images
from .pairs import QUERY_VIEWS, SUBSETS, CrossViewDataset, CrossViewPairs, load_subset

__all__ = ["QUERY_VIEWS", "SUBSETS", "ArrayImages", "ConcatImages", "CrossViewDataset", "CrossViewPairs", "FileImages",
           "ImageList",
           "IndexedImages", "load_subset", "read_image", "take_images"]
