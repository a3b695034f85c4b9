"""Point-in-time valuation inputs beyond PE: book value per share (PB) and express reports (业绩快报)
standing in for a periodic report until it arrives. Pure: numpy and pandas only.

Per-share bases. A report's book value per share is on the share count of its own period; the close is per
share of the day. The divisor that rebases it (bonus and transfer shares with an ex-date after the
announcement) and the trailing cash of the dividend yield are in :mod:`.share_changes`
(:func:`~.share_changes.eps_share_scale`, :func:`~.share_changes.trailing_cash`), over every stored ex-date.

Book value per share, latest usable report first (see ``docs/data/fundamentals.md``):

- exact: ``totalEquity`` (equity attributable to the parent, CNY) of an imported balance layout, over the
  report's ``totalShare`` (the same-period profit report's where the balance file has none); or an express
  report's ``performanceExpressNetAsset`` over the latest earlier report's shares, when express reports may
  stand in;
- approximate (flagged): Baostock's profit table only, ``netProfit / roeAvg / totalShare``. ``roeAvg`` is
  year-to-date profit over *average* equity ((opening + closing) / 2) and ``netProfit`` is year-to-date too,
  so their ratio is the period's average equity with no annualisation (dividing by an annualised ROE would
  shrink equity to a quarter in Q1). It is average, not closing, equity, and ``netProfit`` includes minority
  interests while ``roeAvg``'s numerator is the parent's profit: typically within a few percent of the
  closing parent equity, worse for fast-growing or heavily minority-owned groups.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .panels import _step_values, known_dates

BOOK_PANELS = ("bvps", "bvps_known", "bvps_approximate")


def book_value_rows(reports: pd.DataFrame, balance: pd.DataFrame | None = None,
                    express: pd.DataFrame | None = None) -> pd.DataFrame:
    """Book value per share of every report: ``vt_symbol, period_end, announced`` (the day it became known),
    ``bvps`` (on the report's shares), ``approximate`` (True: from netProfit / roeAvg).

    Approximate rows come first, so an exact value of the same period and day wins in :func:`book_panels`.
    """
    parts = []
    if len(reports):
        known = known_dates(reports)
        profit, roe = reports["net_profit"].to_numpy(float), reports["roe_ytd"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            equity = np.where(np.sign(profit) * np.sign(roe) > 0, profit / roe, np.nan)
        parts.append(pd.DataFrame({"vt_symbol": reports["vt_symbol"], "period_end": reports["period_end"],
                                   "announced": known, "bvps": equity / reports["total_share"].to_numpy(float),
                                   "approximate": True}))
    if balance is not None and len(balance):
        rows = balance.assign(announced=known_dates(balance))
        own = rows["total_share"].to_numpy(float)
        if len(reports):  # the same period's share count, known when that report was
            shares = reports.assign(known=known_dates(reports)).drop_duplicates(["vt_symbol", "period_end"], keep="last")
            rows = rows.merge(shares[["vt_symbol", "period_end", "total_share", "known"]], how="left",
                              on=["vt_symbol", "period_end"], suffixes=("", "_report"))
            use = ~np.isfinite(own)
            rows["total_share"] = np.where(use, rows["total_share_report"], own)
            rows["announced"] = rows["announced"].where(~use | rows["known"].isna() | (rows["known"] <= rows["announced"]),
                                                        rows["known"])
        parts.append(pd.DataFrame({"vt_symbol": rows["vt_symbol"], "period_end": rows["period_end"],
                                   "announced": rows["announced"], "approximate": False,
                                   "bvps": rows["total_equity"].to_numpy(float) / rows["total_share"].to_numpy(float)}))
    if express is not None and len(express) and len(reports):
        shares = _in_effect(reports, express, ["total_share"])["total_share"].to_numpy(float)
        parts.append(pd.DataFrame({"vt_symbol": express["vt_symbol"], "period_end": express["period_end"],
                                   "announced": express["announced"], "approximate": False,
                                   "bvps": express["net_asset"].to_numpy(float) / shares}))
    if not parts:
        return pd.DataFrame(columns=["vt_symbol", "period_end", "announced", "bvps", "approximate"])
    out = pd.concat(parts, ignore_index=True)
    out["bvps"] = out["bvps"].where(np.isfinite(out["bvps"]))
    return out.dropna(subset=["bvps"]).reset_index(drop=True)


def book_panels(rows: pd.DataFrame, days: pd.DatetimeIndex, symbols: tuple[str, ...] | list[str]
                ) -> dict[str, np.ndarray]:
    """Day × symbol ``bvps`` (on the report's shares), ``bvps_known`` (its announcement, datetime64) and
    ``bvps_approximate`` (1.0 / 0.0) of the latest usable row of :func:`book_value_rows`; ``bvps_known``
    is the row's known day as days since 1970-01-01 (a float array, like every other extra)."""
    shape = (len(days), len(symbols))
    bvps, approximate = np.full(shape, np.nan), np.full(shape, np.nan)
    known_days = np.full(shape, np.nan)
    day_values = days.values.astype("datetime64[ns]")
    column = {s: j for j, s in enumerate(symbols)}
    for symbol, group in rows.groupby("vt_symbol", sort=False):
        j = column.get(symbol)
        if j is None:
            continue
        known = pd.to_datetime(group["announced"]).to_numpy(dtype="datetime64[ns]")
        period = pd.to_datetime(group["period_end"]).to_numpy(dtype="datetime64[ns]")
        bvps[:, j] = _step_values(known, period, group["bvps"].to_numpy(float), day_values)
        approximate[:, j] = _step_values(known, period, group["approximate"].to_numpy(float), day_values)
        known_days[:, j] = _step_values(known, period, known.astype("datetime64[D]").astype(float), day_values)
    return {"bvps": bvps, "bvps_known": known_days, "bvps_approximate": approximate}


def with_express(reports: pd.DataFrame, express: pd.DataFrame) -> pd.DataFrame:
    """``reports`` plus a stand-in row for each express report whose period's periodic report was not yet
    known when the express report was announced; the periodic report replaces it when it arrives (same
    period, later announcement).

    A stand-in gives ROE (``performanceExpressROEWa``, weighted-average ROE, year to date) and, for an
    annual period, EPS TTM (``performanceExpressEPSDiluted``: a year's EPS is its TTM). An interim express
    report keeps the EPS TTM in effect (its TTM would need last year's same-period EPS, which Baostock's
    profit table does not give); its other fields are those of the report in effect when it appeared.
    """
    if express.empty or reports.empty:
        return reports
    known = known_dates(reports)
    periodic = reports.assign(known=known).groupby(["vt_symbol", "period_end"])["known"].min()
    first = express.join(periodic, on=["vt_symbol", "period_end"])["known"]
    stand_in = express[(first.isna() | (first > express["announced"])).to_numpy()]
    if stand_in.empty:
        return reports
    fields = [c for c in reports.columns if c not in ("vt_symbol", "period_end", "announced")]
    rows = _in_effect(reports, stand_in, fields)
    rows["roe_ytd"] = stand_in["roe_wa"].to_numpy(float)
    annual = (pd.to_datetime(stand_in["period_end"]).dt.month == 12).to_numpy()
    rows["eps_ttm"] = np.where(annual, stand_in["eps_diluted"].to_numpy(float), rows["eps_ttm"].to_numpy(float))
    rows.insert(0, "vt_symbol", stand_in["vt_symbol"].to_numpy())
    rows.insert(1, "period_end", stand_in["period_end"].to_numpy())
    rows.insert(2, "announced", stand_in["announced"].to_numpy())
    out = pd.concat([reports, rows[reports.columns]], ignore_index=True)
    return out.sort_values(["vt_symbol", "period_end", "announced"], na_position="last", kind="stable"
                           ).reset_index(drop=True)


def _in_effect(reports: pd.DataFrame, events: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """For each event row (vt_symbol, announced), ``fields`` of the periodic report in effect the day after
    (the latest period among those known on or before the announcement; NaN where none)."""
    known = known_dates(reports)
    out = pd.DataFrame(np.nan, index=range(len(events)), columns=fields, dtype=object)
    by_symbol = {s: g for s, g in reports.assign(_known=known).groupby("vt_symbol", sort=False)}
    for i, (symbol, day) in enumerate(zip(events["vt_symbol"], pd.to_datetime(events["announced"]))):
        group = by_symbol.get(symbol)
        if group is None:
            continue
        seen = group[group["_known"] <= day]
        if len(seen):
            best = seen.sort_values(["period_end", "_known"], kind="stable").iloc[-1]
            out.loc[i, fields] = best[fields].to_numpy()
    for field in fields:
        if pd.api.types.is_float_dtype(reports[field]):
            out[field] = out[field].astype(float)
    return out


def express_known(express: pd.DataFrame) -> pd.DataFrame:
    """Express rows dated by the day their values were known: Baostock's row carries the latest disclosure
    (``performanceExpUpdateDate``), so a row updated after its first announcement counts from the update."""
    if "updated" not in express or express.empty:
        return express
    return express.assign(announced=express[["announced", "updated"]].max(axis=1))


class ReportInputs(NamedTuple):
    """Everything a point-in-time valuation reads from the fundamentals tables, with each row's known day."""

    reports: pd.DataFrame  # periodic reports (plus express stand-ins when allowed)
    book: pd.DataFrame  # book_value_rows
    known: pd.Series  # known day of each ``reports`` row

    @classmethod
    def build(cls, reports: pd.DataFrame, balance: pd.DataFrame | None, express: pd.DataFrame | None,
              express_stand_in: bool) -> "ReportInputs":
        stand_in = express_known(express) if express_stand_in and express is not None else None
        merged = with_express(reports, stand_in) if stand_in is not None else reports
        book = book_value_rows(reports, balance, stand_in)
        known = known_dates(merged) if len(merged) else pd.Series(pd.NaT, index=merged.index)
        return cls(merged, book, pd.Series(pd.DatetimeIndex(known), index=merged.index))

    def usable(self, day: pd.Timestamp, symbols: list[str] | None = None) -> "ReportInputs":
        """Rows known strictly before ``day`` (of ``symbols``)."""
        keep = (self.known < day).to_numpy()
        book = (pd.to_datetime(self.book["announced"]) < day).to_numpy()
        if symbols is not None:
            keep = keep & self.reports["vt_symbol"].isin(symbols).to_numpy()
            book = book & self.book["vt_symbol"].isin(symbols).to_numpy()
        return ReportInputs(self.reports[keep], self.book[book], self.known[keep])

    def known_since(self, day: pd.Timestamp) -> set[str]:
        """Symbols with a row that became known on or after ``day``."""
        return (set(self.reports.loc[(self.known >= day).to_numpy(), "vt_symbol"])
                | set(self.book.loc[(pd.to_datetime(self.book["announced"]) >= day).to_numpy(), "vt_symbol"]))
