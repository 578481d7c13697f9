"""Independent, reproducible random streams, one per purpose.

Every random draw of the generator comes from ``np.random.default_rng`` seeded
with the dataset seed plus integers naming the purpose (and the city, epoch or
split), never from global state. So a city is the same whichever split asks
for it first, and adding draws for one purpose never shifts another's.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Purpose(IntEnum):
    CITY_STYLES = 1
    CITY = 2
    TEXTURE = 3
    SATELLITE = 4
    EPOCH = 5
    QUERIES = 6


def stream(seed: int, purpose: Purpose, *keys: int) -> np.random.Generator:
    """The generator for ``purpose`` and ``keys`` (city index, epoch, ...) under dataset ``seed``."""
    return np.random.default_rng([seed, int(purpose), *keys])
