"""The built-in ``synthetic`` dataset plugin: procedurally generated cities, see ``docs/synthetic.md``."""

from __future__ import annotations

from cvbench.contract.hookspecs import hookimpl

from .dataset import Synthetic

__all__ = ["Synthetic", "register_datasets"]


@hookimpl
def register_datasets(register):
    """Register ``synthetic`` with cvbench."""
    register("synthetic", Synthetic,
             summary="generated cities: ground panoramas vs satellite tiles, VIGOR-like splits and layouts")
