"""cvbench: does self-supervised pre-training help cross-view geo-localization, and by how much?

Public API (stable)::

    cvbench.plugins()                       # registered names per kind
    cvbench.create(kind, name, **options)   # build any registered plugin
    cvbench.metrics.recall(...)             # exact chunked top-k recall
    cvbench.metrics.uniformity(z, t=2.0)    # eq 3.5

A trained run put to work (docs/localization.md)::

    run = cvbench.load_run(RUN)             # spec + model in eval mode; run.embed(images, view="ground")
    cvbench.read_tiles(CSV_OR_DIR)          # tiles and their coordinates
    cvbench.build_tile_index(run, tiles)    # -> TileIndex (.save(DIR)); cvbench.load_tile_index(DIR)
    cvbench.localize(run, index, queries, top_k=5, truth=CSV)   # -> Localization (.table, .summary())

The plugin contract, one class per kind (subclassing is optional)::

    cvbench.Pretrainer, cvbench.Loss, cvbench.Dataset, cvbench.Augmentation,
    cvbench.Metric (with cvbench.Retrieval, what a metric receives, and its
    cvbench.Conventions), cvbench.Sampler, cvbench.Logger (an experiment
    tracker: TensorBoard, MLflow), and the cvbench.Head Protocol

The harness is grouped by concept, each package depending only on those
listed before it: ``errors``, ``atomic``, ``progress`` (shared basics),
``nn`` (building blocks, devices, collectives), ``data``, ``contract``
(hooks, registry, base classes, option checks), ``spec``, ``evaluation``,
``training``, ``runs``, ``inference`` (a trained run embeds, indexes and
localises), ``bench``, ``analysis``, ``html_report`` (one self-contained
HTML page of the results), ``cli``.
"""

import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

try:
    __version__ = version("cvbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

MOVED_MODULES = {
    "hookspecs": "contract.hookspecs",
    "registry": "contract.registry",
    "options": "contract.options",
    "layout": "data.layout",
    "problems": "data.problems",
    "augment": "data.augment",
    "distributed": "nn.distributed",
    "metrics": "evaluation.metrics",
}
"""Import paths plugins were documented with before the harness was grouped into packages (0.1), and where
each module lives now. The old paths stay importable, as the same module objects, so such plugins keep working."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``cvbench.<old>`` of :data:`MOVED_MODULES` as the module it moved to, when it is first imported.

    Lazily, so ``import cvbench`` does not pay for modules nobody asks for
    under their old name (``cvbench.augment`` would import torchvision).
    """

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        old = fullname.removeprefix(f"{__name__}.")
        return importlib.util.spec_from_loader(fullname, self) if old in MOVED_MODULES else None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(f".{MOVED_MODULES[spec.name.removeprefix(f'{__name__}.')]}", __name__)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state  # the import system gave the module the alias's spec


sys.meta_path.append(_MovedModuleFinder())

PUBLIC = {**dict.fromkeys(("Augmentation", "Batching", "Conventions", "Dataset", "Head", "Logger", "Loss", "Metric",
                          "Pretrainer", "Retrieval", "Sampler"), "contract"),
          **dict.fromkeys(("build_tile_index", "load_run", "load_tile_index", "localize", "read_tiles"), "inference"),
          "create": "contract.registry", "plugins": "contract.registry", "metrics": "evaluation.metrics"}
"""The public API and the module each name comes from. They import torch, so they are imported when first used
(PEP 562): ``import cvbench.cli`` (``cvbench --help``) does not pay for them."""


def __getattr__(name: str) -> Any:
    """``cvbench.create``, ``cvbench.Pretrainer``, ``cvbench.metrics``, ...: imported on first use, then kept."""
    if name not in PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{PUBLIC[name]}", __name__)
    value = module if module.__name__.endswith(f".{name}") else getattr(module, name)  # cvbench.metrics is a module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *PUBLIC})


__all__ = [*PUBLIC, "__version__"]
