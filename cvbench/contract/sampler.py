"""The sampler kind: which training pairs share a fine-tuning batch."""

from __future__ import annotations

import abc

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class Batching:
    """What a sampler plans an epoch's batches from.

    The epoch's training items are ``0 .. len(conflicts) - 1`` (positions in
    the run's training subset). ``conflicts[i]`` are the gallery tiles item i
    must not share a batch with (its positive and semi-positives), so that
    no batch pushes a true match away as a negative; ``tiles[i]`` is its
    positive. ``meta`` holds each item's ground metadata (``lat``/``lon`` or
    ``x``/``y`` where the dataset has them). Every random draw comes from
    ``generator``, so a seed gives the same batches on every rank and on a
    resumed run. ``embed()``, for a sampler that mines (``mines = True``),
    returns the items' query embeddings (N, D) and the gallery's (M, D) from
    the model as it is now, both L2-normalised. Only the rows of tiles in
    ``tiles`` are embedded (no other tile can bring an item into a batch);
    the rest are zero. In :meth:`Sampler.check`, before there is a model to
    read, it raises.
    """

    conflicts: list[tuple[int, ...]]
    tiles: np.ndarray
    meta: pd.DataFrame
    batch_size: int
    epoch: int
    generator: torch.Generator
    embed: Callable[[], tuple[np.ndarray, np.ndarray]]


class Sampler(abc.ABC):
    """Base class of a batch sampler, built as ``factory(**options)`` (``--sampler NAME``).

    :meth:`plan` returns the epoch's batches: lists of item positions, each
    item at most once per epoch, no batch larger than ``batch_size``. The
    engine saves the plan with every training state, so ``--resume`` serves
    an interrupted epoch the batches it started with. ``mines`` declares that
    the plan reads the current model (``batching.embed``); the engine times
    that work as the run's mining cost. :meth:`check` refuses, before any
    compute, what the training pairs or the batch size cannot honour.
    """

    mines: ClassVar[bool] = False

    def check(self, batching: Batching) -> None:
        """Raise :class:`cvbench.errors.SpecError` naming the option the data cannot honour; the default accepts.

        Called once before pre-training and fine-tuning start, with epoch 1's
        :class:`Batching`, whose ``embed`` is not available yet.
        """

    @abc.abstractmethod
    def plan(self, batching: Batching) -> list[list[int]]:
        """The epoch's batches: lists of item positions, each item at most once, none over ``batch_size``."""
