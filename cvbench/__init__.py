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
"""

from importlib.metadata import PackageNotFoundError, version

from . import metrics
from .contract import Augmentation, Dataset, Head, Loss, Metric, Pretrainer, Retrieval
from .registry import create, plugins

try:
    __version__ = version("cvbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Augmentation", "Dataset", "Head", "Loss", "Metric", "Pretrainer", "Retrieval", "create", "metrics",
           "plugins", "__version__"]
