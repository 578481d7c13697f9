"""The generator's compiled kernels: numba loads only when a world is generated, and a kernel keeps its dtypes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from cvbench_plugins.datasets.synthetic.jit import kernel


def test_importing_the_generator_leaves_numba_unloaded_until_its_kernels_are_compiled():
    probe = """
import sys
from cvbench_plugins.datasets.synthetic import generate, jit
assert "numba" not in sys.modules, "importing the generator imported numba"
assert jit._KERNELS, "the generator defines no kernel"
jit.compile_kernels()
assert "numba" in sys.modules
assert all(k._compiled is not None for k in jit._KERNELS)
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@kernel("void(float32[:], float32)")
def _add(values, amount):
    for i in range(values.size):
        values[i] += amount


def test_a_kernel_runs_compiled_and_refuses_other_dtypes_instead_of_compiling_them():
    values = np.zeros(3, np.float32)
    _add(values, np.float32(1.5))
    assert values.tolist() == [1.5, 1.5, 1.5]
    with pytest.raises(TypeError, match="float64"):
        _add(np.zeros(3), 1.0)


# A kernel calling a helper, as source: imported from a file in one test, run as `python -c` in the other.
HELPER_AND_KERNEL = """
from cvbench_plugins.datasets.synthetic.jit import helper, kernel

@helper
def twice(value):
    return 2.0 * value

@kernel("void(float64[:])")
def double_all(values):
    for i in range(values.size):
        values[i] = twice(values[i])
"""


def test_a_kernel_calls_a_helper_that_python_can_call_too(tmp_path):
    source = tmp_path / "helper_and_kernel.py"
    source.write_text(HELPER_AND_KERNEL)
    spec = importlib.util.spec_from_file_location("helper_and_kernel", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.twice(1.5) == 3.0
    values = np.array([0.5, -2.0])
    module.double_all(values)
    assert values.tolist() == [1.0, -4.0]
    assert module.twice(4.0) == 8.0


def test_a_kernel_whose_cache_has_no_place_is_compiled_in_memory_with_one_warning():
    # numba has nowhere to keep the cache of code that is not in a file: the same refusal as a read-only install
    # without a writable user cache folder.
    probe = HELPER_AND_KERNEL + """
import warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    values = np.array([1.5])
    double_all(values)
assert values.tolist() == [3.0]
assert len(caught) == 1 and "NUMBA_CACHE_DIR" in str(caught[0].message), [str(w.message) for w in caught]
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
