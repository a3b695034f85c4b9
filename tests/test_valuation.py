"""Point-in-time PB and trailing dividend yield: hand-computed values on a few dated rows.

The share basis itself (cash per share held before an ex-date and a report's per-share book value rebased
to the day's shares by the share ratios of later ex-dates) is tested in tests/test_share_changes.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.fundamentals.panels import fundamental_panels
from vnpy_rotation.fundamentals.valuation import book_panels, book_value_rows, with_express

NAN = np.nan
CONFIGS = Path(__file__).parent.parent / "configs"


def days_of(*texts: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(texts)))


# -- dividend yield -------------------------------------------------------------------------------------
def test_dividend_yield_is_unknown_without_a_close_and_zero_without_payments():
    import dataclasses

    from scenario_market import flat, make_panels

    from vnpy_rotation.data.market_data import build_market_data
    from vnpy_rotation.strategies.vqm import SHARE_BASIS, trailing_dividend_yield

    market = build_market_data(make_panels(["2023-01-03", "2023-01-04"],
                                           {"600000.SSE": [None, flat(10.0)], "600036.SSE": [flat(10.0)] * 2}))
    cash = np.array([[0.5, 0.0], [0.5, 0.0]])  # 0.5 per share paid in the window of 600000.SSE
    market = dataclasses.replace(market, extras={name: cash if name == "dividend_cash" else np.ones((2, 2))
                                                 for name in SHARE_BASIS})
    dy = trailing_dividend_yield(market)
    assert np.isnan(dy[0, 0]) and dy[1, 0] == 0.05 and (dy[:, 1] == 0.0).all()


# -- book value per share -------------------------------------------------------------------------------
def reports_frame(rows):
    return pd.DataFrame(rows, columns=["vt_symbol", "period_end", "announced", "net_profit", "roe_ytd", "total_share",
                                       "eps_ttm"]).assign(period_end=lambda f: pd.to_datetime(f["period_end"]),
                                                          announced=lambda f: pd.to_datetime(f["announced"]))


def test_approximate_book_value_is_ytd_profit_over_ytd_roe_not_annualised():
    # Q1: 1.2e10 YTD profit on a 2.5 % YTD ROE → average equity 4.8e11 (annualising the ROE to 10 % would give 1.2e11).
    reports = reports_frame([("600000.SSE", "2023-03-31", "2023-04-29", 1.2e10, 0.025, 2.4e10, 1.8)])

    rows = book_value_rows(reports)

    assert rows[["bvps", "approximate"]].values.tolist() == [[pytest.approx(4.8e11 / 2.4e10), True]]


def test_balance_equity_is_exact_and_wins_over_the_approximation_once_known():
    reports = reports_frame([("600000.SSE", "2023-03-31", "2023-04-29", 1.2e10, 0.025, 2.4e10, 1.8)])
    # The balance file of the same period, published later: shares from the profit report of that period.
    balance = pd.DataFrame({"vt_symbol": ["600000.SSE"], "period_end": pd.to_datetime(["2023-03-31"]),
                            "announced": pd.to_datetime(["2023-05-05"]), "total_equity": [4.5e11],
                            "total_share": [NAN]})
    days = days_of("2023-04-29", "2023-05-02", "2023-05-05", "2023-05-08")

    panels = book_panels(book_value_rows(reports, balance), days, ["600000.SSE", "600036.SSE"])

    np.testing.assert_allclose(panels["bvps"][:, 0], [NAN, 20.0, 20.0, 18.75])
    np.testing.assert_array_equal(panels["bvps_approximate"][:, 0], [NAN, 1.0, 1.0, 0.0])
    assert np.isnan(panels["bvps"][:, 1]).all()
    known = panels["bvps_known"][:, 0]
    assert [pd.Timestamp(k, unit="D").date().isoformat() for k in known[1:]] == ["2023-04-29", "2023-04-29", "2023-05-05"]


def test_loss_making_company_with_positive_roe_has_no_approximate_book_value():
    reports = reports_frame([("600000.SSE", "2023-03-31", "2023-04-29", -1.0e9, 0.02, 1e9, -0.5)])
    assert book_value_rows(reports).empty


# -- express reports standing in (real rows of sh.600000: shared fundamentals_baostock, Baostock's docs) ---
REAL_600000 = [  # query_profit_data: (period, pubDate, epsTTM, roeAvg, netProfit, totalShare)
    ("2014-09-30", "2014-10-31", 2.460829, 0.159734, 35167000000.0, 18653471415.0),
    ("2014-12-31", "2015-03-19", 2.521032, 0.202461, 47360000000.0, 18653471415.0),
]
EXPRESS_600000 = pd.DataFrame({  # query_performance_express_report, 2014 annual
    "vt_symbol": ["600000.SSE"], "period_end": pd.to_datetime(["2014-12-31"]), "announced": pd.to_datetime(["2015-01-06"]),
    "net_asset": [260011000000.0], "roe_wa": [0.2102], "eps_diluted": [2.52]})


def real_reports():
    return pd.DataFrame({"vt_symbol": "600000.SSE", "period_end": pd.to_datetime([r[0] for r in REAL_600000]),
                         "announced": pd.to_datetime([r[1] for r in REAL_600000]),
                         "eps_ttm": [r[2] for r in REAL_600000], "roe_ytd": [r[3] for r in REAL_600000],
                         "net_profit": [r[4] for r in REAL_600000], "total_share": [r[5] for r in REAL_600000]})


def test_an_express_report_stands_in_until_the_periodic_report_arrives():
    days = days_of("2015-01-06", "2015-01-07", "2015-03-19", "2015-03-20")
    plain = fundamental_panels(real_reports(), days, ["600000.SSE"])
    merged = fundamental_panels(with_express(real_reports(), EXPRESS_600000), days, ["600000.SSE"])

    np.testing.assert_allclose(plain["eps_ttm"][:, 0], [2.460829, 2.460829, 2.460829, 2.521032])
    np.testing.assert_allclose(merged["eps_ttm"][:, 0], [2.460829, 2.52, 2.52, 2.521032])
    np.testing.assert_allclose(merged["roe_annualised"][:, 0], [0.159734 * 4 / 3, 0.2102, 0.2102, 0.202461])
    np.testing.assert_allclose(merged["total_share"][:, 0], [18653471415.0] * 4)  # carried from Q3 meanwhile


def test_an_express_report_after_its_periodic_report_changes_nothing():
    late = EXPRESS_600000.assign(announced=pd.to_datetime(["2015-03-19"]))
    pd.testing.assert_frame_equal(with_express(real_reports(), late).reset_index(drop=True),
                                  real_reports().reset_index(drop=True))


def test_express_net_asset_gives_an_exact_book_value_on_the_shares_known_then():
    rows = book_value_rows(real_reports(), None, EXPRESS_600000)
    exact = rows[~rows["approximate"]]
    assert exact["bvps"].tolist() == [pytest.approx(260011000000.0 / 18653471415.0)]
    assert exact["announced"].tolist() == [pd.Timestamp("2015-01-06")]


# -- real bundled stocks: the yield from the backtester's own corporate-action decomposition ---------------
def yield_on(market, symbol: str, day: str) -> tuple[float, float]:
    from vnpy_rotation.strategies.vqm import trailing_dividend_yield

    i, j = market.days.get_loc(pd.Timestamp(day)), market.symbols.index(symbol)
    return float(trailing_dividend_yield(market)[i, j]), float(market.close[i, j])


def test_real_cash_dividend_yield_of_icbc(bundled_stock_market):
    # ICBC's 2015 final dividend, RMB 2.333 per 10 shares, ex-date 2016-07-08 (工商银行 2015 年度 A 股利润分配
    # 实施公告); the 2015-07 payment is more than 365 days before 2016-07-29. The stored factor carries the
    # cash to about a cent, hence the tolerance.
    dy, close = yield_on(bundled_stock_market, "601398.SSE", "2016-07-29")
    assert dy == pytest.approx(0.2333 / close, rel=0.02)


def test_real_dividend_yield_across_a_transfer_and_cash_ex_date(bundled_stock_market):
    # Ping An Bank 2015 final: 10转增2股派1.53元 (ex-date 2016-06-16): 0.153 per old share = 0.1275 per new one.
    dy, close = yield_on(bundled_stock_market, "000001.SZSE", "2016-06-30")
    assert dy == pytest.approx(0.153 / 1.2 / close, rel=0.02)


def test_ex_dates_before_the_loaded_days_still_rebase_pb_and_count_in_the_yield(bundled_stock_market):
    """Ping An Bank's 10转增2股派1.53元 (ex-date 2016-06-16) lies after its 2016Q1 report (announced 2016-04-21)
    and before a market loaded for July 2016 (default VQM: 5 sessions of warm-up): on 2016-07-29 its PB and
    dividend yield equal those of the market loaded from the first bar (book value per share / 1.2, 0.153 / 1.2
    per current share), not the unscaled book value and a zero yield."""
    from conftest import fresh_bundled_store

    from vnpy_rotation.backtest.loader import market_for
    from vnpy_rotation.strategies import create_strategy
    from vnpy_rotation.strategies.vqm import price_to_book, trailing_dividend_yield

    late = market_for(create_strategy("vqm", {"symbols": ["000001.SZSE", "601398.SSE"]}),
                      pd.Timestamp("2016-07-11").date(), pd.Timestamp("2016-07-29").date(),
                      store=fresh_bundled_store(stocks=True), benchmark=())
    full = bundled_stock_market
    assert late.days[0] > pd.Timestamp("2016-06-16")
    day, j, m = pd.Timestamp("2016-07-29"), late.symbols.index("000001.SZSE"), full.symbols.index("000001.SZSE")
    i, k = late.days.get_loc(day), full.days.get_loc(day)
    assert full.extras["bvps_scale"][k, m] == pytest.approx(1.2)
    assert price_to_book(late, np.array([i]))[0][0, j] == price_to_book(full, np.array([k]))[0][0, m]
    assert trailing_dividend_yield(late)[i, j] == trailing_dividend_yield(full)[k, m] > 0


def test_cli_backtest_ranks_on_pb_and_dividend_yield_from_the_real_bundled_data(tmp_path):
    """``run.py backtest`` with ``configs/vqm_valuation.yaml`` on the bundled stocks: every chosen name's PB
    is flagged approximate (no balance sheet imported) and equals, for 600036.SSE on 2018-02-28, the close
    of the bundled bar file over netProfit / roeAvg / totalShare of its 2017Q3 report (announced 2017-10-28)."""
    import gzip
    import json

    from conftest import run_cli

    import vnpy_rotation.bundled as bundled

    root = Path(bundled.__file__).parent
    out = tmp_path / "out"
    proc = run_cli("backtest", "--strategy", "vqm", "--config", str(CONFIGS / "vqm_valuation.yaml"),
                   "--start", "2018-01-01", "--end", "2018-03-31", "--out", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr

    selection = pd.read_csv(out / "selection.csv")
    assert {"pb", "pb_approximate", "dividend_yield"} <= set(selection.columns)
    assert selection["pb_approximate"].all()
    assert any("pb_approximate" in w for w in json.loads((out / "metrics.json").read_text())["data_warnings"])
    with gzip.open(root / "fundamentals" / "profit_data.csv.gz", "rt") as fh:
        profit = pd.read_csv(fh)
    report = profit[(profit["code"] == "sh.600036") & (profit["statDate"] == "2017-09-30")].iloc[0]
    assert report["pubDate"] == "2017-10-28"
    with gzip.open(root / "stocks" / "600036.csv.gz", "rt") as fh:
        bars = pd.read_csv(fh)
    close = bars.loc[bars["date"] == "2018-02-28", "close"].iloc[0]
    row = selection[(selection["date"] == "2018-02-28") & (selection["vt_symbol"] == "600036.SSE")].iloc[0]
    assert row["pb"] == pytest.approx(close / (report["netProfit"] / report["roeAvg"] / report["totalShare"]), rel=1e-12)


def test_an_updated_express_report_counts_from_its_update():
    from vnpy_rotation.fundamentals.valuation import ReportInputs

    updated = EXPRESS_600000.assign(updated=pd.to_datetime(["2015-02-10"]))
    inputs = ReportInputs.build(real_reports(), None, updated, express_stand_in=True)
    eps = fundamental_panels(inputs.reports, days_of("2015-01-07", "2015-02-10", "2015-02-11"), ["600000.SSE"])
    np.testing.assert_allclose(eps["eps_ttm"][:, 0], [2.460829, 2.460829, 2.52])
    assert inputs.book.loc[~inputs.book["approximate"], "announced"].tolist() == [pd.Timestamp("2015-02-10")]
