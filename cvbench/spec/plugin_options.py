"""A resolved spec's plugin options, typed by the signatures of the plugins that take them.

``--head-option p=3`` is the text ``"3"`` until the head is known; then
a head's ``p: float`` makes it ``3.0`` and a ``str`` parameter keeps ``"3"``
(:func:`cvbench.contract.options.typed_options`). The typed values are what
the run records in ``result.json`` and what each factory receives, so a wrong
type fails here, before any work, naming the plugin, the option and the type.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..contract.options import guess_value, typed_options
from ..contract.registry import get_registry
from .run_spec import NO_AUGMENTATION, NO_PRETRAINER, RunSpec

# option field -> (plugin kind, the spec field naming the plugin; None: no plugin to read types from)
SCOPED = {
    "data_options": ("dataset", "dataset"),
    "eval_data_options": ("dataset", "eval_dataset"),
    "head_options": ("head", "head"),
    "pretrain_options": ("pretrainer", "pretrainer"),
    "sampler_options": ("sampler", "sampler"),
    "finetune_aug_options": ("augmentation", "finetune_aug"),
    "backbone_options": (None, "backbone"),  # timm.create_model(**kwargs) declares no types
}
KEYED = {"loss_options": "loss", "metric_options": "metric", "logger_options": "logger"}  # {name: {option: value}}
UNUSED = (None, NO_PRETRAINER, NO_AUGMENTATION)


def type_plugin_options(spec: RunSpec) -> RunSpec:
    """A copy of ``spec`` whose plugin options have the types their factories declare; SpecError otherwise.

    Options of a plugin that is not registered are read by their text alone:
    the unknown name is reported where plugin names are checked.
    """
    changes: dict[str, Any] = {}
    for option, (kind, chooser) in SCOPED.items():
        changes[option] = _typed(kind, getattr(spec, chooser), getattr(spec, option))
    for option, kind in KEYED.items():
        changes[option] = {name: _typed(kind, name, values) for name, values in getattr(spec, option).items()}
    return dataclasses.replace(spec, **changes)


def _typed(kind: str | None, name: Any, values: dict[str, Any]) -> dict[str, Any]:
    plugin = get_registry().plugins.get(kind, {}).get(name) if kind is not None and name not in UNUSED else None
    if plugin is None:
        return {key: guess_value(value) for key, value in values.items()}
    return typed_options(f"{kind} {name!r}", plugin.factory, values)
