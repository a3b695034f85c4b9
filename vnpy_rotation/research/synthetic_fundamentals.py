"""Point-in-time inputs of the synthetic market: quarterly reports with announcement lags, an index membership
history, and VQM's day × symbol inputs built from them by VQM's own functions.

Reports: one per stock and quarter end from a year before the data (so the first decisions have a report),
announced ``min_lag`` days or more after the period end and no later than the statutory deadline
(:func:`~vnpy_rotation.fundamentals.pit.statutory_deadline`: Q1 by 04-30, H1 by 08-31, Q3 by 10-31, annual by
04-30 of the next year). EPS TTM follows a random walk around the stock's price level over a PE drawn per
stock (some stocks make losses for a while) and is reported on the share count of its announcement day (bonus
shares before it restate it, 《企业会计准则第34号——每股收益》); ``roe_ytd`` is year to date, as Baostock's
``roeAvg``.

Membership: an index of ``index_share`` of the stocks, changed each June and December (CSI's semi-annual
review, effective the trading day after the second Friday: see :mod:`vnpy_rotation.fundamentals.universe`) by
swapping ``turnover`` of its members for listed non-members; kept as the store keeps it, a snapshot on the last
day and the dated changes, and rebuilt by :func:`~vnpy_rotation.fundamentals.universe.rebuild_membership`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..data.market_data import MarketData
from ..fundamentals.pit import statutory_deadline
from ..fundamentals.universe import rebuild_membership
from ..fundamentals.valuation import ReportInputs
from ..strategies.vqm import VqmSettings, listed_sessions, report_extras, share_basis_extras
from .synthetic import SyntheticMarket

MIN_LAG = {3: 15, 6: 30, 9: 15, 12: 60}  # quarter-end month → fewest days from period end to announcement


@dataclass(frozen=True)
class IndexHistory:
    """An index's members as the fundamentals store keeps them: the last list and the dated changes."""

    snapshot_day: pd.Timestamp
    snapshot: list[str]
    changes: pd.DataFrame  # day, vt_symbol, change (+1 in, -1 out)


def quarter_ends(first: date, last: date) -> list[date]:
    ends = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="QE")
    return [d.date() for d in ends]


def draw_reports(synthetic: SyntheticMarket, seed_offset: int = 1) -> pd.DataFrame:
    """One report per stock and quarter end: ``vt_symbol, period_end, announced, eps_ttm, roe_ytd, net_profit,
    total_share`` (the columns the fundamentals store returns)."""
    rng = np.random.default_rng(synthetic.spec.seed + seed_offset)
    days = synthetic.days
    symbols = list(synthetic.symbols)
    m = len(symbols)
    periods = quarter_ends(days[0].date() - timedelta(days=366), days[-1].date())
    pe = np.exp(rng.uniform(np.log(8.0), np.log(40.0), m))
    roe_level = rng.normal(0.10, 0.05, m)
    eps = synthetic.anchor / pe
    loss_from = rng.integers(0, len(periods) + 40, size=m)  # some stocks make losses for four quarters
    parts = []
    for k, period in enumerate(periods):
        eps = eps * np.exp(rng.normal(0.005, 0.05, m))
        value = np.where((k >= loss_from) & (k < loss_from + 4), -0.3 * eps, eps)
        deadline = statutory_deadline(period)
        earliest = period + timedelta(days=MIN_LAG[period.month])
        lag = rng.integers(0, (deadline - earliest).days + 1, size=m)
        announced = pd.Timestamp(earliest) + pd.to_timedelta(lag, unit="D")
        quarters = period.month // 3
        roe = (roe_level + rng.normal(0, 0.02, m)) * quarters / 4 * np.sign(value)
        parts.append(pd.DataFrame({"vt_symbol": symbols, "period_end": pd.Timestamp(period), "announced": announced,
                                   "eps_ttm": value, "roe_ytd": roe}))
    reports = pd.concat(parts, ignore_index=True).sort_values(["vt_symbol", "period_end"], kind="stable")
    first = pd.to_datetime(pd.Series(synthetic.first_days)).reindex(reports["vt_symbol"]).to_numpy()
    reports = reports[(reports["period_end"].to_numpy() >= first - np.timedelta64(366, "D"))].reset_index(drop=True)
    ratio = _share_ratio_at(synthetic, reports)
    reports = reports.assign(eps_ttm=reports["eps_ttm"].to_numpy() / ratio)
    shares = pd.Series(synthetic.shares, index=symbols).reindex(reports["vt_symbol"]).to_numpy() * ratio
    return reports.assign(total_share=shares, net_profit=reports["eps_ttm"].to_numpy() * shares)


def _share_ratio_at(synthetic: SyntheticMarket, reports: pd.DataFrame) -> np.ndarray:
    """Per report (sorted by symbol): the product of the share ratios of its stock's ex-dates on or before
    its announcement."""
    out = np.ones(len(reports))
    codes = reports["vt_symbol"].to_numpy()
    known = reports["announced"].to_numpy().astype("datetime64[D]")
    bounds = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        events = [d for d in synthetic.records.get(codes[lo], ()) if d.share_ratio != 1.0]
        if not events:
            continue
        ex = np.array([np.datetime64(d.ex_date, "D") for d in events])
        cumulative = np.concatenate([[1.0], np.cumprod([d.share_ratio for d in events])])
        out[lo:hi] = cumulative[np.searchsorted(ex, known[lo:hi], side="right")]
    return out


def draw_index(synthetic: SyntheticMarket, index_share: float = 0.16, turnover: float = 0.1,
               seed_offset: int = 2) -> IndexHistory:
    """A point-in-time index of ``index_share`` of the stocks (about CSI 800's share of the market)."""
    rng = np.random.default_rng(synthetic.spec.seed + seed_offset)
    days = synthetic.days
    symbols = np.array(synthetic.symbols)
    first = np.array([days.searchsorted(pd.Timestamp(synthetic.first_days[s])) for s in symbols])
    size = max(1, int(round(index_share * len(symbols))))
    listed = np.flatnonzero(first == 0)
    members = set(rng.choice(listed, size=min(size, len(listed)), replace=False).tolist())
    changes = []
    for year in range(days[0].year, days[-1].year + 1):
        for month in (6, 12):
            row = int(days.searchsorted(pd.Timestamp(year, month, 15)))
            if row <= 0 or row >= len(days):
                continue
            eligible = np.setdiff1d(np.flatnonzero(first <= row - 250), sorted(members))
            k = min(int(round(turnover * len(members))), len(eligible))
            out = rng.choice(sorted(members), size=k, replace=False)
            into = rng.choice(eligible, size=k, replace=False)
            members = (members - set(out.tolist())) | set(into.tolist())
            changes += [(days[row], symbols[j], -1) for j in out] + [(days[row], symbols[j], 1) for j in into]
    frame = pd.DataFrame(changes, columns=["day", "vt_symbol", "change"])
    return IndexHistory(days[-1], sorted(symbols[sorted(members)].tolist()), frame)


def vqm_market(market: MarketData, synthetic: SyntheticMarket, reports: pd.DataFrame, index: IndexHistory | None,
               settings: VqmSettings | None = None) -> MarketData:
    """``market`` with the inputs VQM's ``prepare_market`` attaches from the stores, built by the same
    functions from the in-memory tables: the report panels (:func:`report_extras`), the share basis over every
    ex-date (:func:`share_basis_extras`), the listing age (:func:`listed_sessions`) and the membership
    (:func:`rebuild_membership`, when ``index`` is given)."""
    settings = settings or VqmSettings(symbols=list(market.symbols))
    inputs = ReportInputs.build(reports, None, None, False)
    panels = report_extras(inputs, market.days, market.symbols, settings)
    extras: dict[str, Any] = {**panels, **share_basis_extras(synthetic.records, panels, market.days, market.symbols),
                              "listed_days": listed_sessions(synthetic.first_days, market.days, market.symbols)}
    if index is not None:
        extras["member"] = rebuild_membership(index.snapshot_day, index.snapshot, index.changes, market.days,
                                              market.symbols).member
    return dataclasses.replace(market, extras={**market.extras, **extras})
