"""Wide panels (trading days × vt_symbols) read straight from the database with one SQL query.

vnpy's ``load_bar_data`` builds one ``BarData`` per row; research over hundreds of symbols needs
columns, not objects. :func:`load_panels` selects the raw rows, pivots them once and attaches the
adjustment factors and suspension / ST masks from this project's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

import numpy as np
import pandas as pd

from vnpy.trader.constant import Interval

from ..market.calendar import TradingCalendar, default_calendar
from .store import BarStore, to_dates

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
    m = store.bar_model
    query = m.select(m.symbol, m.exchange, m.datetime, m.open_price, m.high_price, m.low_price,
                     m.close_price, m.volume, m.turnover).where(m.interval == Interval.DAILY.value)
    if wanted is not None:
        query = query.where(m.symbol.in_(sorted({s.split(".")[0] for s in wanted})))
    if start is not None:
        query = query.where(m.datetime >= datetime(start.year, start.month, start.day) - pd.Timedelta(hours=12))
    if end is not None:
        query = query.where(m.datetime <= datetime(end.year, end.month, end.day) + pd.Timedelta(hours=12))
    rows = store.db.execute_sql(*query.sql()).fetchall()
    raw = pd.DataFrame(rows, columns=["symbol", "exchange", "datetime", *FIELDS])
    raw["vt_symbol"] = raw["symbol"] + "." + raw["exchange"]
    raw["date"] = to_dates(raw["datetime"])
    if start is not None:
        raw = raw[raw["date"] >= pd.Timestamp(start)]
    if end is not None:
        raw = raw[raw["date"] <= pd.Timestamp(end)]
    columns = wanted if wanted is not None else sorted(raw["vt_symbol"].unique())
    raw = raw[raw["vt_symbol"].isin(columns)]

    days = calendar.between(start, end)
    outside = raw["date"][(raw["date"] < calendar.days[0]) | (raw["date"] > calendar.days[-1])]
    days = days.union(pd.DatetimeIndex(outside.unique())) if len(outside) else days
    if len(raw):
        days = days[(days >= raw["date"].min()) | (start is not None)]
        days = days[(days <= raw["date"].max()) | (end is not None)]

    wide = raw.set_index(["date", "vt_symbol"])[list(FIELDS)].astype(float).unstack("vt_symbol")
    frames = {f: wide[f].reindex(index=days, columns=columns) if f in wide else
              pd.DataFrame(np.nan, index=days, columns=columns) for f in FIELDS}

    spans = raw.groupby("vt_symbol")["date"].agg(["min", "max"]).reindex(columns)
    listed = pd.DataFrame(
        (days.values[:, None] >= spans["min"].values[None, :]) & (days.values[:, None] <= spans["max"].values[None, :]),
        index=days, columns=columns)
    suspended = listed & frames["close"].isna()
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
    events = store.all_events()
    factor = pd.DataFrame(1.0, index=days, columns=columns)
    if events.empty:
        return factor
    events["vt_symbol"] = events["symbol"] + "." + events["exchange"]
    events["ex_date"] = pd.to_datetime(events["ex_date"].astype(str))
    for vt_symbol, group in events[events["vt_symbol"].isin(columns)].groupby("vt_symbol"):
        steps = np.ones(len(days))
        for ex_date, value in zip(group["ex_date"], group["factor"]):
            steps[days >= ex_date] *= value
        # Ex-dates before the window still count: the product covers all history up to each day.
        factor[vt_symbol] = steps
    return factor
