"""cvbench.contract.options: the one option-checking helper every plugin uses."""

from __future__ import annotations

import math

import pytest

from cvbench.contract.options import require_float, require_int
from cvbench.errors import SpecError


@pytest.mark.parametrize("value, expected", [(3, 3.0), (0.5, 0.5), (1, 1.0)])
def test_require_float_returns_the_accepted_value_as_float(value: object, expected: float) -> None:
    accepted = require_float("soft_triplet", "gamma", value, low=0.0, high=10.0, low_open=True)
    assert accepted == expected and type(accepted) is float


@pytest.mark.parametrize("value", [0, 0.0, -1, True, "1", math.nan, math.inf, None])
def test_require_float_refuses_what_lies_outside_an_open_interval(value: object) -> None:
    with pytest.raises(SpecError) as error:
        require_float("soft_triplet", "gamma", value, low=0.0, low_open=True, high_open=True)
    assert str(error.value) == f"soft_triplet: option gamma must be a number in (0, inf), got {value!r}"


def test_require_float_end_points_follow_the_open_flags() -> None:
    assert require_float("infonce", "label_smoothing", 0, low=0.0, high=1.0, high_open=True) == 0.0
    with pytest.raises(SpecError, match=r"label_smoothing must be a number in \[0, 1\), got 1.0"):
        require_float("infonce", "label_smoothing", 1.0, low=0.0, high=1.0, high_open=True)
    assert require_float("x", "y", math.inf, low=0.0) == math.inf  # a closed end at infinity admits it


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4", None])
def test_require_int_refuses_non_integers_and_small_values(value: object) -> None:
    with pytest.raises(SpecError, match=rf"^safa: option in_channels must be an integer >= 1, got {value!r}$"):
        require_int("safa", "in_channels", value, minimum=1)


def test_require_int_accepts_integers_at_the_minimum() -> None:
    assert require_int("safa", "in_channels", 1, minimum=1) == 1
    assert require_int("mocov2", "queue_size", 16_384, minimum=1) == 16_384
