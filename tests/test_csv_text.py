"""The attribution tables' CSV writer without pyarrow: the text Arrow's CSV writer gives, byte for byte.

A hand-written table pins the format itself (independent of pyarrow); pyarrow's own writer is then the oracle
for any double, every column kind and the bundled backtests' tables."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyarrow import csv as pa_csv

from vnpy_rotation.attribution.csv_text import csv_text, write_csv


def arrow_text(frame: pd.DataFrame, decimals: int | None = None) -> str:
    """What Arrow's CSV writer gives for ``frame``, its floats rounded and ``-0.0`` made ``0`` first, as the
    attribution tables were written before."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            columns[name] = pa.array(values.to_numpy().astype("datetime64[D]"))
        elif pd.api.types.is_float_dtype(values):
            numbers = values.to_numpy()
            with np.errstate(invalid="ignore"):
                columns[name] = pa.array((numbers if decimals is None else np.round(numbers, decimals)) + 0.0)
        elif values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            columns[name] = pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                                      else str(v) for v in values.tolist()], type=pa.string())
        else:
            columns[name] = pa.array(values.to_numpy())
    sink = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), sink)
    return sink.getvalue().decode()


def test_a_hand_written_table():
    frame = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-02", None, "2024-02-29"]),
        "vt_symbol": ["510300.SSE", 'say "hi", twice', None],
        "quantity": np.array([100, -200, 0], dtype=np.int64),
        "ok": [True, False, True],
        "pnl": [1234.56789, -0.00004, 0.0],
        "small": [1e-5, 1.5e-7, -2.5e-6],
        "large": [9999999999.0, 1e10, 1.234567890123e12],
        "odd": [np.nan, np.inf, -np.inf],
    })
    assert csv_text(frame, decimals=None) == (
        '"date","vt_symbol","quantity","ok","pnl","small","large","odd"\n'
        '2024-01-02,"510300.SSE",100,true,1234.56789,0.00001,9999999999,nan\n'
        ',"say ""hi"", twice",-200,false,-0.00004,1.5e-7,1e+10,inf\n'
        '2024-02-29,,0,true,0,-0.0000025,1.234567890123e+12,-inf\n')
    # rounded to 0.0001: -0.00004 rounds to -0.0, written as 0
    assert csv_text(frame[["pnl"]], decimals=4) == '"pnl"\n1234.5679\n0\n0\n'


def test_a_table_longer_than_a_chunk_is_written_whole(tmp_path, monkeypatch):
    from vnpy_rotation.attribution import csv_text as module

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=10), "symbol": list("abcabcabca"),
                          "x": rng.normal(size=10) * 1e5})
    monkeypatch.setattr(module, "CHUNK_ROWS", 3)
    write_csv(frame, tmp_path / "chunks.csv", decimals=4)
    assert (tmp_path / "chunks.csv").read_bytes() == arrow_text(frame, decimals=4).encode()
    assert len((tmp_path / "chunks.csv").read_text().splitlines()) == 11


def test_an_empty_table_is_its_header(tmp_path):
    frame = pd.DataFrame({"date": pd.to_datetime([]), "x": np.array([], dtype=float)})
    write_csv(frame, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_bytes() == b'"date","x"\n' == arrow_text(frame).encode()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), min_size=1, max_size=50),
       st.sampled_from([None, 0, 2, 4, 8]))
def test_any_double_is_written_as_arrow_writes_it(numbers, decimals):
    frame = pd.DataFrame({"x": np.array(numbers, dtype=np.float64)})
    assert csv_text(frame, decimals) == arrow_text(frame, decimals)


def test_every_bit_pattern_and_every_decimal_exponent():
    rng = np.random.default_rng(20261204)
    patterns = rng.integers(0, 2**64, size=20_000, dtype=np.uint64).view(np.float64)
    scaled = rng.normal(size=20_000) * 10.0 ** rng.integers(-30, 30, size=20_000)
    edges = np.array([10.0 ** e for e in range(-12, 22)] + [-(10.0 ** e) * 1.5 for e in range(-12, 22)]
                     + [9.9999e-5, 9.99999e-7, 9999999999.5, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308])
    # where the fast path's layout is rewritten: 1e-6 ≤ |x| < 1e-5 and 1e10 ≤ |x| < 1e16
    between = np.concatenate([10.0 ** rng.uniform(-6, -5, 5_000), -(10.0 ** rng.uniform(10, 16, 5_000)),
                              np.round(10.0 ** rng.uniform(10, 16, 2_000))])
    for numbers in (patterns, scaled, edges, between):
        frame = pd.DataFrame({"x": numbers})
        assert csv_text(frame) == arrow_text(frame)


def test_every_column_kind_with_missing_values():
    frame = pd.DataFrame({
        "day": pd.Series(pd.to_datetime(["2020-01-01", None, "1999-12-31"])),
        "text": pd.Series(["a", None, "é,\"中\nx"], dtype="str"),
        "objects": pd.Series(["a", 3, None], dtype=object),
        "int": np.array([1, -2, 2**62]),
        "flag": [True, False, False],
        "float": [0.1 + 0.2, np.nan, -0.0],
    })
    assert csv_text(frame) == arrow_text(frame)


@pytest.mark.parametrize("strategy", ["etf_rotation", "vqm"])
def test_the_bundled_backtests_attribution_tables(bundled_store, strategy):
    from vnpy_rotation.attribution import attribute
    from vnpy_rotation.backtest.attribution_inputs import from_backtest
    from vnpy_rotation.backtest.runner import read_spec, run_backtest

    report = attribute(from_backtest(run_backtest(read_spec(strategy, None, None, None, None), bundled_store)))
    tables = [(report.daily, 4), (report.markouts, 4)]
    if report.segments is not None:
        tables.append((report.segments.daily(), None))
    for table, decimals in tables:
        assert len(table) > 100
        assert csv_text(table, decimals) == arrow_text(table, decimals)


@pytest.fixture(scope="module")
def bundled_store(runtime_home):
    from conftest import fresh_bundled_store

    return fresh_bundled_store()
