"""cvbench: does self-supervised pre-training help cross-view geo-localization, and by how much?

Public API (stable)::

    cvbench.plugins()                       # registered names per kind
    cvbench.create(kind, name, **options)   # build any registered plugin
    cvbench.metrics.recall(...)             # exact chunked top-k recall
    cvbench.metrics.uniformity(z, t=2.0)    # eq 3.5
"""

from importlib.metadata import PackageNotFoundError, version

from . import metrics
from .registry import create, plugins

try:
    __version__ = version("cvbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["create", "metrics", "plugins", "__version__"]
