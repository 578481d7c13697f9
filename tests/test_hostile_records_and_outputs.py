"""Hostile head outputs and hostile run records.

A head plugin may return anything: the embedding step accepts exactly a
finite ``(batch, dim)`` tensor and names the plugin, the branch and the
expected shape for everything else. A runs folder may hold any record a
crash, a foreign host or a hand edit left: the leaderboard lists each run
once, ranks finished ones only, and never raises anything but a cvbench error.
"""

from __future__ import annotations

import json
import math

import torch
from hostile import FAST, TOKENS
from hypothesis import given
from hypothesis import strategies as st

from cvbench.errors import PluginError
from cvbench.nn.model import check_finite, check_shape

BATCH, DIM = 3, 4

# ----------------------------------------------------------------- head outputs


@st.composite
def head_output(draw) -> object:
    """What a head might return: a tensor of any small shape and dtype, holding any floats, or not a tensor."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 3.0, [[0.0] * DIM] * BATCH, "z", (torch.zeros(BATCH, DIM),)]))
    shape = draw(st.lists(st.integers(0, 5), max_size=3).map(tuple)
                 | st.sampled_from([(BATCH, DIM), (BATCH, DIM + 1), (BATCH - 1, DIM), (BATCH, DIM, 1), (DIM,)]))
    values = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from([0.0, 1.0, -1e30])
    numel = math.prod(shape)
    data = draw(st.lists(values, min_size=numel, max_size=numel))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.float64]))
    return torch.tensor(data, dtype=torch.float32).reshape(shape).to(dtype)


@FAST
@given(output=head_output(), branch=st.sampled_from(["ground", "aerial"]))
def test_a_head_output_passes_exactly_when_finite_batch_by_dim_else_names_the_plugin(output, branch):
    right_shape = isinstance(output, torch.Tensor) and tuple(output.shape) == (BATCH, DIM)
    try:
        check_shape(output, BATCH, DIM, "toyhead", branch)
        check_finite(output, torch.zeros(BATCH, 2, 1, 1), "toyhead", branch)
    except PluginError as exc:
        message = str(exc)
        assert message.startswith("head 'toyhead'") and branch in message and "\n" not in message
        if not right_shape:
            assert f"({BATCH}, {DIM})" in message  # the expected shape
        else:
            assert "NaN/inf" in message and not bool(torch.isfinite(output).all())
    else:
        assert right_shape and bool(torch.isfinite(output).all())


def test_the_output_strategy_reaches_the_accepting_branch():
    assert check_shape(torch.zeros(BATCH, DIM), BATCH, DIM, "toyhead", "ground") is None


# ----------------------------------------------------------------- run records

SPEC_KEYS = ["dataset", "split", "head", "pretrainer", "seed", "epochs", "dim", "ground_size", "loss", "fov"]
RECORD_KEYS = ["status", "metrics", "spec", "owner", "heartbeat", "num_references", "split", "timings", "start"]
STATUSES = ["finished", "running", "failed", "interrupted", "dead", "", None, 7]


def json_value() -> st.SearchStrategy:
    """Any JSON value a hand edit or another version could leave in a field: troublemaker text, numbers, nesting."""
    scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(TOKENS), st.integers(-10**20, 10**20),
                        st.floats(allow_nan=False, allow_infinity=False))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(SPEC_KEYS + ["R@1", "R@5", "pid", "host"]), inner,
                                          max_size=3), max_leaves=6)


@st.composite
def hostile_record(draw, name: str) -> dict | bytes:
    """A finished record (see tests/test_leaderboard.py) with fields replaced, dropped or added; or raw bytes."""
    from test_leaderboard import record

    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=80))
    out = record(name, draw(st.floats(0, 100)), seed=draw(st.integers(0, 3)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(RECORD_KEYS))
        how = draw(st.sampled_from(["replace", "drop", "status", "spec"]))
        if how == "replace":
            out[key] = draw(json_value())
        elif how == "drop":
            out.pop(key, None)
        elif how == "status":
            out["status"] = draw(st.sampled_from(STATUSES))
            out["owner"] = draw(st.one_of(json_value(), st.fixed_dictionaries(
                {"host": st.sampled_from(["elsewhere", ""]), "pid": st.integers(-5, 2**40)})))
            out["heartbeat"] = draw(st.one_of(json_value(), st.just("2020-01-01T00:00:00+00:00")))
        elif isinstance(out.get("spec"), dict):
            out["spec"][draw(st.sampled_from(SPEC_KEYS))] = draw(json_value())
    return out


def _ranked_runs(stdout: str) -> set[str]:
    return {line.split()[0] for line in stdout.splitlines() if line.strip()}


@FAST
@given(data=st.data(), fmt=st.sampled_from(["csv", "json", "markdown", "table"]),
       select=st.sampled_from([(), ("--group-by", "all"), ("--group-by", "head,seed"), ("--where", "head=safa")]))
def test_any_runs_folder_lists_each_run_once_and_ranks_only_finished_ones(tmp_path_factory, data, fmt, select):
    from conftest import cli

    runs = tmp_path_factory.mktemp("runs")
    records = {f"r{i}": data.draw(hostile_record(f"r{i}")) for i in range(data.draw(st.integers(1, 5)))}
    for name, value in records.items():
        (runs / name).mkdir()
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        (runs / name / "result.json").write_bytes(raw)
    before = {name: (runs / name / "result.json").read_bytes() for name in records}
    result = cli("leaderboard", str(runs), "--format", fmt, *select)
    assert result.returncode in (0, 2), result.stderr[-2000:]
    if result.returncode == 2:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert {name: (runs / name / "result.json").read_bytes() for name in records} == before  # listing writes nothing
    if result.returncode == 0 and fmt == "json" and not select:
        table = json.loads(result.stdout)
        ranked = [row["run"] for section in table["sections"] for row in section["rows"]]
        others = [row["run"] for row in table["unfinished"]]
        assert len(ranked) == len(set(ranked)) and not set(ranked) & set(others)
        for name in ranked:
            value = records[name]
            assert isinstance(value, dict) and value.get("status") == "finished", value
            assert math.isfinite(float(value["metrics"]["R@1"]))


def test_the_record_strategy_reaches_ranked_and_unranked_runs(tmp_path):
    from conftest import cli
    from test_leaderboard import record

    for name, status in (("done", "finished"), ("gone", "running")):
        (tmp_path / name).mkdir()
        rec = record(name, 10.0, status=status)
        if status == "running":
            rec["owner"] = {"host": "elsewhere", "pid": 1}
            rec["heartbeat"] = "2020-01-01T00:00:00+00:00"
        (tmp_path / name / "result.json").write_text(json.dumps(rec))
    table = json.loads(cli("leaderboard", str(tmp_path), "--format", "json").stdout)
    assert [row["run"] for section in table["sections"] for row in section["rows"]] == ["done"]
    assert [row["run"] for row in table["unfinished"]] == ["gone"]
    assert table["unfinished"][0]["status"].startswith("dead (resume with: cvbench run --resume")
