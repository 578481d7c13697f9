"""cvbench.contract.options: the one option-checking helper every plugin uses."""

from __future__ import annotations

import math

import pytest

from cvbench.contract.hookspecs import hookimpl
from cvbench.contract.options import require_float, require_int, typed_options
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


# ---------------------------------------------------------------- option types from the factory's signature

def typed_head(in_channels: int, feature_hw: tuple[int, int], dim: int, p: float = 3.0, tag: str = "a",
               learn_p: bool = True, size: tuple[int, int] = (1, 1)):
    """A head whose options declare float, str, bool and a pair: what each CLI text must become."""
    raise AssertionError("never built: the spec is only resolved")


class TypedHeadPlugin:
    @hookimpl
    def register_heads(self, register):
        register("typed_head", typed_head)


def _resolved_head_options(*pairs: str) -> dict:
    from cvbench.cli.spec_options import cli_options, spec_from_cli
    from cvbench.runs.assemble import resolve_spec

    values = {option.parameter: None for option in cli_options()}
    values.update(preset="smoke", head="typed_head", dim="16", head_option=list(pairs), seed=0, device="auto",
                  workers=0, channels_last="auto")
    return resolve_spec(spec_from_cli(values)).head_options


def test_head_option_text_takes_the_type_the_factory_declares(registry) -> None:
    registry.add(TypedHeadPlugin(), source="typed-tests")
    options = _resolved_head_options("p=3", "tag=3", "learn_p=false", "size=4,5")
    assert options == {"p": 3.0, "tag": "3", "learn_p": False, "size": (4, 5)}
    assert type(options["p"]) is float and type(options["tag"]) is str


def test_a_bool_option_refuses_text_that_is_no_bool_naming_plugin_option_and_type(registry) -> None:
    registry.add(TypedHeadPlugin(), source="typed-tests")
    with pytest.raises(SpecError, match=r"^head 'typed_head': option learn_p = 'maybe': expected bool "):
        _resolved_head_options("learn_p=maybe")


def test_typed_options_reads_undeclared_types_from_their_text() -> None:
    def factory(a: int, loose=1, **rest):
        pass

    assert typed_options("loss 'x'", factory, {"a": "7", "loose": "0.5", "other": "none"}) == \
        {"a": 7, "loose": 0.5, "other": None}
    with pytest.raises(SpecError, match=r"loss 'x': option a = 'seven': expected int"):
        typed_options("loss 'x'", factory, {"a": "seven"})
