"""When a periodic report may be used: strictly after its announcement, else after the statutory deadline.

Statutory deadlines for A-share periodic reports (CSRC 上市公司信息披露管理办法 and the SSE/SZSE 股票上市规则): Q1 (03-31)
by 04-30, half year (06-30) by 08-31, Q3 (09-30) by 10-31, annual (12-31) by 04-30 of the next year.
A report announced on day A is usable for a decision on day D only when A < D (announcements arrive
after the close, so the same day's decision cannot have seen it).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

_DEADLINES = {(3, 31): (0, 4, 30), (6, 30): (0, 8, 31), (9, 30): (0, 10, 31), (12, 31): (1, 4, 30)}


def statutory_deadline(period_end: date) -> date:
    """The last day the report for ``period_end`` (a quarter end) may be published."""
    try:
        years, month, day = _DEADLINES[(period_end.month, period_end.day)]
    except KeyError:
        raise ValueError(f"{period_end} is not a quarter end (03-31, 06-30, 09-30, 12-31)") from None
    return date(period_end.year + years, month, day)


def usable_from(period_end: date, announced: date | None = None) -> date:
    """The first decision day on which the report may be used."""
    known = announced if announced is not None else statutory_deadline(period_end)
    return known + timedelta(days=1)


def latest_usable_period(decision: date) -> date:
    """The latest quarter end whose report is certainly usable on ``decision`` by the deadlines alone."""
    year = decision.year
    candidates = [date(y, m, d) for y in (year - 1, year) for (m, d) in _DEADLINES]
    usable = [p for p in candidates if usable_from(p) <= decision]
    return max(usable)


def as_of(reports: pd.DataFrame, decision: date) -> pd.DataFrame:
    """Per code, the latest report usable on ``decision`` (columns kept; one row per code).

    ``reports`` needs ``code``, ``period_end`` and ``announced`` (NaT where unknown: the statutory
    deadline stands in). A restated report for the same period counts from its own announcement.
    """
    period = pd.to_datetime(reports["period_end"])
    announced = pd.to_datetime(reports["announced"])
    deadline = pd.to_datetime([statutory_deadline(p.date()) for p in period]) if len(period) else period
    known = announced.where(announced.notna(), pd.Series(deadline, index=reports.index))
    keep = (known < pd.Timestamp(decision)).to_numpy()
    usable = reports[keep]
    if usable.empty:
        return usable
    # Latest period first in importance, then the latest announcement of it (a restatement).
    order = np.lexsort((known[keep].to_numpy(), period[keep].to_numpy()))
    return usable.iloc[order].groupby("code", sort=True).tail(1).sort_values("code").reset_index(drop=True)
