"""Wide panels (trading days × vt_symbols) read straight from the database.

vnpy's ``load_bar_data`` builds one ``BarData`` per row; research over hundreds of symbols needs
columns, not objects. :func:`load_panels` reads each symbol's columnar block (``rotation_bar_block``,
one row per symbol, rebuilt from vnpy's bar table whenever that symbol's bars changed — checked by
one grouped query), scatters them into day × symbol arrays and attaches the adjustment factors and
suspension / ST masks from this project's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable

import numpy as np
import pandas as pd

from ..market.calendar import TradingCalendar, default_calendar
from .store import BarStore

FIELDS = ("open", "high", "low", "close", "volume", "turnover")


@dataclass(frozen=True)
class Panels:
    """Unadjusted prices, volume (shares) and turnover (CNY); NaN where a symbol has no bar."""

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    turnover: pd.DataFrame
    factor: pd.DataFrame  # backward adjustment multiplier: product of factors with ex-date <= day
    suspended: pd.DataFrame  # inside a symbol's listed span with no bar, or flagged suspended
    is_st: pd.DataFrame

    @property
    def symbols(self) -> list[str]:
        return list(self.close.columns)

    @property
    def days(self) -> pd.DatetimeIndex:
        return self.close.index

    def adjusted(self, field: str = "close") -> pd.DataFrame:
        """Backward-adjusted prices: continuous through splits and distributions, point-in-time stable."""
        return getattr(self, field) * self.factor


def load_panels(vt_symbols: Iterable[str] | None = None, start: date | None = None, end: date | None = None,
                store: BarStore | None = None, calendar: TradingCalendar | None = None) -> Panels:
    """Daily panels for ``vt_symbols`` (default: every symbol in the database) between two dates.

    One symbol's block is decoded at a time and scattered straight into the day × symbol arrays,
    which the frames then wrap without a copy: peak memory is the panels plus one block.
    """
    store = store or BarStore()
    calendar = calendar or default_calendar()
    wanted = None if vt_symbols is None else list(dict.fromkeys(vt_symbols))
    check = store.check_blocks(None if wanted is None else set(wanted))
    columns = wanted if wanted is not None else sorted(check.vt_symbols)
    position = {s: j for j, s in enumerate(columns)}
    lo = np.datetime64(start, "D") if start else None
    hi = np.datetime64(end, "D") if end else None
    days_np = calendar.between(start, end).values.astype("datetime64[D]")

    shape = (len(days_np), len(columns))
    arrays = {f: np.full(shape, np.nan) for f in FIELDS}
    spans = np.zeros((len(columns), 2), dtype="datetime64[D]")  # first and last bar day per symbol
    has_bars = np.zeros(len(columns), dtype=bool)
    stray: list[tuple[int, np.ndarray, dict[str, np.ndarray]]] = []  # bars on days the calendar lacks
    for vt_symbol, block in store.iter_blocks(check):
        j = position[vt_symbol]
        sym_days = block["day"].astype("datetime64[D]")
        if not len(sym_days):
            continue
        has_bars[j] = True
        spans[j] = sym_days.min(), sym_days.max()
        rows, ok = _rows_on(days_np, sym_days)
        for f in FIELDS:
            arrays[f][rows[ok], j] = block[f][ok]
        off = ~ok & _inside(sym_days, lo, hi)
        if off.any():
            stray.append((j, sym_days[off], {f: block[f][off] for f in FIELDS}))
    if stray:  # rare: add the missing days to the axis, then place those bars
        extra = np.unique(np.concatenate([d for _, d, _ in stray]))
        merged = np.union1d(days_np, extra)
        keep_rows = np.searchsorted(merged, days_np)
        for f in FIELDS:
            wider = np.full((len(merged), len(columns)), np.nan)
            wider[keep_rows] = arrays[f]
            arrays[f] = wider
            for j, d, values in stray:
                wider[np.searchsorted(merged, d), j] = values[f]
        days_np = merged
    if has_bars.any():  # without explicit bounds, span only the data
        first = lo if lo is not None else spans[has_bars, 0].min()
        last = hi if hi is not None else spans[has_bars, 1].max()
        inside = (days_np >= first) & (days_np <= last)
        if not inside.all():
            days_np = days_np[inside]
            arrays = {f: a[inside] for f, a in arrays.items()}
    days = pd.DatetimeIndex(days_np.astype("datetime64[ns]"))
    listed = has_bars & (days_np[:, None] >= spans[:, 0]) & (days_np[:, None] <= spans[:, 1])

    def frame(values: np.ndarray) -> pd.DataFrame:  # the frames wrap the arrays: no copy
        return pd.DataFrame(values, index=days, columns=columns, copy=False)

    suspended = listed & np.isnan(arrays["close"])
    is_st = np.zeros(suspended.shape, dtype=bool)
    codes = {s.partition(".")[0] for s in columns}
    flags = store.all_flags(codes)
    if len(flags):
        flags["vt_symbol"] = flags["symbol"] + "." + flags["exchange"]
        flags = flags[flags["vt_symbol"].isin(position)]
        rows, on_axis = _rows_on(days_np, pd.to_datetime(flags["day"].astype(str)).values.astype("datetime64[D]"))
        cols = flags["vt_symbol"].map(position).to_numpy(dtype=np.int64)
        for name, target in (("suspended", suspended), ("is_st", is_st)):
            marked = on_axis & flags[name].astype(bool).to_numpy()
            target[rows[marked], cols[marked]] = True

    factor = _factor_panel(store.all_events(codes), days, columns)
    return Panels(**{f: frame(a) for f, a in arrays.items()}, factor=frame(factor), suspended=frame(suspended), is_st=frame(is_st))


def _rows_on(axis: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each of ``days`` in the sorted ``axis`` and whether it is really there."""
    rows = np.searchsorted(axis, days)
    if not len(axis):  # a window outside the calendar: nothing is on it
        return rows, np.zeros(len(days), dtype=bool)
    return rows, (rows < len(axis)) & (axis[np.minimum(rows, len(axis) - 1)] == days)


def bar_span(vt_symbols: Iterable[str], store: BarStore | None = None) -> tuple[date, date] | None:
    """The first and the last day on which any of ``vt_symbols`` has a stored bar (None: no bars)."""
    store = store or BarStore()
    firsts, lasts = [], []
    for _, block in store.iter_blocks(store.check_blocks(set(vt_symbols))):
        days = block["day"].astype("datetime64[D]")
        if len(days):
            firsts.append(days.min())
            lasts.append(days.max())
    return (min(firsts).astype(date), max(lasts).astype(date)) if firsts else None


def describe_coverage(vt_symbols: Iterable[str], store: BarStore | None = None,
                      calendar: TradingCalendar | None = None) -> str:
    """What a window can be chosen from: the trading calendar's span and the stored bars' span of
    ``vt_symbols`` (for an error about an empty window)."""
    calendar = calendar or default_calendar()
    span = bar_span(vt_symbols, store)
    bars = f"the database holds their bars from {span[0]} to {span[1]}" if span else "the database holds no bars of them"
    return f"the trading calendar covers {calendar.first} … {calendar.last}; {bars}"


def _inside(days: np.ndarray, lo: np.datetime64 | None, hi: np.datetime64 | None) -> np.ndarray:
    keep = np.ones(len(days), dtype=bool)
    if lo is not None:
        keep &= days >= lo
    if hi is not None:
        keep &= days <= hi
    return keep


def _factor_panel(events: pd.DataFrame, days: pd.DatetimeIndex, columns: list[str]) -> np.ndarray:
    """Cumulative factors; ex-dates before the window still count (product over all history)."""
    factor = np.ones((len(days), len(columns)))
    if not events.empty:
        events["vt_symbol"] = events["symbol"] + "." + events["exchange"]
        position = {s: j for j, s in enumerate(columns)}
        events = events[events["vt_symbol"].isin(position)]
        rows = days.searchsorted(pd.to_datetime(events["ex_date"].astype(str)))
        steps = np.ones((len(days) + 1, len(columns)))
        for row, vt_symbol, value in zip(rows, events["vt_symbol"], events["factor"]):
            steps[row, position[vt_symbol]] *= value
        factor = np.cumprod(steps, axis=0, out=steps)[:-1]
    return factor
