"""The built-in ``shapes`` dataset plugin: drawn objects and textures, the out-of-domain ImageNet stand-in.

See ``docs/datasets.md`` and :class:`.dataset.Shapes`.
"""

from __future__ import annotations

from cvbench.contract.hookspecs import hookimpl

from .dataset import Shapes

__all__ = ["Shapes", "register_datasets"]


@hookimpl
def register_datasets(register):
    """Register ``shapes`` with cvbench."""
    register("shapes", Shapes,
             summary="drawn objects and textures with class labels: an out-of-domain ImageNet stand-in")
