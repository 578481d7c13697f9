"""cvbench: does self-supervised pre-training help cross-view geo-localization, and by how much?

Public API (stable)::

    cvbench.plugins()                       # registered names per kind
    cvbench.create(kind, name, **options)   # build any registered plugin
    cvbench.metrics.recall(...)             # exact chunked top-k recall
    cvbench.metrics.uniformity(z, t=2.0)    # eq 3.5

The plugin contract, one class per kind (subclassing is optional)::

    cvbench.Pretrainer, cvbench.Loss, cvbench.Dataset, cvbench.Augmentation,
    cvbench.Metric (with cvbench.Retrieval, what a metric receives), and the
    cvbench.Head Protocol

The harness is grouped by concept, each package depending only on those
listed before it: ``errors``, ``atomic``, ``progress`` (shared basics),
``nn`` (building blocks, devices, collectives), ``data``, ``contract``
(hooks, registry, base classes, option checks), ``spec``, ``evaluation``,
``training``, ``runs``, ``bench``, ``analysis``, ``cli``.
"""

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

from .contract import Augmentation, Dataset, Head, Loss, Metric, Pretrainer, Retrieval
from .contract.registry import create, plugins
from .evaluation import metrics

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

for _old, _new in MOVED_MODULES.items():
    sys.modules[f"{__name__}.{_old}"] = globals()[_old] = importlib.import_module(f".{_new}", __name__)

__all__ = ["Augmentation", "Dataset", "Head", "Loss", "Metric", "Pretrainer", "Retrieval", "create", "metrics",
           "plugins", "__version__"]
