"""The plugin contract as code: one base class (or Protocol) per plugin kind.

Each class declares what the engine calls and every optional capability
with its default, so a plugin author reads the whole interface here and the
engine never probes for an attribute. Subclassing is optional: a plugin
written to the duck-typed contract of ``docs/plugins.md`` works unchanged,
because :func:`conform` gives a built object that does not subclass its
kind's base class the defaults it does not declare itself.
"""

import importlib
from typing import Any

SOURCES = {"Augmentation": "augmentation", "Batching": "sampler", "Conventions": "metric", "Dataset": "dataset",
           "Head": "head", "Logger": "logger", "Loss": "loss", "Metric": "metric", "Pretrainer": "pretrainer",
           "Retrieval": "metric", "Sampler": "sampler", "conform": "conform", "factory_declares": "conform"}
"""Each public name and its module. They import torch, so each is imported when first used (PEP 562): the light
modules of this package (``options``, ``hookspecs``) load without torch, for ``cvbench --help``. ``conform`` is
also a module's name, which the import system binds here once that module is imported by name: code inside
cvbench imports the function from ``.conform``."""


def __getattr__(name: str) -> Any:
    """``cvbench.contract.Dataset``, ...: imported from its module on first use, then kept."""
    if name not in SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{SOURCES[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = list(SOURCES)
