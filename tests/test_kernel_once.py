"""The day loop runs once at any size: full record buffers grow inside the compiled kernel.

A plan holding 130 of 260 stocks and swapping the whole set every day sends 260 orders per row, more than
the engine's first estimate of room (3 × 64 per row), so the record buffer must grow mid-run. The records
must be exactly those of a run that had room for everything from the start (what the engine used to get
by running the whole kernel a second time), and the kernel must be called once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scenario_market import flat, make_panels

from vnpy_rotation.backtest import engine, kernel
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.data.market_data import build_market_data

N_DAYS, N_SYMBOLS, HELD = 24, 260, 130


def _rotating_market():
    """Stocks 600000..600259 with prices on a 17-step fen grid; a 1→2 factor step (an ex-date) on the
    first ten symbols halfway, so corporate-action records are written too."""
    days = pd.bdate_range("2023-09-04", periods=N_DAYS).strftime("%Y-%m-%d").tolist()
    symbols = [f"600{j:03d}.SSE" for j in range(N_SYMBOLS)]
    bars = {s: [flat(10.0 + ((7 * i + 13 * j) % 17) * 0.01, 10_000_000.0) for i in range(N_DAYS)]
            for j, s in enumerate(symbols)}
    factor = {s: [1.0] * (N_DAYS // 2) + [2.0] * (N_DAYS - N_DAYS // 2) for s in symbols[:10]}
    md = build_market_data(make_panels(days, bars, factor=factor))
    weights = np.zeros((N_DAYS, N_SYMBOLS))
    for i in range(N_DAYS):  # even days the first half, odd days the second: every name turns over daily
        start = 0 if i % 2 == 0 else HELD
        weights[i, start:start + HELD] = 1.0 / HELD * 0.99
    plan = TargetPlan(pd.DataFrame(weights, index=md.days, columns=list(md.symbols)))
    return md, plan


def _records(run) -> tuple[np.ndarray, ...]:
    return run.holdings_array, run.cash_array, run.flows_array, run.order_rows, run.action_rows


def _calls_with(monkeypatch, order_capacity: int | None = None, action_capacity: int | None = None):
    """Wrap the compiled day loop: count its calls and optionally force its initial buffer sizes."""
    calls: list[tuple[int, int]] = []
    original = kernel.run_days

    def counted(*args):
        *rest, orders, actions = args
        orders = orders if order_capacity is None else order_capacity
        actions = actions if action_capacity is None else action_capacity
        calls.append((orders, actions))
        return original(*rest, orders, actions)

    monkeypatch.setattr(engine.kernel, "run_days", counted)
    return calls


@pytest.fixture(scope="module")
def rotating():
    return _rotating_market()


def test_a_busy_plan_runs_the_kernel_once(monkeypatch, rotating):
    md, plan = rotating
    config = BacktestConfig(capital=1e8)
    calls = _calls_with(monkeypatch)
    grown = simulate(md, plan, config)
    assert len(calls) == 1
    # the first estimate of room was too small: the buffer grew inside the kernel
    assert len(grown.order_rows) > calls[0][0]
    assert len(grown.action_rows) > 0

    # the same run with room for every record from the start (no growth): identical records, bit for bit
    monkeypatch.undo()
    _calls_with(monkeypatch, order_capacity=10 * len(grown.order_rows), action_capacity=1000)
    roomy = simulate(md, plan, config)
    for got, want in zip(_records(grown), _records(roomy)):
        assert got.tobytes() == want.tobytes()
    # and with one row of room to start (growing from 1): identical again
    monkeypatch.undo()
    _calls_with(monkeypatch, order_capacity=1, action_capacity=1)
    tiny = simulate(md, plan, config)
    for got, want in zip(_records(tiny), _records(roomy)):
        assert got.tobytes() == want.tobytes()
    pd.testing.assert_frame_equal(tiny.to_result().orders, roomy.to_result().orders)


def test_every_row_turns_over_fully(rotating):
    md, plan = rotating
    run = simulate(md, plan, BacktestConfig(capital=1e8))
    fills = run.to_result().trades
    per_day = fills.groupby("datetime")["vt_symbol"].nunique()
    # from the second execution day on, each day sells one half and buys the other
    assert (per_day.iloc[1:] == N_SYMBOLS).all()
    assert per_day.iloc[0] == HELD


def _python_text(values: list[str]) -> pd.Series:
    """The column pandas makes of Python strings given one per row (what the frames held before)."""
    return pd.Series(np.array(values, dtype=object))


def test_text_columns_are_the_per_row_strings(rotating):
    """The frames' text columns (built as vocabulary.take(codes)) equal the per-row strings with their dtype:
    symbols, sides, statuses, refusal reasons, and the plan's notes where given, else its reason."""
    md, plan = rotating
    notes = pd.DataFrame(None, index=plan.frame.index, columns=plan.frame.columns, dtype=object)
    notes.iloc[::3, ::7] = "rank 1"
    notes.iloc[1::3, 2::7] = ""  # an empty note falls back to the plan's reason
    noted = TargetPlan(plan.frame, reason="rotate", notes=notes)
    run = simulate(md, noted, BacktestConfig(capital=1e8, participation_cap=0.001))
    result = run.to_result()
    rows = run.order_rows
    symbols = [md.symbols[int(j)] for j in rows[:, 1]]
    cells = notes.to_numpy(dtype=object)
    causes = [cells[int(r), int(j)] if isinstance(cells[int(r), int(j)], str) and cells[int(r), int(j)] else "rotate"
              for r, j in zip(rows[:, 14], rows[:, 1])]
    orders = result.orders
    assert {"rank 1", "rotate"} <= set(causes)
    assert (orders["status"] == "partial").any() and (orders["status"] == "filled").any()
    for column, values in (("vt_symbol", symbols), ("direction", ["buy" if b else "sell" for b in rows[:, 2]]),
                           ("cause", causes)):
        pd.testing.assert_series_equal(orders[column], _python_text(values), check_names=False)
    filled = rows[:, 5] > 0
    pd.testing.assert_series_equal(result.trades["reason"], _python_text(list(np.array(causes, dtype=object)[filled])),
                                   check_names=False)
    assert result.orders["reason"].dtype == _python_text(["x"]).dtype
    # an empty record set keeps the empty columns' dtype (objects)
    empty = simulate(md, TargetPlan(plan.frame.iloc[:0]), BacktestConfig()).to_result()
    assert len(empty.trades) == 0 and empty.trades["vt_symbol"].dtype == object
