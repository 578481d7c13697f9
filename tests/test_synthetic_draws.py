"""The plan's written-out integer draws against numpy's own, draw for draw."""

from __future__ import annotations

import numpy as np
import pytest

from cvbench_plugins.datasets.synthetic.draws import Draws


def _mixed_draws(rng, kinds: np.ndarray) -> list:
    """One draw per entry of ``kinds``, of the kinds the plan makes, as plain Python numbers."""
    out = []
    for kind in kinds:
        if kind == 0:
            out.append(int(rng.integers(-8, 9)))
        elif kind == 1:
            out.append(int(rng.integers(7)))
        elif kind == 2:
            out.append(float(rng.random()))
        elif kind == 3:
            out.append(int(rng.poisson(12.5)))  # numpy's rejection algorithm, from 10 up
        elif kind == 4:
            out.append(rng.uniform(2.0, 5.0, 3).tolist())
        else:
            # Lemire's rejection redraws about half the time here: (2**32 - 1 - 2**31) % (2**31 + 1) = 2**31 - 1.
            out.append(int(rng.integers(0, 2**31 + 1)))
    return out


def test_a_mixed_sequence_of_draws_is_numpys_draw_for_draw():
    kinds = np.random.default_rng(3).integers(0, 6, 3000)
    assert _mixed_draws(Draws(np.random.default_rng(7)), kinds) == _mixed_draws(np.random.default_rng(7), kinds)


def test_three_integers_at_once_in_numpy_are_three_single_draws_here():
    numpy_draws = np.random.default_rng(11)
    ours = Draws(np.random.default_rng(11))
    for _ in range(200):
        expected = [int(numpy_draws.integers(-8, 9)), *numpy_draws.integers(-2, 3, 3).tolist()]
        assert [ours.integers(-8, 9)] + [ours.integers(-2, 3) for _ in range(3)] == expected


def test_a_half_left_over_in_the_generator_is_taken_over():
    numpy_draws, generator = np.random.default_rng(5), np.random.default_rng(5)
    numpy_draws.integers(10)
    generator.integers(10)  # an odd number of 32-bit draws: the high half of the last output waits
    assert generator.bit_generator.state["has_uint32"] == 1
    ours = Draws(generator)
    assert [ours.integers(1000) for _ in range(5)] == numpy_draws.integers(1000, size=5).tolist()


def test_an_empty_or_too_wide_range_and_another_bit_generator_are_refused():
    ours = Draws(np.random.default_rng(0))
    assert ours.integers(4, 5) == 4
    with pytest.raises(ValueError, match="low < high"):
        ours.integers(3, 3)
    with pytest.raises(ValueError, match="under 2\\*\\*32"):
        ours.integers(2**33)
    with pytest.raises(TypeError, match="PCG64 stream, not Philox"):
        Draws(np.random.Generator(np.random.Philox(0)))
