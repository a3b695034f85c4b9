"""The look-ahead checks' perturbed market: rows after the cut changed in every array a decision can read, rows up
to it the original bytes, and only the arrays actually read ever copied (a whole market's arrays are hundreds of
MB each)."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pandas as pd

from vnpy_rotation.data.market_data import MarketData, forward_fill
from vnpy_rotation.data.perturbation import CHANGED_FIELDS, perturb_after


def _market(days: int, symbols: int, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    shape = (days, symbols)
    close = rng.uniform(5.0, 50.0, shape)
    close[rng.random(shape) < 0.02] = np.nan  # suspended days: no bar
    volume = rng.uniform(1e4, 1e6, shape)
    ones, zeros, no = np.ones(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
    return MarketData(
        days=pd.bdate_range("2020-01-02", periods=days), symbols=tuple(f"{600000 + j}.SSE" for j in range(symbols)),
        open=close * 0.99, high=close * 1.02, low=close * 0.97, close=close, volume=volume, turnover=volume * close,
        factor=ones, suspended=~np.isfinite(close), is_st=no, last_close=forward_fill(close), limit_up=close * 1.1,
        limit_down=close * 0.9, split=ones, dividend=zeros, lot=np.full(symbols, 100.0),
        lot_step=np.full(symbols, 100.0), tick=np.full(symbols, 0.01), is_stock=np.ones(symbols, dtype=bool), t0=no,
        stamp_rate=np.full(days, 0.0005), transfer_rate=np.full(days, 0.00001),
        benchmark=rng.uniform(3000.0, 4000.0, days),
        extras={"eps_ttm": rng.normal(1.0, 0.5, shape), "roe": rng.normal(0.1, 0.05, shape),
                "member": rng.random(shape) < 0.5})


def _changed(base: np.ndarray, other: np.ndarray, cut: int) -> None:
    """Rows up to ``cut`` the same bytes; nearly every finite value after it different."""
    assert base[:cut + 1].tobytes() == np.asarray(other[:cut + 1]).tobytes()
    finite = np.isfinite(base[cut + 1:]) if base.dtype != bool else np.ones(base[cut + 1:].shape, dtype=bool)
    changed = (base[cut + 1:] != other[cut + 1:])[finite].mean()
    assert changed > (0.4 if base.dtype == bool else 0.99)


def test_every_readable_array_changes_after_the_cut_only():
    market, cut = _market(300, 40), 199
    other = perturb_after(market, cut, seed=3)
    for name in ("open", "high", "low", "close", "volume", "turnover", "last_close", "benchmark"):
        _changed(getattr(market, name), getattr(other, name), cut)
    for name in market.extras:
        _changed(market.extras[name], other.extras[name], cut)
    assert sorted(other.extras) == sorted(market.extras) and len(other.extras) == 3
    # a bar stays a bar: one factor per cell for open, high, low and close; the turnover follows both
    tail = slice(cut + 1, None)
    ratio = other.high[tail] / other.close[tail]
    assert np.allclose(ratio[np.isfinite(ratio)], 1.02)
    assert np.allclose(other.turnover[tail], other.volume[tail] * other.close[tail], equal_nan=True)
    assert other.last_close.tobytes() == forward_fill(other.close).tobytes()
    # what the harness leaves alone is the base market's own array
    assert other.limit_up is market.limit_up and other.suspended is market.suspended


def test_the_order_of_reads_does_not_change_what_is_read():
    market = _market(120, 10)
    first, second = perturb_after(market, 60, seed=5), perturb_after(market, 60, seed=5)
    for name in ("turnover", "last_close", "close", "volume"):  # the derived arrays before their inputs
        getattr(first, name)
    for name in reversed(CHANGED_FIELDS):
        assert np.asarray(getattr(first, name)).tobytes() == np.asarray(getattr(second, name)).tobytes(), name
    assert first.extras["roe"].tobytes() == second.extras["roe"].tobytes()
    assert perturb_after(market, 60, seed=6).close.tobytes() != first.close.tobytes()  # another seed, other values


def test_copies_and_windows_of_a_perturbed_market_keep_its_values():
    market = _market(120, 10)
    other = perturb_after(market, 60, seed=1)
    copied = dataclasses.replace(other, extras={**other.extras, "added": np.zeros((120, 10))})
    assert copied.close.tobytes() == other.close.tobytes()
    assert copied.extras["roe"].tobytes() == other.extras["roe"].tobytes()
    window = other.window(market.days[50].date(), market.days[80].date())
    assert window.volume.tobytes() == other.volume[50:81].tobytes()
    assert window.extras["eps_ttm"].tobytes() == other.extras["eps_ttm"][50:81].tobytes()
    again = perturb_after(window, 10, seed=2)  # a perturbed window (its arrays are read-only views)
    _changed(window.close, again.close, 10)
    _changed(window.extras["eps_ttm"], again.extras["eps_ttm"], 10)


def test_only_the_arrays_read_are_copied():
    """A decision reading the close and one fundamental costs two arrays, not the eleven changed ones (before:
    every price, volume, turnover, carried close and extra copied, plus the random factors)."""
    market = _market(2000, 500)  # 8 MB per float array
    array = market.close.nbytes
    tracemalloc.start()
    try:
        other = perturb_after(market, 1000, seed=0)
        np.nanmean(other.close[:1001])  # what a decision would read
        np.nanmean(other.extras["eps_ttm"][:1001])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3.5 * array  # two copies and half an array of random factors at a time


def test_the_carried_close_keeps_the_base_markets_value_up_to_the_cut():
    """A window starting inside a suspension carries a close from before its first day; the perturbed market
    keeps it (a close carried from the window's own bars would change rows before the cut: a false alarm)."""
    market = _market(60, 4)
    close = market.close.copy()
    close[10:20, 1] = np.nan  # suspended from day 10 to 19
    market = dataclasses.replace(market, close=close, last_close=forward_fill(close))
    window = market.window(market.days[12].date(), None)  # starts on day 12, inside the suspension
    assert np.isfinite(window.last_close[0, 1]) and np.isnan(window.close[0, 1])
    other = perturb_after(window, 20, seed=4)
    _changed(window.last_close, other.last_close, 20)
    tail = other.close[21:, 1]
    assert other.last_close[21:, 1][np.isfinite(tail)].tobytes() == tail[np.isfinite(tail)].tobytes()


def test_a_whole_number_input_stays_whole():
    market = _market(80, 5)
    market = dataclasses.replace(market, extras={**market.extras, "sessions": np.arange(400).reshape(80, 5) + 100})
    other = perturb_after(market, 39, seed=0)
    assert other.extras["sessions"].dtype == market.extras["sessions"].dtype
    _changed(market.extras["sessions"], other.extras["sessions"], 39)
