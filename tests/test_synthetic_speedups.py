"""The pieces that make the synthetic generator faster, each against hand-computed values.

The bytes they produce are checked as a whole by ``test_synthetic_identity.py``.
"""

from __future__ import annotations

import multiprocessing
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cvbench_plugins.datasets.synthetic.citymap import CityMap
from cvbench_plugins.datasets.synthetic.frame import SmoothField, StreetFrame
from cvbench_plugins.datasets.synthetic.heap import keep_freed_memory
from cvbench_plugins.datasets.synthetic.materials import Material
from cvbench_plugins.datasets.synthetic.plan import Area
from cvbench_plugins.datasets.synthetic.raster import Canvas, paint_areas


def _page_faults_of_a_second_array(queue) -> None:
    """In a worker: tune the heap, free a 16 MB array, and count the new pages touched by the next one."""
    tuned = keep_freed_memory()
    np.ones(2 << 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    np.ones(2 << 20)
    queue.put((tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_tuned_worker_reuses_freed_arrays_instead_of_touching_new_pages():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_page_faults_of_a_second_array, args=(queue,))
    worker.start()
    tuned, faults = queue.get(timeout=30)
    worker.join()
    if not tuned:
        pytest.skip("the C library has no mallopt (not glibc)")
    assert faults < 100  # untuned, the freed block is handed back and the next one faulted in: 500 pages here


FIRST_ARRAYS_FAULTS = """
import resource
import numpy as np
from cvbench_plugins.datasets.synthetic.heap import keep_freed_memory
tuned = keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
arrays = [np.ones(1 << 17) for _ in range(24)]  # 1 MiB each: numpy advises only arrays from 4 MiB itself
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _huge_pages_on_advice() -> bool:
    """Whether this kernel gives transparent huge pages, compacting for them, to memory advised so."""
    settings = Path("/sys/kernel/mm/transparent_hugepage")
    try:
        enabled, defrag = ((settings / name).read_text() for name in ("enabled", "defrag"))
    except OSError:
        return False
    return "[never]" not in enabled and any(f"[{mode}]" in defrag for mode in ("always", "madvise", "defer+madvise"))


@pytest.mark.skipif(not _huge_pages_on_advice(), reason="the kernel gives no transparent huge pages on advice")
def test_a_tuned_process_faults_in_its_first_small_arrays_a_huge_page_at_a_time():
    # A fresh interpreter: a forked worker would inherit this process's heap, which earlier tests left fragmented.
    tuned, faults = subprocess.run([sys.executable, "-c", FIRST_ARRAYS_FAULTS], capture_output=True, text=True,
                                   check=True).stdout.split()
    if tuned != "True":
        pytest.skip("the C library has no mallopt (not glibc)")
    # At most 2 MiB before the first huge page boundary comes in 4 KiB pages; all in 4 KiB pages it is 6,144 faults.
    assert int(faults) < 1500


def test_two_fields_on_the_same_nodes_are_evaluated_together_bilinearly():
    first = SmoothField(np.array([[0.0, 4.0, 8.0], [2.0, 6.0, 10.0], [4.0, 8.0, 12.0]]), spacing=10.0)
    second = SmoothField(np.array([[1.0, 1.0, 1.0], [1.0, 3.0, 1.0], [1.0, 1.0, 1.0]]), spacing=10.0)
    x, y = np.array([5.0, 10.0, 12.5]), np.array([5.0, 10.0, 17.5])
    a, b = SmoothField.evaluate((first, second), x, y)
    # first = 0.4 x + 0.2 y; second rises from 1 at the corners to 3 at node (1, 1).
    assert a.tolist() == [3.0, 6.0, 8.5]
    assert b.tolist() == [1.5, 3.0, 1.375]
    assert first(x, y).tolist() == a.tolist() and second(x, y).tolist() == b.tolist()


def test_boxes_paint_the_hand_counted_cells_of_each_box_in_box_order():
    size = 8
    canvas = Canvas(CityMap.blank(size), StreetFrame(size, cos=1.0, sin=0.0, warp=0.0))
    # u = x - 4, v = y - 4 at cell centres (x = col + 0.5, y = size - row - 0.5).
    areas = [Area(-2.0, 0.0, 0.0, 1.0, Material.ROAD, (1, 1, 1)), Area(1.0, 2.0, -2.0, 0.0, Material.WATER, (2, 2, 2)),
             Area(-1.0, 0.0, 0.0, 1.0, Material.GRAVEL, (3, 3, 3))]  # the last over the first's second cell
    paint_areas(canvas, areas)
    painted = np.argwhere(canvas.city.material != Material.GRASS)
    assert painted.tolist() == [[3, 2], [3, 3], [4, 5], [5, 5]]
    assert canvas.city.material[tuple(painted.T)].tolist() == [Material.ROAD, Material.GRAVEL, Material.WATER,
                                                               Material.WATER]
    assert canvas.city.top[tuple(painted.T)][:, 0].tolist() == [1, 3, 2, 2]


def test_the_planners_draws_are_numpys_own_draws_without_their_checks():
    from cvbench_plugins.datasets.synthetic.plan import pick, uniform

    weights = (0.5, 0.25, 0.125, 3.0)
    odds = np.array(weights) / sum(weights)
    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    for low, high in [(0.0, 1.0), (-3.5, 7.25), (6, 12)] * 300:
        assert uniform(ours, low, high) == numpys.uniform(low, high)
        assert pick(weights, ours) == int(numpys.choice(len(weights), p=odds))
