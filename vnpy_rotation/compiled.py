"""Compiled loops without importing numba on the common path.

Every numba function of the package is declared with :func:`jit` instead of ``numba.njit``. The few on a
backtest's path are also exported, with fixed signatures, into one C extension (``vnpy_rotation._compiled``,
built by :mod:`vnpy_rotation.aot_build` with numba's ahead-of-time compiler at install time). A call then
resolves to:

- the extension's function, when the extension is importable, its build stamp equals the hash of the
  sources it was compiled from (an edited kernel never runs stale machine code) and every argument has
  exactly the exported type (dtype, dimensions, C order): numba itself is never imported;
- otherwise numba's ``njit(cache=True)`` of the same Python function, numba imported on that first call.

Both compile the same Python source with the same LLVM, without fast-math: the results are the same bits
(tests/test_aot.py compares them on the bundled backtests).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

PACKAGE = Path(__file__).resolve().parent
# The sources the extension is compiled from: the exporting modules and every package module they import
# (aot_build refuses to build when that set grows beyond this list).
STAMPED = ("__init__.py", "aot_build.py", "backtest/__init__.py", "backtest/kernel.py", "backtest/result.py",
           "compiled.py", "config.py", "errors.py", "factors/__init__.py", "factors/library.py", "risk/__init__.py",
           "risk/config.py", "risk/drift.py", "risk/ladder.py", "risk/limits.py", "risk/response.py", "risk/stops.py",
           "rotation/__init__.py", "rotation/capacity.py", "rotation/selection.py")
# Set to 1 to ignore the extension (comparing it with numba). NUMBA_DISABLE_JIT=1 ignores it too, so that the
# kernel can still be debugged as plain Python.
DISABLE_ENV = "VNPY_ROTATION_NO_AOT"

# Argument codes of an exported signature: arrays are C-ordered ("f2": float64, 2 dimensions).
_ARRAYS = {"f": np.dtype(np.float64), "i": np.dtype(np.int64), "b": np.dtype(np.bool_)}
_SCALARS: dict[str, tuple[type, ...]] = {"float": (float, np.float64), "int": (int, np.int64),
                                         "bool": (bool, np.bool_)}

_pending: list[_Lazy] = []
EXPORTED: dict[str, tuple[str, tuple[str, ...]]] = {}  # name: (module, argument codes), as declared
_numba_loaded = False


def source_stamp() -> int:
    """63 bits of the SHA-256 of the compiled sources (:data:`STAMPED`)."""
    digest = hashlib.sha256()
    for name in STAMPED:
        digest.update(name.encode() + b"\0" + (PACKAGE / name).read_bytes() + b"\0")
    return int.from_bytes(digest.digest()[:8], "little") >> 1


@functools.cache
def _extension() -> Any:
    """The compiled extension when present and built from the current sources, else None."""
    if os.environ.get(DISABLE_ENV) == "1" or os.environ.get("NUMBA_DISABLE_JIT") == "1":
        return None
    try:
        module = import_module("vnpy_rotation._compiled")
        if int(module.stamp()) != source_stamp():
            return None
    except (OSError, ImportError, ValueError, TypeError):
        return None
    return module


def _matches(args: tuple[Any, ...], codes: Sequence[str]) -> bool:
    """Whether ``args`` are exactly of the exported types (else numba specialises on what they are)."""
    if len(args) != len(codes):
        return False
    for value, code in zip(args, codes):
        if code == "float4":
            if not (type(value) is tuple and len(value) == 4 and all(type(v) is float for v in value)):
                return False
        elif code in _SCALARS:
            if not isinstance(value, _SCALARS[code]) or (code == "int" and isinstance(value, (bool, np.bool_))):
                return False
        elif not (isinstance(value, np.ndarray) and value.dtype == _ARRAYS[code[0]] and value.ndim == int(code[1:])
                  and value.flags.c_contiguous):
            return False
    return True


class _Lazy:
    """A function numba compiles on its first call (numba is imported then, not when the module loads)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.py_func = fn
        self.dispatcher: Any = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        if self.dispatcher is None:
            load_numba()
        return self.dispatcher(*args)


class _Exported:
    """An exported function: the extension's when the arguments fit its signature, else numba's."""

    def __init__(self, fn: Callable[..., Any], compiled: Callable[..., Any], codes: Sequence[str],
                 fallback: _Lazy) -> None:
        self.py_func = fn
        self.compiled = compiled
        self.codes = tuple(codes)
        self.fallback = fallback
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        if _matches(args, self.codes):
            return self.compiled(*args)
        return self.fallback(*args)


def load_numba() -> None:
    """Import numba and make every declared function a ``njit(cache=True)`` dispatcher.

    numba looks a compiled function's callees up in its module's globals when it compiles it, so every
    module of the package holding a lazy function gets the dispatcher itself in its place."""
    global _numba_loaded
    if _numba_loaded:
        return
    from numba import njit

    for lazy in _pending:
        lazy.dispatcher = njit(cache=True)(lazy.py_func)
    _numba_loaded = True
    for name, module in list(sys.modules.items()):
        if name == __package__ or name.startswith(f"{__package__}."):
            for key, value in list(vars(module).items()):
                if isinstance(value, _Lazy) and value.dispatcher is not None:
                    setattr(module, key, value.dispatcher)


def jit(export: Sequence[str] | None = None) -> Callable[[F], F]:
    """``numba.njit(cache=True)``, compiled on first call; ``export``: the argument codes under which the
    function is also in the compiled extension (see :mod:`vnpy_rotation.aot_build`)."""

    def decorate(fn: F) -> F:
        if export is not None:
            EXPORTED[fn.__name__] = (fn.__module__, tuple(export))
        if _numba_loaded:
            from numba import njit

            return cast(F, njit(cache=True)(fn))
        lazy = _Lazy(fn)
        _pending.append(lazy)
        if export is not None:
            module = _extension()
            if module is not None and hasattr(module, fn.__name__):
                return cast(F, _Exported(fn, getattr(module, fn.__name__), export, lazy))
        return cast(F, lazy)

    return decorate
