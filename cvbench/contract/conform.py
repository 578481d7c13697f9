"""Hold a built plugin to its kind's contract, and give a duck-typed one the declared defaults.

The base classes declare each optional capability with its default. A
plugin that subclasses nothing (the duck-typed contract ``docs/plugins.md``
has documented from the start) gets those defaults set on the built object
here, once, so the engine reads ``loss.needs_images`` and calls
``loss.attach(model)`` on every plugin alike.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from torch import nn

from .augmentation import Augmentation
from .dataset import GROUND_VIEWS, Dataset
from .logger import Logger
from .loss import Loss
from .metric import SECTIONS, Metric
from .pretrainer import Pretrainer
from .sampler import Sampler

BASES: dict[str, type] = {"pretrainer": Pretrainer, "loss": Loss, "dataset": Dataset,
                          "augmentation": Augmentation, "metric": Metric, "sampler": Sampler,
                          "logger": Logger}
# kind -> optional capability -> "flag" (a bool), "method" (callable), "section" (one of SECTIONS) or
# "ground_view" (one of GROUND_VIEWS)
OPTIONAL: dict[str, dict[str, str]] = {
    "pretrainer": {"shuffles_batchnorm": "flag", "after_step": "method"},
    "loss": {"needs_images": "flag", "attach": "method", "after_step": "method"},
    "dataset": {"image_sizes": "method", "inventory": "method", "ground_view": "ground_view"},
    "metric": {"section": "section"},
    "sampler": {"mines": "flag", "check": "method"},
    "logger": {"log_hyperparameters": "method", "log_artifact": "method", "finish": "method"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "pretrainer": ("augmentations",),
    "dataset": ("splits", "load"),
    "sampler": ("plan",),
    "logger": ("start", "log_metrics"),
}
MODULE_KINDS = ("pretrainer", "head", "loss")
CALLABLE = {"augmentation": "a callable (panorama, tile) -> (panorama, tile)",
            "metric": "a callable (retrieval) -> dict of named values"}


def conform(kind: str, built: Any) -> str | None:
    """Check ``built`` against ``kind``'s contract and fill in missing optional capabilities.

    Returns None when ``built`` conforms, else what was expected instead
    (the registry turns that into an error naming the plugin).
    """
    if kind in MODULE_KINDS and not isinstance(built, nn.Module):
        return "a torch.nn.Module"
    if kind in CALLABLE and not callable(built):
        return CALLABLE[kind]
    if kind == "pretrainer" and not isinstance(getattr(built, "backbone", None), nn.Module):
        return "an nn.Module that keeps the backbone it was given as `.backbone`"
    missing = [name for name in REQUIRED.get(kind, ()) if not callable(getattr(built, name, None))]
    if missing:
        return f"an object with {' and '.join(f'{name}()' for name in missing)}"
    base = BASES.get(kind)
    for name, shape in OPTIONAL.get(kind, {}).items():
        if not hasattr(built, name):
            default = getattr(base, name)
            try:
                setattr(built, name, types.MethodType(default, built) if shape == "method" else default)
            except (AttributeError, TypeError):
                return f"an object that declares {name!r} (see cvbench.{base.__name__})"
        value = getattr(built, name)
        if shape == "flag" and not isinstance(value, bool):
            return f"{name} to be True or False, not {value!r}"
        if shape == "method" and not callable(value):
            return f"{name} to be a method, not {type(value).__name__}"
        if shape == "section" and value not in SECTIONS:
            return f"section to be one of {', '.join(SECTIONS)}, not {value!r}"
        if shape == "ground_view" and value not in GROUND_VIEWS:
            return f"ground_view to be one of {', '.join(GROUND_VIEWS)}, not {value!r}"
    return None


def factory_declares(factory: Callable[..., Any], keyword: str) -> bool:
    """Whether a factory names ``keyword`` among its parameters (a pretrainer's ``total_steps``)."""
    try:
        return keyword in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a factory without a signature Python can read
        return False


def label_column(factory: Callable[..., Any]) -> str | None:
    """The metadata column a pretrainer learns (:attr:`Pretrainer.label_column`), read from its factory."""
    column = getattr(factory, "label_column", None)
    return column if isinstance(column, str) else None


def requirements(factory: Callable[..., Any]) -> tuple[tuple[str, ...], str]:
    """The modules a logger's factory needs and the cvbench extra that installs them (:attr:`Logger.requires`)."""
    modules = getattr(factory, "requires", ())
    extra = getattr(factory, "extra", "")
    valid = isinstance(modules, (tuple, list)) and all(isinstance(module, str) for module in modules)
    return (tuple(modules) if valid else ()), (extra if isinstance(extra, str) else "")


def static_image_sizes(factory: Callable[..., Any]) -> Callable[[], Any] | None:
    """A dataset class's ``image_sizes`` when it is a staticmethod (readable without the data), else None."""
    if isinstance(inspect.getattr_static(factory, "image_sizes", None), staticmethod):
        return factory.image_sizes
    return None
