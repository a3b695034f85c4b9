"""The replay's fill-by-fill comparison with the backtest (live/consistency.py)."""

from __future__ import annotations

import pandas as pd

from vnpy_rotation.live.consistency import compare

COLUMNS = ["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission", "stamp_duty", "transfer_fee"]


def test_a_span_without_fills_compares_as_consistent():
    """A replay whose sessions traded nothing: two empty trade tables (as read from header-only CSVs)."""
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    days = pd.DatetimeIndex(["2024-07-01", "2024-07-02"])
    equity = pd.Series([1e6, 1e6], index=days)
    result = compare(empty, empty.copy(), equity, equity.copy())
    assert result.consistent
    assert list(result.daily["backtest_fills"]) == [0, 0]
    assert len(result.differences) == 0
