"""Point-in-time fundamental panels and index membership (pure: no database)."""

from io import StringIO

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.fundamentals.panels import annualised_roe, fundamental_panels, pe_ttm
from vnpy_rotation.fundamentals.pit import as_of, statutory_deadline
from vnpy_rotation.fundamentals.universe import coverage_warning, rebuild_membership

# Real rows of ../shared/data/real/fundamentals_baostock/profit_data.csv (PROVENANCE §12), reduced to the
# fields used here.
REAL_ROWS = """code,pubDate,statDate,roeAvg,epsTTM
600519.SSE,2018-03-28,2017-12-31,0.329542,21.556605
600519.SSE,2018-04-28,2018-03-31,0.088887,23.454226
600519.SSE,2018-08-02,2018-06-30,0.170563,25.149451
000001.SZSE,2022-03-10,2021-12-31,0.095674,1.872418
000001.SZSE,2022-04-27,2022-03-31,0.032060,2.012479
000001.SZSE,2022-08-18,2022-06-30,0.054704,2.104564
"""
# Unadjusted closes from stocks_daily_unadjusted_baostock (600519.csv.gz, 000001.csv.gz).
CLOSES = {("600519.SSE", "2018-04-27"): 662.53, ("600519.SSE", "2018-05-02"): 667.83,
          ("000001.SZSE", "2022-08-18"): 12.25, ("000001.SZSE", "2022-08-19"): 12.57}


def real_reports() -> pd.DataFrame:
    raw = pd.read_csv(StringIO(REAL_ROWS), dtype={"code": str})
    return pd.DataFrame({"vt_symbol": raw["code"], "period_end": pd.to_datetime(raw["statDate"]),
                         "announced": pd.to_datetime(raw["pubDate"]), "eps_ttm": raw["epsTTM"],
                         "roe_ytd": raw["roeAvg"]})


@pytest.mark.parametrize("symbol,day,expected_pe", [
    # Q1 2018 was announced on Saturday 2018-04-28: on Friday 04-27 the 2017 annual EPS(TTM) applies.
    ("600519.SSE", "2018-04-27", 662.53 / 21.556605),
    ("600519.SSE", "2018-05-02", 667.83 / 23.454226),
    # H1 2022 announced on 2022-08-18 itself: usable from the next decision day only.
    ("000001.SZSE", "2022-08-18", 12.25 / 2.012479),
    ("000001.SZSE", "2022-08-19", 12.57 / 2.104564),
])
def test_pe_ttm_matches_hand_computation_on_real_rows(symbol, day, expected_pe):
    symbols = ("600519.SSE", "000001.SZSE")
    days = pd.DatetimeIndex([day])
    panels = fundamental_panels(real_reports(), days, symbols)
    j = symbols.index(symbol)
    close = np.full((1, 2), np.nan)
    close[0, j] = CLOSES[(symbol, day)]
    assert pe_ttm(close, panels["eps_ttm"])[0, j] == pytest.approx(expected_pe, rel=1e-12)


def test_roe_readings():
    days = pd.DatetimeIndex(["2022-08-19", "2018-05-02"])
    panels = fundamental_panels(real_reports(), days, ("000001.SZSE", "600519.SSE"))
    assert panels["roe_annualised"][0, 0] == pytest.approx(0.054704 * 2)  # H1 × 2
    assert panels["roe_full_year"][0, 0] == pytest.approx(0.095674)  # the 2021 annual report
    assert panels["roe_annualised"][1, 1] == pytest.approx(0.088887 * 4)  # Q1 × 4
    assert annualised_roe(pd.Series([0.03]), pd.Series(pd.to_datetime(["2023-09-30"])))[0] == pytest.approx(0.04)


def test_pe_is_nan_for_zero_or_missing_eps_and_negative_for_losses():
    pe = pe_ttm(np.array([[10.0, 10.0, 10.0, np.nan]]), np.array([[0.0, np.nan, -2.0, 1.0]]))
    assert np.isnan(pe[0, [0, 1, 3]]).all() and pe[0, 2] == -5.0


def _reports_without_dates(periods) -> pd.DataFrame:
    return pd.DataFrame({"vt_symbol": "600000.SSE", "period_end": pd.to_datetime(periods), "announced": pd.NaT,
                         "eps_ttm": np.arange(1.0, len(periods) + 1)})


@pytest.mark.parametrize("decision,period", [("2023-03-01", "2022-09-30"), ("2023-11-15", "2023-09-30"),
                                             ("2023-05-01", "2023-03-31"), ("2023-04-30", "2022-09-30")])
def test_unknown_announcements_wait_for_the_statutory_deadline(decision, period):
    periods = ["2022-06-30", "2022-09-30", "2022-12-31", "2023-03-31", "2023-06-30", "2023-09-30"]
    panels = fundamental_panels(_reports_without_dates(periods), pd.DatetimeIndex([decision]), ("600000.SSE",))
    assert panels["eps_ttm"][0, 0] == periods.index(period) + 1


report_rows = st.lists(st.tuples(st.sampled_from(["A.SSE", "B.SZSE"]),
                                 st.sampled_from(list(pd.date_range("2021-03-31", "2023-12-31", freq="QE").date)),
                                 st.one_of(st.none(), st.integers(1, 400)),
                                 st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=25)


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["vt_symbol", "period_end", "lag", "eps_ttm"])
    frame["period_end"] = pd.to_datetime(frame["period_end"])
    frame["announced"] = [p + pd.Timedelta(days=int(lag)) if pd.notna(lag) else pd.NaT
                          for p, lag in zip(frame["period_end"], frame["lag"])]
    return frame.drop(columns="lag").drop_duplicates(["vt_symbol", "period_end", "announced"])


@settings(max_examples=60)
@given(report_rows)
def test_panels_agree_with_as_of_on_a_day_of_every_month(rows):
    reports = _frame(rows)
    days = pd.DatetimeIndex([f"2023-{m:02d}-{d:02d}" for m in range(1, 13) for d in (1, 15)])
    symbols = ("A.SSE", "B.SZSE")
    panels = fundamental_panels(reports, days, symbols)
    for i, day in enumerate(days):
        usable = as_of(reports.rename(columns={"vt_symbol": "code"}), day.date()).set_index("code")
        for j, symbol in enumerate(symbols):
            expected = usable["eps_ttm"].get(symbol, np.nan)
            got = panels["eps_ttm"][i, j]
            assert (np.isnan(got) and np.isnan(expected)) or got == expected


@settings(max_examples=60)
@given(report_rows, st.sampled_from(list(pd.date_range("2021-06-01", "2023-12-31", freq="7D"))))
def test_reports_announced_on_or_after_a_day_cannot_change_it(rows, cut):
    reports = _frame(rows)
    days = pd.date_range("2021-01-01", "2024-06-30", freq="B")
    deadline = pd.Series([pd.Timestamp(statutory_deadline(p.date())) for p in reports["period_end"]], index=reports.index)
    known = reports["announced"].fillna(deadline)
    later = known >= cut
    changed = reports.assign(eps_ttm=np.where(later, reports["eps_ttm"] * 3 + 1, reports["eps_ttm"]))
    extra = reports[later].assign(period_end=reports["period_end"][later] + pd.offsets.QuarterEnd(1))
    changed = pd.concat([changed, extra.assign(eps_ttm=99.0)])  # a new report appears too
    base = fundamental_panels(reports, days, ("A.SSE", "B.SZSE"))["eps_ttm"]
    other = fundamental_panels(changed, days, ("A.SSE", "B.SZSE"))["eps_ttm"]
    upto = days <= cut
    np.testing.assert_array_equal(base[upto], other[upto])


def test_a_restatement_counts_from_its_own_announcement():
    reports = pd.DataFrame({"vt_symbol": ["A.SSE"] * 2, "period_end": pd.to_datetime(["2022-12-31"] * 2),
                            "announced": pd.to_datetime(["2023-03-20", "2023-06-10"]), "eps_ttm": [1.0, 1.5]})
    panels = fundamental_panels(reports, pd.DatetimeIndex(["2023-03-20", "2023-03-21", "2023-06-10", "2023-06-12"]),
                                ("A.SSE",))
    np.testing.assert_array_equal(panels["eps_ttm"][:, 0], [np.nan, 1.0, 1.0, 1.5])


# ----------------------------------------------------------------------------------------------- membership

CHANGES = pd.DataFrame({"day": pd.to_datetime(["2020-06-15", "2020-06-15", "2021-12-13"]),
                        "vt_symbol": ["B", "C", "D"], "change": [1, -1, 1]})


@pytest.mark.parametrize("day,members", [
    ("2020-06-12", {"A", "C"}),  # before B came in and C left
    ("2020-06-15", {"A", "B"}),  # effective on the change date
    ("2021-12-10", {"A", "B"}),
    ("2021-12-13", {"A", "B", "D"}),
    ("2024-08-19", {"A", "B", "D"}),
])
def test_membership_is_rebuilt_backwards_from_the_snapshot(day, members):
    symbols = ("A", "B", "C", "D")
    result = rebuild_membership(pd.Timestamp("2024-08-19"), ["A", "B", "D"], CHANGES, pd.DatetimeIndex([day]), symbols)
    assert {s for s, m in zip(symbols, result.member[0]) if m} == members
    assert result.members_per_day[0] == len(members)


def test_membership_reports_what_it_cannot_know():
    days = pd.DatetimeIndex(["2019-01-02"])
    gap = rebuild_membership(pd.Timestamp("2024-08-19"), ["A", "B", "D"], CHANGES, days, ("A",))
    assert len(gap.warnings) == 1  # 2021-12-13 … 2024-08-19 without changes
    contradiction = rebuild_membership(pd.Timestamp("2021-12-31"), ["A", "B"], CHANGES, days, ("A",))
    assert len(contradiction.warnings) == 1  # D's entry is undone although D is not in the list
    today_only = rebuild_membership(pd.Timestamp("2024-08-19"), ["A"], CHANGES.iloc[:0], days, ("A",))
    assert len(today_only.warnings) == 1 and today_only.member.all()


def test_coverage_warning_when_members_lack_data():
    result = rebuild_membership(pd.Timestamp("2021-12-31"), ["A", "B", "D"], CHANGES,
                                pd.DatetimeIndex(["2021-12-20"]), ("A",))
    assert coverage_warning(result) is not None  # 1 of 3 members has data
    full = rebuild_membership(pd.Timestamp("2021-12-31"), ["A", "B", "D"], CHANGES,
                              pd.DatetimeIndex(["2021-12-20"]), ("A", "B", "D"))
    assert coverage_warning(full) is None
