"""The attribution's daily table: one row per day and symbol with any activity, the unassigned cash as
``CASH``, gathered from the active cells only (a table of every day and symbol first would hold days × symbols
rows: gigabytes for a whole market)."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd

from vnpy_rotation.attribution import AttributionInput, Bars, Fills, Unfilled
from vnpy_rotation.attribution.decompose import ACTUAL, Cells, Decomposition, _row_sums, daily_table, decompose


def _book(days: int, symbols: int, held: dict[tuple[int, int], float]) -> AttributionInput:
    zeros = np.zeros((days, symbols))
    holdings = zeros.copy()
    for (t, j), shares in held.items():
        holdings[t, j] = shares
    bars = Bars(pd.date_range("2024-01-02", periods=days, freq="B"), tuple(f"{600000 + j}.SSE" for j in range(symbols)),
                np.ones(symbols), zeros + 10.0, zeros + 10.0, zeros + 1.0, zeros)
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    return AttributionInput("vqm", bars, np.zeros(symbols), holdings, 1e6, np.full(days, 1e6),
                            Fills(empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_f),
                            Unfilled(empty_i, empty_i, empty_f, ()), zeros)


def _parts(data: AttributionInput, cells: dict[tuple[str, int, int], float], cash: dict[int, float],
           opportunity: dict[tuple[int, int], float] | None = None) -> Decomposition:
    """A decomposition by hand: the given lines, on the cells decompose would keep (held, or given a line)."""
    shape = data.holdings.shape
    given = {t * shape[1] + j for (_, t, j) in cells} | {t * shape[1] + j for (t, j) in opportunity or {}}
    flat = np.union1d(np.flatnonzero(data.holdings != 0), np.array(sorted(given), dtype=np.int64)).astype(np.int64)
    lines = {name: np.zeros(len(flat)) for name in ACTUAL}
    for (name, t, j), value in cells.items():
        lines[name][np.searchsorted(flat, t * shape[1] + j)] = value
    pnl = sum(lines.values())
    missed = [(t, j, value) for (t, j), value in (opportunity or {}).items()]
    residual = np.zeros(shape[0])
    for t, value in cash.items():
        residual[t] = value
    refused = {"limit_up": Cells.summed(*(np.array(column) for column in zip(*missed)), shape)} if missed else {}
    return Decomposition(flat, lines, pnl, refused, residual, shape)


def test_rows_are_the_active_cells_and_the_unassigned_cash_in_date_and_symbol_order():
    data = _book(3, 3, {(0, 2): 100.0, (1, 2): 100.0})  # symbol 2 held on days 0 and 1, nothing else moved
    parts = _parts(data, {("holdings", 1, 2): 50.0, ("commission", 2, 0): -5.0}, cash={1: 0.5},
                   opportunity={(2, 1): 30.0})
    table = daily_table(data, parts)
    assert list(zip(table["date"].dt.day, table["vt_symbol"])) == [
        (2, "600002.SSE"), (3, "600002.SSE"), (3, "CASH"), (4, "600000.SSE"), (4, "600001.SSE")]
    assert table["holdings"].tolist() == [0.0, 50.0, 0.0, 0.0, 0.0]
    assert table["commission"].tolist() == [0.0, 0.0, 0.0, -5.0, 0.0]
    assert table["opportunity:limit_up"].tolist() == [0.0, 0.0, 0.0, 0.0, 30.0]
    assert table["pnl"].tolist() == [0.0, 50.0, 0.5, -5.0, 0.0]
    assert table["residual"].tolist() == [0.0, 0.0, 0.5, 0.0, 0.0]
    assert set(table["strategy"]) == {"vqm"}
    # the text columns have the dtype pandas gives those strings, also when no cell is active
    quiet_book = _book(2, 2, {})
    quiet = daily_table(quiet_book, _parts(quiet_book, {}, cash={}))
    assert len(quiet) == 0
    for frame in (table, quiet):
        assert [frame[c].dtype for c in ("strategy", "vt_symbol")] == [pd.Series(["x"]).dtype] * 2


def test_a_whole_market_book_with_few_active_cells_costs_memory_for_those_cells_only():
    """The split and its table on 1 500 days × 1 500 symbols (2.25 M cells, 18 MB per float grid) where one
    symbol is held two days, bought once and paid a dividend: the decomposition works on those cells only (it
    used to build about fifteen days × symbols grids, over 250 MB)."""
    days, symbols = 1500, 1500
    data = _book(days, symbols, {(10, 7): 100.0, (11, 7): 100.0})
    dividends = np.zeros((days, symbols))
    dividends[11, 7] = 30.0
    one = np.ones(1)
    data = replace(data, dividend_cash=dividends,
                   fills=Fills(np.array([10]), np.array([7]), one * 100, one * 10.0, one * 5.0, one * 0.0, one * 0.0))
    tracemalloc.start()
    try:
        table = daily_table(data, decompose(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    table = table[table["vt_symbol"] != "CASH"]  # (the hand-made equity does not follow the book)
    assert list(zip(table["date"].dt.strftime("%m-%d"), table["vt_symbol"])) == [
        ("01-16", "600007.SSE"), ("01-17", "600007.SSE"), ("01-18", "600007.SSE")]  # bought, held, gone
    assert table["commission"].tolist() == [-5.0, 0.0, 0.0]
    assert table["dividends"].tolist() == [0.0, 30.0, 0.0]
    assert peak < 20e6  # the activity masks (2.25 MB each), a block of row sums and a few rows


def test_row_sums_are_the_grids_bit_for_bit():
    """Per-day sums of sparse cells equal ``grid.sum(axis=1)`` to the bit (numpy adds a row pairwise, in blocks
    of eight: the zeros' positions matter), whatever the block of rows."""
    rng = np.random.default_rng(3)
    for days, symbols in ((7, 3), (40, 29), (33, 300)):
        grid = np.where(rng.random((days, symbols)) < 0.3, rng.normal(0, 1e6, (days, symbols)), 0.0)
        cells = np.flatnonzero(grid)
        values = grid.reshape(-1)[cells]
        for block in (1, symbols * 2 + 1, 1 << 20):
            assert _row_sums(cells, values, grid.shape, block).tobytes() == grid.sum(axis=1).tobytes()


def test_cells_add_up_as_a_grid_would():
    """A refusal reason's cells: values of one cell added in the order given, as ``np.add.at`` into a zero grid
    adds them (the same bits), read back at any positions, summed and made dense."""
    rng = np.random.default_rng(7)
    day, symbol = rng.integers(0, 6, 40), rng.integers(0, 5, 40)
    value = rng.normal(0, 1e4, 40)
    grid = np.zeros((6, 5))
    np.add.at(grid, (day, symbol), value)
    cells = Cells.summed(day, symbol, value, (6, 5))
    assert cells.dense().tobytes() == grid.tobytes()
    positions = np.arange(30)
    assert cells.at(positions).tobytes() == grid.reshape(-1).tobytes()
    assert len(cells.flat) == len(set(zip(day.tolist(), symbol.tolist())))


def test_grids_in_column_major_order_give_the_same_table():
    """The activity mask is built flat in row-major order: a column-major holdings grid (whose reshape is a copy,
    not a view) marks the same cells, refusal cells included."""
    data = _book(3, 3, {(0, 2): 100.0, (1, 2): 100.0})
    parts = _parts(data, {("holdings", 1, 2): 50.0}, cash={}, opportunity={(2, 1): 30.0})
    fortran = replace(data, holdings=np.asfortranarray(data.holdings))
    pd.testing.assert_frame_equal(daily_table(fortran, parts), daily_table(data, parts))
    assert daily_table(fortran, parts)["opportunity:limit_up"].tolist() == [0.0, 0.0, 30.0]
