"""The dataset kind: a benchmark's protocols, each a ``train`` and a ``val`` subset of cross-view pairs."""

from __future__ import annotations

import abc

from typing import Any, Callable, ClassVar

from ..data import SUBSETS, CrossViewPairs
from ..errors import SpecError

GROUND_VIEWS = ("panorama", "image")


class Dataset(abc.ABC):
    """Base class of a dataset plugin, built as ``factory(root, **options)``.

    A subclass implements :meth:`splits` and :meth:`read`; the template
    :meth:`load` checks the split and the subset once, here, reads each
    ``(split, subset)`` once, and keeps it. :meth:`image_sizes` is optional.
    ``ground_view`` says what the ground images are: ``"panorama"`` (the
    default: equirectangular, column 0 facing north, so ``--fov`` and
    ``--orientation`` apply) or ``"image"`` (an ordinary photo, such as
    University-1652's drone views).
    """

    ground_view: ClassVar[str] = "panorama"

    @abc.abstractmethod
    def splits(self) -> list[str]:
        """The protocols this dataset offers (VIGOR: ``same_area``, ``cross_area``); the first is the default."""

    @abc.abstractmethod
    def read(self, split: str, subset: str) -> CrossViewPairs:
        """The pairs of ``subset`` (``train`` or ``val``) of ``split``, both already checked by :meth:`load`."""

    def image_sizes(self) -> dict[str, tuple[int, int]] | None:
        """The ``ground`` and ``aerial`` ``(H, W)`` sizes that suit this dataset (``--ground-size auto``).

        Default None: the user gives both sizes. Declared as a
        ``staticmethod``, the sizes are read without opening the dataset, so
        a spec resolves (``cvbench bench --dry-run``) where the data is absent.
        """
        return None

    def inventory(self) -> dict[str, str] | None:
        """What the folder holds, by part (``{"train/drone": "701 buildings, 37854 images"}``), for ``data check``.

        Default None: the check shows the counts of each protocol's subsets only.
        """
        return None

    def load(self, split: str, subset: str) -> CrossViewPairs:
        """The ``train`` or ``val`` subset of protocol ``split``, read on first use and then kept."""
        offered = list(self.splits())
        if split not in offered:
            raise SpecError(f"{self.describe()} has no split {split!r}; it offers: {', '.join(offered)}")
        if subset not in SUBSETS:
            raise SpecError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
        loaded: dict[tuple[str, str], CrossViewPairs] = self.__dict__.setdefault("_cvbench_loaded", {})
        if (split, subset) not in loaded:
            loaded[split, subset] = self.read(split, subset)
        return loaded[split, subset]

    def describe(self) -> str:
        """How errors name this dataset: by default "the <class name, lower case> dataset"."""
        return f"the {type(self).__name__.lower()} dataset"


def ground_view_of(factory: Callable[..., Any]) -> str:
    """A dataset factory's ``ground_view``, read without building it ("panorama" where it declares none)."""
    view = getattr(factory, "ground_view", "panorama")
    return view if isinstance(view, str) else "panorama"
