"""A random stream whose scalar integer draws are numpy's, written out in Python.

The city plan draws some 3,000 small integers per city (colour jitter, car
paints, tree colours). ``Generator.integers`` spends 1-2 microseconds on the
checks and dispatch of each scalar call and 6 on a call for three values:
about 7% of a city's build. :class:`Draws` computes the same numbers
from the stream's raw 64-bit outputs, with the algorithm numpy uses for a
range under 2**32 (Lemire's multiply-and-reject on 32-bit draws, the two
halves of each 64-bit output used low half first), in about a third of the
time. Every other draw is the generator's own. The numbers, and so the
generated world's bytes, are unchanged: ``tests/test_synthetic_draws.py``
checks them against numpy's.
"""

from __future__ import annotations

import numpy as np

UINT32_MAX = 0xFFFFFFFF


class Draws:
    """The draws the city plan makes from a PCG64 ``generator``, scalar integers computed here.

    Only this object may draw from ``generator`` from now on: the half of a
    64-bit output that an integer draw leaves over is kept here, not in the
    generator. Its real-valued draws (``random``, ``uniform``, ``poisson``)
    never use that half, in numpy as here, so they are the generator's own.
    """

    __slots__ = ("random", "uniform", "poisson", "_raw", "_half")

    def __init__(self, generator: np.random.Generator) -> None:
        bits = generator.bit_generator
        if not isinstance(bits, np.random.PCG64):
            raise TypeError(f"Draws computes integers as numpy does from a PCG64 stream, not {type(bits).__name__}")
        state = bits.state
        self._half: int | None = state["uinteger"] if state["has_uint32"] else None
        if self._half is not None:  # the leftover half moves here
            bits.state = {**state, "has_uint32": 0, "uinteger": 0}
        self.random, self.uniform, self.poisson = generator.random, generator.uniform, generator.poisson
        self._raw = bits.random_raw

    def integers(self, low: int, high: int | None = None) -> int:
        """One integer from ``[low, high)`` (``[0, low)`` without ``high``): ``int(generator.integers(low, high))``."""
        if high is None:
            low, high = 0, low
        span = high - 1 - low
        if span <= 0:
            if span == 0:
                return low
            raise ValueError(f"integers needs low < high, got low={low}, high={high}")
        if span >= UINT32_MAX:
            raise ValueError(f"Draws computes integers over ranges under 2**32 only, got {span + 1}")
        count = span + 1
        scaled = self._uint32() * count
        leftover = scaled & UINT32_MAX
        if leftover < count:
            threshold = (UINT32_MAX - span) % count
            while leftover < threshold:
                scaled = self._uint32() * count
                leftover = scaled & UINT32_MAX
        return low + (scaled >> 32)

    def _uint32(self) -> int:
        """The next 32 random bits: the kept high half of the last 64-bit output, or the low half of a new one."""
        half = self._half
        if half is not None:
            self._half = None
            return half
        raw = self._raw()
        self._half = raw >> 32
        return raw & UINT32_MAX
