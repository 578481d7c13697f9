"""Hostile input for the property tests (tests/test_hostile_*.py): strategies and the checks on outcomes.

Loading hostile input may do one of two things: succeed (a documented
tolerance, e.g. a UTF-8 BOM or CRLF line endings), or raise a
:class:`cvbench.errors.CvbenchError` whose message names the file (and the
line, where there is one). Anything else (UnicodeDecodeError, a numpy, pandas
or scipy error, IndexError, KeyError, ...) escaping is a bug.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from cvbench.data import SUBSETS
from cvbench.data.check import check_dataset
from cvbench.data.problems import DatasetWarning
from cvbench.errors import CvbenchError

# Small example counts keep every hostile test file well under 20 s on 2 CPU cores, and a fixed
# derivation of the examples keeps the suite's verdict the same on every run (CI included);
# CVBENCH_HOSTILE_EXAMPLES=500 searches deeper, with fresh random examples each time.
DEEP = "CVBENCH_HOSTILE_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("CVBENCH_HOSTILE_EXAMPLES", "25"))
FAST = settings(max_examples=EXAMPLES, deadline=None, derandomize=not DEEP, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FAST, max_examples=max(8, EXAMPLES // 3))
"""For examples that start a process (CVACT's .mat is read in a child process: about 0.3 s each)."""

TOKENS = ["", "nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "-1e999", "9" * 400, "0x1F", "1_000", "1e-400",
          "\x00", "é", "\ufeff", "\u2028", "\x85", "\x0c", "😀", "a" * 5000, "../../etc/passwd", "/", "a/b/c" * 100,
          ",", ";", " ", "\t", '"', "'", "\\", "NULL", "None", "true", "-0", "+1", "٣", "ＮａＮ", "1,5"]
"""Cell and field values that have broken parsers: non-finite and huge numbers, control characters, long text."""

UNICODE_SPACES = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\xa0", "\u3000"]
"""Characters that ``str.split()`` treats as spaces and ``str.splitlines()`` (some of them) as line breaks."""

NEWLINES = ["\n", "\r\n", "\r"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]


def token() -> st.SearchStrategy[str]:
    """One hostile field: a known troublemaker, any short text, or a number written any way."""
    return st.one_of(st.sampled_from(TOKENS), st.text(max_size=12),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str))


@st.composite
def mutated_line(draw, line: str, sep: str) -> str:
    """``line`` (fields split by ``sep``) with a field replaced, dropped or added, or left as it is."""
    fields = line.split(sep) if sep != " " else line.split()
    how = draw(st.sampled_from(["keep", "replace", "drop", "add", "text"]))
    if how == "text":
        return draw(st.text(max_size=200))
    if how != "keep" and fields:
        at = draw(st.integers(0, len(fields) - 1))
        if how == "replace":
            fields[at] = draw(token())
        elif how == "drop":
            del fields[at]
        else:
            fields.insert(at, draw(token()))
    return sep.join(fields)


@st.composite
def hostile_text(draw, valid: Sequence[str], sep: str, header: str | None = None) -> bytes:
    """File contents built from ``valid`` lines: some mutated, shuffled or repeated, in any encoding and newline.

    Or plain random bytes, or the valid file cut short. ``header`` (a CSV's)
    stays the first line unless it is itself mutated.
    """
    kind = draw(st.sampled_from(["lines", "lines", "lines", "bytes", "truncated"]))
    newline = draw(st.sampled_from(NEWLINES))
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    lines = [draw(mutated_line(line, sep)) for line in draw(st.lists(st.sampled_from(valid), max_size=8))]
    if header is not None:
        lines.insert(0, draw(st.one_of(st.just(header), mutated_line(header, ","))))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    if kind == "truncated":
        return text.encode()[: draw(st.integers(0, len(text.encode())))]
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@st.composite
def tolerated_text(draw, valid: Sequence[str], sep: str, header: str | None = None) -> bytes:
    """``valid`` lines as the documentation promises to read them: BOM or not, LF/CRLF/CR, blank lines,
    surrounding spaces (and, for space-separated files, any run of spaces and tabs between fields)."""
    lines = []
    for line in valid:
        if sep == " ":
            line = " ".join(line.split())
            line = re.sub(" ", lambda _: draw(st.sampled_from([" ", "  ", "\t", " \t "])), line)
        pad = st.sampled_from(["", " ", "\t", "  "])
        lines.append(draw(pad) + line + draw(pad))
        lines += [""] * draw(st.integers(0, 1))
    if header is not None:
        lines.insert(0, header)
    newline = draw(st.sampled_from(NEWLINES))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))


PAIRS_HEADER = "ground,aerial,lat,lon,split,city"


def make_pairs(folder: Path) -> Path:
    """A pairs.csv folder: four train and two val queries on their own tiles, plus an aerial-only val tile."""
    rows = [(f"g/{i}.jpg", f"a/{i}.png", 48.1 + i / 100, 11.5, "train" if i < 4 else "val", "munich")
            for i in range(6)] + [("", "a/extra.png", 48.2, 11.6, "val", "munich")]
    for ground, aerial, *_ in rows:
        for name, size in ((ground, (16, 32)), (aerial, (16, 16))):
            if name:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((*size, 3), 90, np.uint8)).save(folder / name)
    lines = [PAIRS_HEADER] + [",".join(map(str, row)) for row in rows]
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder


def line_count(path: Path) -> int:
    """Lines of a text file as an editor counts them (LF, CRLF or CR end a line)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return len(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def assert_names(error: BaseException, path: Path) -> None:
    """``error`` is a cvbench error whose message names ``path``, and a line of it that exists."""
    assert isinstance(error, CvbenchError), f"{type(error).__name__} escaped: {error}"
    message = str(error)
    assert str(path) in message, f"the message does not name {path}: {message[:500]}"
    for line in re.findall(re.escape(str(path)) + r":(\d+):", message):
        assert 1 <= int(line) <= line_count(path), f"line {line} is not a line of {path}: {message[:500]}"


def load_everything(dataset) -> dict[tuple[str, str], object]:
    """Every subset of every protocol of ``dataset``."""
    return {(split, subset): dataset.load(split, subset) for split in dataset.splits() for subset in SUBSETS}


def loads_or_names(make: Callable[[], object], path: Path) -> dict | None:
    """Load everything a fresh ``make()`` offers: the subsets, or None after checking the error names ``path``.

    Then ``cvbench data check``'s way (problems collected) must not raise
    anything but a cvbench error naming ``path`` either.
    """
    loaded = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        try:
            loaded = load_everything(make())
        except Exception as exc:  # noqa: BLE001 - which exception escaped is what is tested
            assert_names(exc, path)
        try:
            report = check_dataset(make(), images=False)
        except Exception as exc:  # noqa: BLE001
            assert_names(exc, path)
        else:
            for problem in report.errors:
                assert str(path) in str(problem), f"a problem that does not name {path}: {str(problem)[:500]}"
    return loaded


def counts(loaded: dict) -> dict:
    """What a comparison of two loads looks at: per subset, the image files, positives and semi-positives."""
    out = {}
    for key, pairs in loaded.items():
        semi = None if pairs.semi_positives is None else pairs.semi_positives.tolist()
        out[key] = ([str(p) for p in pairs.ground.paths], [str(p) for p in pairs.aerial.paths],
                    pairs.positives.tolist(), semi)
    return out
