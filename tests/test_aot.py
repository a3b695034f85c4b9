"""The backtest loops compiled ahead of time (``vnpy_rotation._compiled``, built at install) give the same bits as
numba's just-in-time compilation of the same source, a backtest process using them never imports numba, and a
build older than the sources or arguments of other types fall back to numba."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from datetime import date

import numpy as np
import pytest
from conftest import ROOT, fresh_bundled_store

from vnpy_rotation import compiled
from vnpy_rotation.backtest import kernel
from vnpy_rotation.rotation import capacity, selection

REBUILD = "vnpy_rotation._compiled is missing or older than its sources: run python -m vnpy_rotation.aot_build"
EXPORTED = ((kernel, "run_days"), (selection, "_hysteresis"), (capacity, "_cap_rows"))


@pytest.fixture(scope="module")
def bundled_store(runtime_home):
    return fresh_bundled_store()


def _backtest(store, out):
    from vnpy_rotation.backtest.outputs import write_outputs
    from vnpy_rotation.backtest.runner import read_spec, run_backtest

    run = run_backtest(read_spec("etf_rotation", None, date(2022, 1, 4), None, None), store)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in write_outputs(run, out) if p.name != "report.html"}


def test_the_extension_and_numba_write_the_same_files(bundled_store, tmp_path, monkeypatch):
    assert compiled._extension() is not None, REBUILD
    calls = []
    for module, name in EXPORTED:
        exported = getattr(module, name)
        assert isinstance(exported, compiled._Exported), REBUILD

        def through_extension(*args, exported=exported):
            assert compiled._matches(args, exported.codes), f"{exported.__name__} called with other types"
            calls.append((exported.__name__, args))
            return exported.compiled(*args)

        monkeypatch.setattr(module, name, through_extension)
    ahead = _backtest(bundled_store, tmp_path / "aot")
    assert {name for name, _ in calls} == {"run_days", "_hysteresis", "_cap_rows"}
    monkeypatch.undo()
    for module, name in EXPORTED:
        monkeypatch.setattr(module, name, getattr(module, name).fallback)
    assert _backtest(bundled_store, tmp_path / "numba") == ahead


def test_a_process_running_the_kernel_never_imports_numba(bundled_store, tmp_path):
    assert compiled._extension() is not None, REBUILD
    calls = []
    exported = kernel.run_days
    try:
        kernel.run_days = lambda *args: calls.append(args) or exported(*args)
        from vnpy_rotation.backtest.runner import read_spec, run_backtest

        run_backtest(read_spec("equal_weight", None, date(2024, 6, 3), None, None), bundled_store)
    finally:
        kernel.run_days = exported
    assert calls
    (tmp_path / "args.pickle").write_bytes(pickle.dumps(calls[0]))
    script = ("import pickle, sys; from vnpy_rotation.backtest import kernel;"
              f"out = kernel.run_days(*pickle.load(open({str(tmp_path / 'args.pickle')!r}, 'rb')));"
              f"pickle.dump(out, open({str(tmp_path / 'out.pickle')!r}, 'wb'));"
              "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    by_process = list(pickle.loads((tmp_path / "out.pickle").read_bytes()))
    by_numba = list(kernel.run_days.fallback(*calls[0]))
    assert len(by_process) == len(by_numba) == 8
    for out in (by_process, by_numba):  # the order and action buffers hold n_orders / n_actions rows
        out[3], out[5] = out[3][:out[4]], out[5][:out[6]]
    for a, b in zip(by_process, by_numba):
        assert np.array_equal(a, b, equal_nan=True) and np.asarray(a).dtype == np.asarray(b).dtype


def test_a_build_older_than_its_sources_is_never_used(monkeypatch):
    monkeypatch.setattr(compiled, "source_stamp", lambda: 12345)
    compiled._extension.cache_clear()
    try:
        assert compiled._extension() is None
        declared = compiled.jit(export=("f2", "f2", "f1"))(capacity._cap_rows.py_func)
        assert not isinstance(declared, compiled._Exported)  # numba's (lazy until numba is loaded)
        assert np.array_equal(declared(np.ones((1, 2)), np.ones((1, 2)), np.zeros(2))[0], np.ones((1, 2)))
    finally:
        monkeypatch.undo()
        compiled._extension.cache_clear()


@pytest.mark.parametrize(("args", "fits"), [
    ((np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3)), True),
    ((np.zeros((2, 3), np.float32), np.zeros((2, 3)), np.zeros(3)), False),  # another dtype
    ((np.zeros((3, 2)).T, np.zeros((2, 3)), np.zeros(3)), False),  # not C-ordered
    ((np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((1, 3))), False),  # another number of dimensions
    ((np.zeros((2, 3)), np.zeros((2, 3))), False),
])
def test_only_arguments_of_the_exported_types_go_to_the_extension(args, fits):
    assert compiled._matches(args, ("f2", "f2", "f1")) is fits


@pytest.mark.parametrize(("value", "code", "fits"), [
    (3, "int", True), (np.int64(3), "int", True), (True, "int", False), (3.0, "int", False),
    (1.5, "float", True), (True, "bool", True), (np.bool_(False), "bool", True),
    ((1.0, 2.0, np.nan, 0.5), "float4", True), ((1.0, 2.0, 3.0), "float4", False), ((1, 2.0, 3.0, 4.0), "float4", False),
])
def test_scalars_and_tuples_fit_only_their_exported_type(value, code, fits):
    assert compiled._matches((value,), (code,)) is fits


@pytest.mark.parametrize("without", ["a C compiler", "numba.pycc"])
def test_an_install_that_cannot_compile_still_succeeds(tmp_path, without):
    """No C compiler (numba.pycc links with the system's), or a numba without ``numba.pycc`` (pending deprecation
    since numba 0.57): setup.py's build_ext warns, drops the extension and succeeds, also in the in-place build an
    editable install does (which copies every listed extension into the source tree); numba then compiles at first
    use. Nothing is written outside ``tmp_path``: the build fails before copying."""
    env = {**os.environ, "CC": str(tmp_path / "no-cc"), "CXX": str(tmp_path / "no-cxx")} if without == "a C compiler" \
        else dict(os.environ)
    block = "sys.modules['numba.pycc'] = None; " if without == "numba.pycc" else ""
    argv = ["setup.py", "-q", "build_ext", "--inplace", "--build-lib", str(tmp_path / "lib"),
            "--build-temp", str(tmp_path / "temp")]
    script = f"import runpy, sys; {block}sys.argv = {argv!r}; runpy.run_path('setup.py', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list((tmp_path / "lib").rglob("_compiled*"))
