"""Adjustment factors: recovery from qfq pairs and preclose, split detection on real ETFs."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED, REAL, needs_real
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vnpy_rotation.data.corporate_actions import (
    cumulative_factor,
    find_jumps,
    from_preclose,
    from_qfq_pair,
    infer_from_jumps,
)
from vnpy_rotation.data.formats import parse
from vnpy_rotation.market.instruments import lookup


def _series(path: Path) -> pd.Series:
    frame = parse(path).frame
    return frame.set_index("date")["close"]


def _frame(path: Path) -> pd.DataFrame:
    return parse(path).frame.set_index("date")


def _jumps(path: Path, vt_symbol: str):
    frame = _frame(path)
    inst = lookup(vt_symbol)
    return find_jumps(frame.index, frame["close"].to_numpy(), [], inst.price_limit)


@needs_real
@pytest.mark.parametrize("file,vt_symbol,day,move", [
    ("etf_daily_unadjusted_tdx/159928.csv", "159928.SZSE", date(2021, 6, 25), -0.74),
    ("etf_daily_unadjusted_tdx/159941.csv", "159941.SZSE", date(2022, 7, 5), -0.75),
    ("etf_daily_unadjusted_tdx/512010.csv", "512010.SSE", date(2021, 6, 28), -0.74),
    ("etf_daily_unadjusted_em/510500.csv", "510500.SSE", date(2015, 4, 15), 2.49),
])
def test_real_unit_splits_are_detected(file, vt_symbol, day, move):
    jumps = _jumps(REAL / file, vt_symbol)
    hit = [j for j in jumps if j.day == day]
    assert hit and hit[0].move == pytest.approx(move, abs=0.01)


@needs_real
def test_real_market_moves_are_not_splits():
    # 159915 rose 20 % on 2024-09-30 and 2024-10-08 under the ±20 % ChiNext-ETF limit: real moves.
    assert _jumps(REAL / "etf_daily_unadjusted_em/159915.csv", "159915.SZSE") == []
    assert _jumps(REAL / "etf_daily_unadjusted_tdx/510300.csv", "510300.SSE") == []


def test_inferred_split_makes_adjusted_series_continuous():
    frame = _frame(BUNDLED / "etf/unadjusted_tdx/159941.csv")
    inst = lookup("159941.SZSE")
    jumps = find_jumps(frame.index, frame["close"].to_numpy(), [], inst.price_limit)
    assert [j.day for j in jumps] == [date(2022, 7, 5)]
    events = infer_from_jumps(jumps, frame.index, frame["close"].to_numpy(), frame["open"].to_numpy())
    adjusted = frame["close"].to_numpy() * cumulative_factor(frame.index, events)
    returns = adjusted[1:] / adjusted[:-1] - 1
    assert np.nanmax(np.abs(returns)) < 0.10 + 0.005  # real limit-up days round to just above 10 %
    assert find_jumps(frame.index, frame["close"].to_numpy(), events, inst.price_limit) == []


@needs_real
def test_510500_pair_recovers_consolidation_and_distribution():
    events = from_qfq_pair(_series(REAL / "etf_daily_unadjusted_em/510500.csv"),
                           _series(REAL / "etf_daily_qfq_em/510500.csv"))
    by_day = {e.ex_date: e.factor for e in events}
    assert by_day[date(2015, 4, 15)] == pytest.approx(0.28, abs=0.005)  # ~1:3.57 consolidation
    assert by_day[date(2022, 8, 29)] == pytest.approx(1.145, abs=0.002)  # the −12.7 % ex-date
    u = _series(REAL / "etf_daily_unadjusted_em/510500.csv")
    inst = lookup("510500.SSE")
    assert find_jumps(u.index, u.to_numpy(), events, inst.price_limit) == []


@needs_real
def test_preclose_factors_on_a_real_stock():
    frame = parse(REAL / "stocks_daily_unadjusted_baostock/600000.csv.gz").frame
    events = from_preclose(frame["date"], frame["close"].to_numpy(), frame["preclose"].to_numpy())
    assert len(events) >= 10
    assert all(e.factor > 1 for e in events)  # dividends and bonus shares only raise the factor
    # 2010-06-10: close 18.50 the day before, reference price 14.12 (bonus shares + dividend).
    assert events[0].ex_date == date(2010, 6, 10) and events[0].factor == pytest.approx(18.50 / 14.12)


@settings(max_examples=int(__import__("os").environ.get("PROPERTY_EXAMPLES", 40)), deadline=None)
@given(
    st.integers(min_value=0, max_value=2**31 - 1),
    # Events at least 40 trading days apart (real funds act at most a few times a year).
    st.lists(st.tuples(st.integers(1, 14).map(lambda k: 40 * k), st.floats(0.005, 0.06),
                       st.sampled_from([1.0, 1.0, 2.0, 0.5])),
             min_size=1, max_size=4, unique_by=lambda t: t[0]),
)
def test_qfq_pair_recovers_synthetic_events(seed, spec):
    """Build a real-like price path, apply known distributions/splits, make Eastmoney-style qfq."""
    rng = np.random.default_rng(seed)
    n = 600
    days = pd.bdate_range("2018-01-02", periods=n)
    total = 2.0 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))  # total-return path
    events = sorted({days[i]: (cash_pct, split) for i, cash_pct, split in spec}.items())
    # Unadjusted price: divide the total-return path by the cumulative factor of past events.
    factors, unadj = [], total.copy()
    for ex, (cash_pct, split) in events:
        i = days.get_loc(ex)
        prev = unadj[i - 1]
        reference = (prev * (1 - cash_pct)) / split
        f = prev / reference
        factors.append((ex.date(), f))
        unadj[i:] = unadj[i:] / f
    unadj = np.round(unadj, 3)
    # Eastmoney qfq: prices before each event map p -> (p - cash) / split, older events first, so a
    # price before several events goes through each of their transforms in date order.
    qfq = unadj.copy()
    for ex, (cash_pct, split) in events:
        i = days.get_loc(ex)
        cash = unadj[i - 1] * cash_pct
        # Below ~2 quote steps a distribution is indistinguishable from rounding (documented limit).
        assume(cash >= 0.005)
        qfq[:i] = (qfq[:i] - cash) / split
    if qfq.min() <= 0.05:
        return  # negative/near-zero qfq prices (as in the real 510050 file) are rejected at import
    qfq = np.round(qfq, 3)
    found = from_qfq_pair(pd.Series(unadj, days), pd.Series(qfq, days), limit=0.10)
    got = {e.ex_date: e.factor for e in found}
    for day, factor in factors:
        assert day in got
        assert got[day] == pytest.approx(factor, rel=0.01)
    assert len(got) == len(factors)
