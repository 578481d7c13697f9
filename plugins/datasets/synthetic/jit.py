"""Compiled kernels of the generator: numba, compiled on first use or before workers fork, cached on disk.

Per-pixel work (marching a ray, painting a cell) is a loop that numpy can
only write as many whole-array passes over memory; compiled with numba it is
one pass. A kernel must give numpy's bytes exactly, so the compilation keeps
IEEE semantics: no fast-math and no fused multiply-add (numba leaves LLVM's
contraction off), ``error_model="numpy"`` so that a division by zero gives
``inf`` as numpy does. In a kernel, float32 constants are written
``np.float32(...)``: a bare Python float is float64 there and would round
differently.

Importing this module costs nothing: numba is imported, and each kernel
compiled (or loaded from numba's cache beside the source), the first time a
kernel runs or :func:`compile_kernels` is called. The generator calls it
before forking its workers so that each does not compile again, and
``make install`` once, so that a new user's first run does not wait for it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from rich.progress import Progress

_KERNELS: list["Kernel"] = []
_WARNED_NO_CACHE = False


class Kernel:
    """A function compiled by numba for one explicit signature, on first need."""

    def __init__(self, function: Callable[..., Any], signature: str):
        self.function = function
        self.signature = signature
        self._compiled: Callable[..., Any] | None = None
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def compiled(self) -> Callable[..., Any]:
        """The compiled function: from numba's on-disk cache where it is there, else compiled now."""
        if self._compiled is None:
            _compile_helpers(self.function.__globals__)
            self._compiled = _njit(self.function, self.signature)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        return self.compiled()(*args)


class Helper:
    """A function that kernels call, compiled into them by numba; plain Python where Python calls it.

    numba resolves a kernel's global names when it compiles the kernel, so
    before that :func:`_compile_helpers` puts each helper's numba version
    in its place in the module.
    """

    def __init__(self, function: Callable[..., Any]):
        self.function = function
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


def helper(function: Callable[..., Any]) -> Helper:
    """Decorate a small function (types inferred from its callers) that kernels of the same module call."""
    return Helper(function)


def _compile_helpers(names: dict[str, Any]) -> None:
    """Replace each :class:`Helper` among a module's ``names`` by its numba version (once per module).

    numba compiles a helper when it first types a call to it, so a helper
    may call another helper of the same module.
    """
    for name, value in list(names.items()):
        if isinstance(value, Helper):
            names[name] = _njit(value.function)


def _njit(function: Callable[..., Any], signature: str | None = None) -> Callable[..., Any]:
    """numba's compiled ``function``, cached on disk where numba finds a place for its cache.

    numba keeps its cache beside the source or, where that folder is read-only,
    in the user's cache folder (``NUMBA_CACHE_DIR``); where neither can be
    used it refuses to compile with ``cache=True``. Then the kernel is
    compiled in memory each run, and a warning says so once.
    """
    import numba

    options = {"nogil": True, "error_model": "numpy"}
    arguments = () if signature is None else (signature,)
    try:
        return numba.njit(*arguments, cache=True, **options)(function)
    except RuntimeError as error:
        if "cannot cache" not in str(error):
            raise
        global _WARNED_NO_CACHE
        if not _WARNED_NO_CACHE:
            warnings.warn(f"numba cannot cache the synthetic world's compiled kernels ({error}); they are compiled "
                          "again in each process: set NUMBA_CACHE_DIR to a writable folder to keep them",
                          RuntimeWarning, stacklevel=2)
            _WARNED_NO_CACHE = True
        return numba.njit(*arguments, cache=False, **options)(function)


def kernel(signature: str) -> Callable[[Callable[..., Any]], Kernel]:
    """Decorate a loop function as a kernel with a numba ``signature``, e.g. ``"void(float32[:, :], int64)"``.

    The explicit signature makes a call with other dtypes fail at once
    instead of silently compiling a second version.
    """
    def decorate(function: Callable[..., Any]) -> Kernel:
        compiled = Kernel(function, signature)
        _KERNELS.append(compiled)
        return compiled
    return decorate


def compile_kernels(progress: Progress | None = None) -> None:
    """Compile (or load from numba's cache) every kernel defined so far, shown as a task of ``progress``.

    The first time on a machine this takes about 10 s on 2 cores; from the
    cache, about half a second.
    """
    task = None if progress is None else progress.add_task("synthetic world: compiling kernels (cached after)",
                                                          total=len(_KERNELS), info="")
    for compiled in _KERNELS:
        compiled.compiled()
        if task is not None:
            progress.advance(task)
