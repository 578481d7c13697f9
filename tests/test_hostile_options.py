"""Hostile option strings: the spec parsers, RunSpec.from_dict, dataset options and the CLI.

Every outcome is either a valid spec or a :class:`cvbench.errors.CvbenchError`
(a SpecError naming the option); on the command line a usage or spec error
with exit status 1 or 2 and no traceback. Nothing else may escape.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from cvact_layout import make_cvact
from cvusa_layout import make_cvusa
from hostile import FAST, FEW, TOKENS, make_pairs, token
from hypothesis import event, find, given, settings
from hypothesis import strategies as st
from vigor_layout import make_vigor

import cvbench.cli.stages
from cvbench.cli import main
from cvbench.cli.spec_options import cli_options
from cvbench.contract.registry import create
from cvbench.data.problems import DatasetWarning
from cvbench.errors import CvbenchError, DatasetNotFoundError, SpecError
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.subsets import open_dataset
from cvbench.spec.validate import MAX_IMAGE_SIDE
from cvbench.spec import RunSpec, parse_loss, parse_options, parse_size, parse_value

FIELDS = {f.name: f for f in dataclasses.fields(RunSpec)}
FLAGS = [option.flag for option in cli_options()] + ["--runs-dir", "--quiet", "-q"]
VALUES = ["smoke", "default", "paper", "synthetic", "vigor", "cvact", "pairs", "32x128", "auto", "8x8", "0x0",
          "99999999999999999999x1", "soft_triplet", "soft_triplet:nan", "uniformity:1e999", "safa:-1", "none",
          "random", "imagenet", "~nobody_here/x", "x.safetensors", "cpu", "cuda:99", "-1", "0", "1", "2", "1e308",
          "queue_size=1", "gamma=", "=1", "x=y=z", "soft_triplet.gamma=nan", "labels=corrected", "distance=0",
          "distance=" + "9" * 400, "val_fraction=1", "seed=-1", "seed=" + "9" * 30, "120,160", "1,,x", "4294967296",
          "18446744073709551616", "-9223372036854775809"]


def value_text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(VALUES), token(), st.sampled_from(TOKENS))


def json_like() -> st.SearchStrategy:
    """Any value TOML, JSON or a Python caller could put into a spec field."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                        st.sampled_from(VALUES))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)


# ----------------------------------------------------------------- the parsers


@FAST
@given(text=st.one_of(value_text(), st.lists(json_like(), max_size=3), st.tuples(json_like(), json_like())))
def test_parse_size_gives_two_whole_numbers_or_a_spec_error(text):
    try:
        size = parse_size(text)
    except SpecError:
        return
    assert size == "auto" or (len(size) == 2 and all(type(side) is int for side in size))


@FAST
@given(text=value_text())
def test_parse_loss_gives_a_name_and_a_finite_weight_or_a_spec_error(text):
    try:
        name, weight = parse_loss(text)
    except SpecError as error:
        assert "--loss" in str(error)
        return
    assert name and name == name.strip() and math.isfinite(weight)


@FAST
@given(pairs=st.lists(value_text(), max_size=4), flag=st.sampled_from(["--data-option", "--head-option"]))
def test_parse_options_gives_typed_values_or_names_the_pair(pairs, flag):
    try:
        options = parse_options(pairs, flag)
    except SpecError as error:
        assert str(error).startswith(flag)
        return
    for pair in pairs:
        key, _, value = pair.partition("=")
        assert key.strip() in options
    assert all(isinstance(key, str) and key for key in options)
    for text in pairs:
        parse_value(text)  # never raises


# ----------------------------------------------------------------- RunSpec.from_dict and resolve_spec


def spec_dicts() -> st.SearchStrategy[dict]:
    names = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=10))
    edges = st.sampled_from([[100000, 100000], [4097, 64], [4096, 4096], "100000x100000", float("nan"), -1.0, 0.0,
                             [["soft_triplet", -1.0]], [["soft_triplet", 0.0]]])  # sizes, rates, weights past a bound
    return st.dictionaries(names, st.one_of(json_like(), edges), max_size=5)


def check_usable(spec: RunSpec) -> None:
    """What the run does first with a resolved spec must not fail: seeding, worker count, sizes, losses."""
    np.random.default_rng(spec.seed)
    torch.Generator().manual_seed(spec.seed)
    assert spec.workers >= 0
    for size in (spec.ground_size, spec.aerial_size):
        assert len(size) == 2 and all(type(side) is int and 8 <= side <= MAX_IMAGE_SIDE for side in size)
    assert all(isinstance(name, str) and math.isfinite(weight) and weight > 0 for name, weight in spec.loss)
    assert all(math.isfinite(rate) and rate > 0 for rate in (spec.lr, spec.pretrain_lr))
    assert all(math.isfinite(decay) and decay >= 0 for decay in (spec.weight_decay, spec.pretrain_weight_decay))
    assert spec.grad_clip is None or (math.isfinite(spec.grad_clip) and spec.grad_clip > 0)


@FAST
@given(values=spec_dicts(), preset=st.sampled_from(["smoke", "paper"]))
def test_run_spec_from_any_dict_resolves_or_is_a_spec_error(registry, tmp_path, monkeypatch, values, preset):
    monkeypatch.chdir(tmp_path)
    values = {"preset": preset, "dataset": "cvusa", **values}
    try:
        spec = resolve_spec(RunSpec.from_dict(values))
    except CvbenchError:
        return
    check_usable(spec)


# ----------------------------------------------------------------- the accepting branches are reached

# The property tests above return early on a SpecError; each search below shows that its strategy also
# draws inputs that take the accepting branch, so those tests check more than error messages.
SEARCH = settings(database=None, derandomize=True, max_examples=2_000)


def _succeeds(function, *args) -> bool:
    try:
        function(*args)
    except CvbenchError:
        return False
    return True


def test_the_size_strategy_reaches_two_whole_numbers():
    text = find(st.one_of(value_text(), st.lists(json_like(), max_size=3), st.tuples(json_like(), json_like())),
                lambda text: _succeeds(parse_size, text) and parse_size(text) != "auto", settings=SEARCH)
    assert len(parse_size(text)) == 2


def test_the_loss_strategy_reaches_a_valid_loss():
    find(value_text(), lambda text: _succeeds(parse_loss, text), settings=SEARCH)


def test_the_options_strategy_reaches_parsed_options():
    pairs = find(st.lists(value_text(), max_size=4),
                 lambda pairs: len(pairs) > 0 and _succeeds(parse_options, pairs, "--data-option"), settings=SEARCH)
    assert parse_options(pairs, "--data-option")


def test_the_spec_strategy_reaches_a_resolved_spec_with_options_set(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = find(spec_dicts(), lambda values: bool(set(values) & set(FIELDS)) and _succeeds(
        lambda: resolve_spec(RunSpec.from_dict({"preset": "smoke", "dataset": "cvusa", **values}))), settings=SEARCH)
    check_usable(resolve_spec(RunSpec.from_dict({"preset": "smoke", "dataset": "cvusa", **values})))


# ----------------------------------------------------------------- dataset options


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("roots")
    return {"vigor": make_vigor(base / "vigor"), "cvusa": make_cvusa(base / "cvusa"),
            "cvact": make_cvact(base / "cvact"), "pairs": make_pairs(base / "pairs")}


OPTION_NAMES = ["labels", "distance", "val_fraction", "seed", "x", "", " labels", "LABELS"]


@FAST
@given(name=st.sampled_from(["vigor", "cvusa", "cvact", "pairs"]),
       texts=st.lists(st.one_of(value_text(), st.tuples(st.sampled_from(OPTION_NAMES), value_text()).map("=".join)),
                      max_size=3),
       direct=st.dictionaries(st.sampled_from(OPTION_NAMES), json_like(), max_size=2))
def test_dataset_options_are_accepted_or_named(registry, roots, name, texts, direct):
    """``--data-option`` strings as the CLI parses them, and any values a TOML grid could hold: a bad one is a
    SpecError naming the option, never a crash inside the plugin (a PluginError)."""
    for options in (texts, direct):
        if options is texts:
            try:
                parsed = parse_options(options, "--data-option")
            except SpecError as error:  # a text that is not KEY=VALUE: the error quotes it
                assert any(repr(text) in str(error) for text in options), (options, str(error))
                continue
        else:
            parsed = options
        try:
            _open_with(roots, name, parsed)
        except SpecError as error:
            assert any(key.strip() in str(error) for key in parsed), (parsed, str(error))
            event("refused with the option named")
        else:
            event("accepted")


def _open_with(roots, name: str, options: dict) -> None:
    dataset = create("dataset", name, roots[name], **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        if name == "pairs":
            dataset.load(dataset.splits()[0], "val")  # its options are used when the CSV is read


@pytest.mark.parametrize("name, texts", [("vigor", ["labels=corrected"]), ("cvact", ["distance=30"]),
                                         ("pairs", []), ("cvusa", [])])
def test_good_dataset_options_take_the_accepting_branch(registry, roots, name, texts):
    """The property above also has a branch that accepts: the options each dataset documents get through it."""
    _open_with(roots, name, parse_options(texts, "--data-option"))


@FAST
@given(name=st.sampled_from(["vigor", "cvusa", "cvact", "pairs"]),
       root=st.one_of(value_text(), st.sampled_from(["a" * 300, "a/" * 3000, "~nobody_here/data", "x\x00y", ""])))
def test_any_data_root_that_is_not_the_dataset_is_named(registry, tmp_path, monkeypatch, name, root):
    """Not a PluginError from inside the factory: a name too long to look up or ``~user`` with no such user
    is a root that is not there."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError):
        create("dataset", name, root or None)


# ----------------------------------------------------------------- the command line


def stub_run(spec, runs_dir, quiet, **stages):
    """What `cvbench run` checks before any work, then what it does first with the spec; no training."""
    spec = resolve_spec(spec)
    check_usable(spec)
    open_dataset(spec)


@st.composite
def command_lines(draw) -> list[str]:
    argv = [draw(st.sampled_from(["run", "pretrain", "train"]))]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["pair", "pair", "pair", "flag", "junk"]))
        if kind == "pair":
            argv += [draw(st.sampled_from(FLAGS)), draw(value_text())]
        elif kind == "flag":
            argv.append(draw(st.sampled_from(FLAGS)))
        else:
            argv.append(draw(value_text()))
    return argv


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    event(f"exit status {code}")
    return code, capsys.readouterr().err


@FAST
@given(argv=command_lines())
def test_any_command_line_resolves_or_exits_with_a_usage_or_spec_error(registry, roots, tmp_path, monkeypatch,
                                                                       capsys, argv):
    """The run itself is replaced by what it does first (resolve, seed, open the dataset): no training."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cvbench.cli.stages, "run", stub_run)
    fixed = ["--preset", "smoke", "--dataset", "cvusa", "--data-root", str(roots["cvusa"])]
    code, err = run_main(argv[:1] + fixed + argv[1:], capsys)
    assert "Traceback" not in err
    if code:
        assert code in (1, 2) and ("error" in err.lower() or "usage" in err.lower()), err


@FEW
@given(name=st.sampled_from(["vigor", "cvusa", "cvact", "pairs"]),
       options=st.lists(st.one_of(value_text(), st.tuples(st.sampled_from(OPTION_NAMES), value_text()).map("=".join)),
                        max_size=3),
       command=st.sampled_from(["check", "info"]))
def test_data_commands_with_any_data_option_exit_cleanly(registry, roots, capsys, name, options, command):
    argv = ["data", command, "--dataset", name, "--data-root", str(roots[name])]
    argv += [part for option in options for part in ("--data-option", option)]
    code, err = run_main(argv + (["--no-images", "--quiet"] if command == "check" else []), capsys)
    assert "Traceback" not in err
    assert code == 0 or (code == 2 and "error" in err.lower()), err
