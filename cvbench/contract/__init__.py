"""The plugin contract as code: one base class (or Protocol) per plugin kind.

Each class declares what the engine calls and every optional capability
with its default, so a plugin author reads the whole interface here and the
engine never probes for an attribute. Subclassing is optional: a plugin
written to the duck-typed contract of ``docs/plugins.md`` works unchanged,
because :func:`conform` gives a built object that does not subclass its
kind's base class the defaults it does not declare itself.
"""

from .augmentation import Augmentation
from .conform import conform, factory_declares
from .dataset import Dataset
from .head import Head
from .loss import Loss
from .metric import Conventions, Metric, Retrieval
from .pretrainer import Pretrainer
from .sampler import Batching, Sampler

__all__ = ["Augmentation", "Batching", "Conventions", "Dataset", "Head", "Loss", "Metric", "Pretrainer", "Retrieval",
           "Sampler", "conform", "factory_declares"]
