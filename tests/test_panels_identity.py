"""fundamental_panels with one report lookup per symbol (and the running best without a Python loop) gives
the bytes of the per-field replay it replaced, kept here verbatim as the reference."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.fundamentals import panels as module
from vnpy_rotation.fundamentals.panels import fundamental_panels
from vnpy_rotation.fundamentals.share_changes import trailing_cash
from vnpy_rotation.research.synthetic import SyntheticSpec, generate
from vnpy_rotation.research.synthetic_fundamentals import draw_reports


def old_step_values(known, period, values, days):
    order = np.lexsort((period, known))
    known, period, values = known[order], period[order], values[order]
    best = np.empty(len(known), dtype=int)
    current = -1
    for k in range(len(known)):
        if current < 0 or period[k] >= period[current]:
            current = k
        best[k] = current
    count = np.searchsorted(known, days, side="left")
    out = np.full(len(days), np.nan)
    has = count > 0
    out[has] = values[best[count[has] - 1]]
    return out


def old_fundamental_panels(reports, days, symbols):
    names = list(module.PANEL_FIELDS.values()) + list(module.ROE_PANELS) + [module.KNOWN_PANEL]
    panels = {name: np.full((len(days), len(symbols)), np.nan) for name in names}
    if reports.empty:
        return panels
    ordered = reports.sort_values("vt_symbol", kind="stable")
    code = ordered["vt_symbol"].to_numpy(dtype=object)
    known = module.known_dates(ordered).to_numpy(dtype="datetime64[ns]")
    period = pd.to_datetime(ordered["period_end"]).to_numpy(dtype="datetime64[ns]")
    annual = period.astype("datetime64[M]").astype(int) % 12 == 11
    values = {stored: ordered[stored].to_numpy(dtype=float) for stored in module.PANEL_FIELDS if stored in ordered}
    roe_ytd = ordered["roe_ytd"].to_numpy(dtype=float) if "roe_ytd" in ordered else None
    if roe_ytd is not None:
        values["roe_annualised"] = module.annualised_roe(ordered["roe_ytd"], ordered["period_end"]).to_numpy(dtype=float)
    values[module.KNOWN_PANEL] = known.astype("datetime64[D]").astype(float)
    targets = {**module.PANEL_FIELDS, "roe_annualised": "roe_annualised", module.KNOWN_PANEL: module.KNOWN_PANEL}
    day_values = days.values.astype("datetime64[ns]")
    column = {s: j for j, s in enumerate(symbols)}
    bounds = np.flatnonzero(np.r_[True, code[1:] != code[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        j = column.get(code[lo])
        if j is None:
            continue
        rows = slice(lo, hi)
        for stored, series in values.items():
            panels[targets[stored]][:, j] = old_step_values(known[rows], period[rows], series[rows], day_values)
        full_year = annual[rows]
        if roe_ytd is not None and full_year.any():
            panels["roe_full_year"][:, j] = old_step_values(known[rows][full_year], period[rows][full_year],
                                                            roe_ytd[rows][full_year], day_values)
    return panels


def assert_same(reports: pd.DataFrame, days: pd.DatetimeIndex, symbols) -> None:
    new, old = fundamental_panels(reports, days, symbols), old_fundamental_panels(reports, days, symbols)
    assert new.keys() == old.keys()
    for name in new:
        assert new[name].dtype == old[name].dtype and new[name].tobytes() == old[name].tobytes(), name


def test_synthetic_market_reports_give_the_old_panels():
    synthetic = generate(SyntheticSpec(stocks=60, start=date(2020, 1, 1), end=date(2021, 12, 31), seed=5))
    reports = draw_reports(synthetic)
    # Restatements: a later announcement of the same period, and a late report of an older period.
    again = reports.iloc[::7].copy()
    again["announced"] = pd.to_datetime(again["announced"]) + pd.Timedelta(days=20)
    again["eps_ttm"] = again["eps_ttm"] * 1.1
    late = reports.iloc[3::11].copy()
    late["announced"] = pd.to_datetime(late["announced"]) + pd.Timedelta(days=200)
    both = pd.concat([reports, again, late], ignore_index=True).sample(frac=1.0, random_state=1)
    days = synthetic.days
    assert_same(both, days, list(both["vt_symbol"].unique())[::-1] + ["NONE.SSE"])


MONTH_ENDS = [pd.Timestamp(y, m, 1) + pd.offsets.MonthEnd(0) for y in (2020, 2021) for m in (3, 6, 9, 12)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A.SSE", "B.SSE", "C.SZSE"]), st.sampled_from(MONTH_ENDS),
                          st.one_of(st.none(), st.integers(0, 400)), st.floats(-5, 5)), min_size=1, max_size=30))
def test_any_reports_give_the_old_panels(rows):
    """Ties in period and in announcement, restatements, unknown announcements (the deadline stands in)."""
    frame = pd.DataFrame({
        "vt_symbol": [r[0] for r in rows], "period_end": [r[1] for r in rows],
        "announced": [pd.NaT if r[2] is None else r[1] + pd.Timedelta(days=r[2]) for r in rows],
        "eps_ttm": [r[3] for r in rows], "roe_ytd": [r[3] / 10 for r in rows],
        "total_share": [1e8 + k for k in range(len(rows))]})
    assert_same(frame, pd.bdate_range("2020-01-01", "2022-06-30"), ("C.SZSE", "A.SSE", "B.SSE", "D.SSE"))


def old_trailing_cash(distributions, days, symbols, window_days=365):
    out = np.zeros((len(days), len(symbols)))
    day_numbers = days.values.astype("datetime64[D]").astype(np.int64)
    for j, symbol in enumerate(symbols):
        events = sorted(distributions.get(symbol, ()), key=lambda d: d.ex_date)
        if not events:
            continue
        ex = np.array([np.datetime64(d.ex_date, "D").astype(np.int64) for d in events])
        cumulative = np.concatenate([[1.0], np.cumprod([d.share_ratio for d in events])])
        at_day = cumulative[np.searchsorted(ex, day_numbers, side="right")]
        for k, event in enumerate(events):
            if event.cash == 0.0:
                continue
            inside = (day_numbers >= ex[k]) & (day_numbers < ex[k] + window_days)
            out[inside, j] += event.cash * cumulative[k] / at_day[inside]
    return out


def test_trailing_cash_gives_the_old_bytes():
    """Cash and bonus ex-dates of a synthetic market, ex-dates off the trading days and around the data's
    ends; ascending and shuffled days."""
    synthetic = generate(SyntheticSpec(stocks=80, start=date(2019, 1, 1), end=date(2021, 12, 31), seed=9))
    records = {s: list(v) for s, v in synthetic.records.items()}
    first = next(s for s, v in records.items() if v)
    template = records[first][0]
    records[first] += [dataclasses.replace(template, ex_date=date(2018, 6, 2), cash=0.7),
                       dataclasses.replace(template, ex_date=date(2021, 12, 30), cash=0.2, share_ratio=1.5),
                       dataclasses.replace(template, ex_date=date(2020, 2, 1), cash=0.1)]  # a Saturday
    symbols = list(synthetic.symbols) + ["NONE.SSE"]
    assert sum(d.cash != 0 for v in records.values() for d in v) > 50
    assert any(d.share_ratio != 1 for v in records.values() for d in v)
    for days in (synthetic.days, synthetic.days[::-1]):
        for window in (365, 30):
            new = trailing_cash(records, days, symbols, window)
            assert new.tobytes() == old_trailing_cash(records, days, symbols, window).tobytes()
