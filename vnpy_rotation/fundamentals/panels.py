"""Point-in-time fundamental panels: each day's value of the latest report usable that day.

A report counts on decision day D only when it was announced strictly before D (the statutory
deadline stands in where the announcement date is unknown; see :mod:`.pit`). Among the usable reports
the one with the latest period wins, and of a period the latest announcement (a restatement).

ROE: Baostock's ``roeAvg`` is year-to-date (Q1 ≈ one quarter's return on average equity). Two
readings are offered and the strategy says which it uses:

- ``roe_annualised``: the YTD value × 4 / quarters elapsed (Q1 × 4, H1 × 2, Q3 × 4/3, annual × 1) —
  always the latest information, but seasonal businesses look better or worse by quarter;
- ``roe_full_year``: the latest usable annual (12-31) report's value — no seasonality, up to 16 months old.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .pit import statutory_deadline

# Report fields turned into panels (stored name → panel name) and the derived ROE readings.
PANEL_FIELDS = {"eps_ttm": "eps_ttm", "net_profit": "net_profit", "total_share": "total_share",
                "yoy_net_profit": "yoy_net_profit"}
ROE_PANELS = ("roe_annualised", "roe_full_year")
KNOWN_PANEL = "report_known"  # when the report behind eps_ttm became public, days since 1970-01-01


def known_dates(reports: pd.DataFrame) -> pd.Series:
    """The day each report became public: its announcement, else the statutory deadline."""
    period = pd.to_datetime(reports["period_end"])
    announced = pd.to_datetime(reports["announced"])
    if announced.notna().all():
        return announced
    deadline = pd.Series(pd.to_datetime([statutory_deadline(p.date()) for p in period]), index=reports.index)
    return announced.where(announced.notna(), deadline)


def annualised_roe(roe_ytd: pd.Series, period_end: pd.Series) -> pd.Series:
    """Year-to-date ROE scaled to a year by the quarters it covers."""
    quarters = pd.to_datetime(period_end).dt.month // 3
    return roe_ytd * 4.0 / quarters


def _step_values(known: np.ndarray, period: np.ndarray, values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """For each day, ``values`` of the latest-period report among those known strictly before it.

    Reports are replayed in the order they became known; the running best (latest period, then latest
    announcement) is looked up for each day with a strict ``known < day`` search.
    """
    has, rows = _step_rows(known, period, days)
    out = np.full(len(days), np.nan)
    out[has] = values[rows]
    return out


def _step_rows(known: np.ndarray, period: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The report :func:`_step_values` reads on each day: (days with one, its position in the inputs).

    One lookup serves every field of a symbol's reports. The running best is the last report, in the order
    they became known, whose period reaches the running maximum (ties go to the later announcement).
    """
    order = np.lexsort((period, known))
    known, period = known[order], period[order]
    if np.isnat(period).any():  # NaT compares false both ways: replay one by one
        best = np.empty(len(known), dtype=int)
        current = -1
        for k in range(len(known)):
            if current < 0 or period[k] >= period[current]:
                current = k
            best[k] = current
    else:
        leads = period >= np.maximum.accumulate(period)
        best = np.maximum.accumulate(np.where(leads, np.arange(len(period)), 0))
    count = np.searchsorted(known, days, side="left")  # reports known strictly before each day
    has = count > 0
    return has, order[best[count[has] - 1]]


def fundamental_panels(reports: pd.DataFrame, days: pd.DatetimeIndex, symbols: tuple[str, ...] | list[str]
                       ) -> dict[str, np.ndarray]:
    """Day × symbol arrays of every field in :data:`PANEL_FIELDS` plus the two ROE readings.

    ``reports`` has ``vt_symbol, period_end, announced`` and the stored fields (missing fields give NaN
    panels). Symbols without reports are NaN throughout.
    """
    names = list(PANEL_FIELDS.values()) + list(ROE_PANELS) + [KNOWN_PANEL]
    panels = {name: np.full((len(days), len(symbols)), np.nan) for name in names}
    if reports.empty:
        return panels
    # Plain arrays once, then one slice per symbol: the per-group pandas overhead dominated otherwise.
    ordered = reports.sort_values("vt_symbol", kind="stable")
    code = ordered["vt_symbol"].to_numpy(dtype=object)
    known = known_dates(ordered).to_numpy(dtype="datetime64[ns]")
    period = pd.to_datetime(ordered["period_end"]).to_numpy(dtype="datetime64[ns]")
    annual = period.astype("datetime64[M]").astype(int) % 12 == 11
    values = {stored: ordered[stored].to_numpy(dtype=float) for stored in PANEL_FIELDS if stored in ordered}
    roe_ytd = ordered["roe_ytd"].to_numpy(dtype=float) if "roe_ytd" in ordered else None
    if roe_ytd is not None:
        values["roe_annualised"] = annualised_roe(ordered["roe_ytd"], ordered["period_end"]).to_numpy(dtype=float)
    values[KNOWN_PANEL] = known.astype("datetime64[D]").astype(float)
    targets = {**PANEL_FIELDS, "roe_annualised": "roe_annualised", KNOWN_PANEL: KNOWN_PANEL}
    day_values = days.values.astype("datetime64[ns]")
    column = {s: j for j, s in enumerate(symbols)}
    bounds = np.flatnonzero(np.r_[True, code[1:] != code[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        j = column.get(code[lo])
        if j is None:
            continue
        rows = slice(lo, hi)
        has, read = _step_rows(known[rows], period[rows], day_values)
        for stored, series in values.items():  # (the panels start as NaN: only the days with a report)
            panels[targets[stored]][has, j] = series[rows][read]
        full_year = annual[rows]
        if roe_ytd is not None and full_year.any():
            has, read = _step_rows(known[rows][full_year], period[rows][full_year], day_values)
            panels["roe_full_year"][has, j] = roe_ytd[rows][full_year][read]
    return panels


def pe_ttm(close: np.ndarray, eps_ttm: np.ndarray, share_scale: np.ndarray | None = None) -> np.ndarray:
    """Price / trailing-twelve-month EPS on the unadjusted close; NaN where either is missing.

    ``share_scale`` (:func:`.share_changes.eps_share_scale`) puts the report's EPS on the close's share
    basis after bonus / transfer shares. Negative EPS gives a negative PE (kept, so a strategy can
    exclude it explicitly); zero EPS gives NaN.
    """
    if share_scale is not None:
        eps_ttm = eps_ttm / share_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        pe = close / eps_ttm
    pe[~np.isfinite(pe)] = np.nan
    return pe
