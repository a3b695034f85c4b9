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
    """Daily panels for ``vt_symbols`` (default: every symbol in the database) between two dates."""
    store = store or BarStore()
    calendar = calendar or default_calendar()
    wanted = None if vt_symbols is None else list(dict.fromkeys(vt_symbols))
    blocks = store.blocks(None if wanted is None else set(wanted))
    columns = wanted if wanted is not None else sorted(blocks)
    lo = np.datetime64(start, "D") if start else None
    hi = np.datetime64(end, "D") if end else None

    def window(days: np.ndarray) -> np.ndarray:
        keep = np.ones(len(days), dtype=bool)
        if lo is not None:
            keep &= days >= lo
        if hi is not None:
            keep &= days <= hi
        return keep

    bar_days = [b["day"].astype("datetime64[D]") for b in blocks.values()]
    all_days = np.unique(np.concatenate(bar_days)) if bar_days else np.array([], dtype="datetime64[D]")
    days_np = calendar.between(start, end).values.astype("datetime64[D]")
    outside = all_days[~np.isin(all_days, calendar.days.values.astype("datetime64[D]")) & window(all_days)]
    days_np = np.union1d(days_np, outside)
    if len(all_days):  # without explicit bounds, span only the data
        days_np = days_np[(days_np >= (lo if lo is not None else all_days.min()))
                          & (days_np <= (hi if hi is not None else all_days.max()))]
    days = pd.DatetimeIndex(days_np.astype("datetime64[ns]"))

    shape = (len(days_np), len(columns))
    arrays = {f: np.full(shape, np.nan) for f in FIELDS}
    listed = np.zeros(shape, dtype=bool)
    for j, vt_symbol in enumerate(columns):
        block = blocks.get(vt_symbol)
        if block is None:
            continue
        sym_days = block["day"].astype("datetime64[D]")
        rows = np.searchsorted(days_np, sym_days)
        ok = (rows < len(days_np)) & (days_np[np.minimum(rows, len(days_np) - 1)] == sym_days)
        for f in FIELDS:
            arrays[f][rows[ok], j] = block[f][ok]
        listed[:, j] = (days_np >= sym_days.min()) & (days_np <= sym_days.max())
    frames = {f: pd.DataFrame(arrays[f], index=days, columns=columns) for f in FIELDS}

    suspended = pd.DataFrame(listed & np.isnan(arrays["close"]), index=days, columns=columns)
    is_st = pd.DataFrame(False, index=days, columns=columns)
    flags = store.all_flags()
    if len(flags):
        flags["vt_symbol"] = flags["symbol"] + "." + flags["exchange"]
        flags["day"] = pd.to_datetime(flags["day"].astype(str))
        flags = flags[flags["vt_symbol"].isin(columns) & flags["day"].isin(days)]
        for name, target in (("suspended", suspended), ("is_st", is_st)):
            marked = flags[flags[name].astype(bool)]
            if len(marked):
                mask = marked.assign(v=True).pivot_table(index="day", columns="vt_symbol", values="v", aggfunc="any")
                target |= mask.reindex(index=days, columns=columns).fillna(False).astype(bool)

    factor = _factor_panel(store, days, columns)
    return Panels(**frames, factor=factor, suspended=suspended, is_st=is_st)


def _factor_panel(store: BarStore, days: pd.DatetimeIndex, columns: list[str]) -> pd.DataFrame:
    """Cumulative factors; ex-dates before the window still count (product over all history)."""
    events = store.all_events()
    factor = np.ones((len(days), len(columns)))
    if not events.empty:
        events["vt_symbol"] = events["symbol"] + "." + events["exchange"]
        position = {s: j for j, s in enumerate(columns)}
        events = events[events["vt_symbol"].isin(position)]
        rows = days.searchsorted(pd.to_datetime(events["ex_date"].astype(str)))
        steps = np.ones((len(days) + 1, len(columns)))
        for row, vt_symbol, value in zip(rows, events["vt_symbol"], events["factor"]):
            steps[row, position[vt_symbol]] *= value
        factor = np.cumprod(steps, axis=0)[:-1]
    return pd.DataFrame(factor, index=days, columns=columns)
