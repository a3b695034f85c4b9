"""Baostock dividend records (query_dividend_data): parsing, file:line rejections, import, use on ex-dates.

No real exported file of this layout was found in public repositories; the rows below are SYNTHETIC,
written from Baostock's documented column list (code, dividPreNoticeDate, dividAgmPumDate,
dividPlanAnnounceDate, dividPlanDate, dividRegistDate, dividOperateDate, dividPayDate,
dividStockMarketDate, dividCashPsBeforeTax, dividCashPsAfterTax, dividStocksPs, dividCashStock,
dividReserveToStockPs), with the quirks third-party code reports: empty amounts, an after-tax cash that
is text ("1.8或2"), plans without an ex-date.
"""

from __future__ import annotations

import sqlite3
from datetime import date

import pandas as pd
import pytest
from conftest import run_cli

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.fundamentals.dividends import DividendRow, is_dividend_file, parse_dividends, stored_distributions
from vnpy_rotation.fundamentals.share_changes import BAOSTOCK, FACTOR, Distribution

HEADER = ("code,dividPreNoticeDate,dividAgmPumDate,dividPlanAnnounceDate,dividPlanDate,dividRegistDate,"
          "dividOperateDate,dividPayDate,dividStockMarketDate,dividCashPsBeforeTax,dividCashPsAfterTax,"
          "dividStocksPs,dividCashStock,dividReserveToStockPs")
ROWS = [
    # 10转10 + 0.10 before tax, ex-date 2023-06-02
    "sh.600000,,2023-05-20,2023-04-28,2023-05-26,2023-06-01,2023-06-02,2023-06-02,2023-06-05,0.1,0.09或0.1,0,,1",
    # cash only, 转增 empty
    "sz.000001,,2023-06-10,2023-03-09,2023-06-07,2023-06-13,2023-06-14,2023-06-14,,0.285,0.2565,,,",
    # a plan not carried out yet: no ex-date, not stored
    "sz.000001,,,2023-08-24,,,,,,0.2,,,,",
]


def write(path, rows: list[str], header: str = HEADER):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def clean_dividends(store):
    """The session database without dividend records before and after the test."""
    from vnpy_rotation.fundamentals.dividends import DividendStore

    DividendStore(store.database)
    DividendRow.delete().execute()
    yield store
    DividendRow.delete().execute()


def test_parse_keeps_carried_out_plans(tmp_path):
    parsed = parse_dividends(write(tmp_path / "dividend.csv", ROWS))
    rows = parsed.frame[["symbol", "exchange", "ex_date", "announced", "cash", "bonus", "transfer"]]
    assert [(s, e, d.date(), a.date(), c, b, t) for s, e, d, a, c, b, t in rows.itertuples(index=False)] == [
        ("600000", "SSE", date(2023, 6, 2), date(2023, 4, 28), 0.1, 0.0, 1.0),
        ("000001", "SZSE", date(2023, 6, 14), date(2023, 3, 9), 0.285, 0.0, 0.0),
    ]
    assert parsed.plans == 1


def test_the_header_tells_the_layout(tmp_path):
    assert is_dividend_file(write(tmp_path / "d.csv", ROWS))
    assert not is_dividend_file(write(tmp_path / "p.csv", ["sh.600000,2023-04-29,2023-03-31,0.025"],
                                      "code,pubDate,statDate,roeAvg"))


@pytest.mark.parametrize("row,reason", [
    ("sh.600000,,,,,,2023-06-02,,,-0.1,,0,,1", "3: negative dividCashPsBeforeTax -0.1"),
    ("sh.600000,,,,,,2023-13-02,,,0.1,,0,,1", "3: unparseable date '2023-13-02' in column dividOperateDate"),
    ("xx.600000,,,,,,2023-06-02,,,0.1,,0,,1", "3: unknown code format 'xx.600000'"),
    ("sh.600000,,,,,,2023-06-02,,,0.1,,abc,,1", "3: 'abc' is not a number in column dividStocksPs"),
    (ROWS[0], "3: duplicate dividend for 600000.SSE 2023-06-02 (first on line 2)"),
])
def test_bad_rows_are_refused_with_their_line(tmp_path, row, reason):
    path = write(tmp_path / "dividend.csv", [ROWS[0], row])
    with pytest.raises(InputRejected) as caught:
        parse_dividends(path)
    assert any(str(p).startswith(f"{path}:{reason}") for p in caught.value.problems), caught.value.problems


def test_missing_amount_columns_are_named(tmp_path):
    path = write(tmp_path / "dividend.csv", ["sh.600000,2023-06-02"], "code,dividOperateDate")
    with pytest.raises(InputRejected) as caught:
        parse_dividends(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.reason.rpartition("missing: ")[2]) == (
        1, "dividCashPsBeforeTax, dividStocksPs, dividReserveToStockPs")


def test_run_py_import_stores_the_records(tmp_path):
    path = write(tmp_path / "dividend.csv", ROWS)
    first = run_cli("import", str(path), home=tmp_path)
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        rows = db.execute("select symbol, exchange, ex_date, cash, bonus, transfer from rotation_dividend "
                          "order by ex_date").fetchall()
    assert rows == [("600000", "SSE", "2023-06-02", 0.1, 0.0, 1.0), ("000001", "SZSE", "2023-06-14", 0.285, 0.0, 0.0)]
    bad = write(tmp_path / "bad.csv", [ROWS[0].replace("0.1,0.09", "-1,0.09")])
    refused = run_cli("import", str(bad), home=tmp_path)
    assert refused.returncode != 0
    assert f"{bad}:2:" in refused.stderr and "Traceback" not in refused.stderr


BARS = ("date,code,open,high,low,close,preclose,volume,amount,adjustflag,turn,tradestatus,pctChg,isST\n"
        "2023-05-30,sh.600000,20.10,20.10,20.10,20.10,20.10,1000000,20100000,3,1,1,0,0\n"
        "2023-05-31,sh.600000,20.10,20.10,20.10,20.10,20.10,1000000,20100000,3,1,1,0,0\n"
        "2023-06-01,sh.600000,20.30,20.30,20.30,20.30,20.10,1000000,20300000,3,1,1,0,0\n"
        "2023-06-02,sh.600000,10.10,10.10,10.10,10.10,10.10,1000000,10100000,3,1,1,0,0\n"
        "2023-06-05,sh.600000,10.10,10.10,10.10,10.10,10.10,1000000,10100000,3,1,1,0,0\n")


def test_stored_distributions_prefer_the_record(clean_dividends, tmp_path):
    """Bars with an ex-date on 06-02 (close 20.30 → reference 10.10, step 2.0099) give 10转10 + 0.10 from
    the factor; an imported record for that day (here 10送5 + 转增5 + 0.10) replaces it."""
    from vnpy_rotation.data.importer import import_paths

    store = clean_dividends
    bars = tmp_path / "sh.600000.csv"
    bars.write_text(BARS, encoding="utf-8")
    assert import_paths([bars], store, progress=False).ok
    (derived,) = stored_distributions(store, ["600000.SSE"])["600000.SSE"]
    assert (derived.ex_date, derived.share_ratio, round(derived.cash, 6), derived.source) == (
        date(2023, 6, 2), 2.0, 0.1, FACTOR)
    record = write(tmp_path / "dividend.csv", [ROWS[0].replace(",0,,1", ",0.5,,0.5")])
    assert import_paths([record], store, progress=False).ok
    assert stored_distributions(store, ["600000.SSE"])["600000.SSE"] == [
        Distribution(date(2023, 6, 2), 2.0, 0.1, BAOSTOCK)]


def test_load_market_applies_the_record(clean_dividends, tmp_path):
    """The backtest's market data (and so the kernel and the replay book) take the imported record."""
    from vnpy_rotation.backtest.loader import load_market
    from vnpy_rotation.data.importer import import_paths

    store = clean_dividends
    bars = tmp_path / "sh.600000.csv"
    bars.write_text(BARS, encoding="utf-8")
    assert import_paths([bars], store, progress=False).ok
    before = load_market(["600000.SSE"], store=store)
    i = before.days.get_loc(pd.Timestamp("2023-06-02"))
    assert (before.split[i, 0], round(before.dividend[i, 0], 6)) == (2.0, 0.1)  # from the factor step
    # a record saying 10送3 + 转增2 + 0.20 (not what the prices imply: only the record can say it)
    assert import_paths([write(tmp_path / "dividend.csv", [ROWS[0].replace("0.1,0.09或0.1,0,,1", "0.2,0.18,0.3,,0.2")])],
                        store, progress=False).ok
    after = load_market(["600000.SSE"], store=store)
    assert (after.split[i, 0], after.dividend[i, 0]) == (1.5, 0.2)
