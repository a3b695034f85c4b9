"""Baostock express reports (业绩快报), forecasts (业绩预告) and balance-sheet layouts through ``run.py import``:
recognised by header, stored point in time with exact values, rejected as ``file:line: reason`` whole."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from test_fundamentals_import import fstore, importing  # noqa: F401 (fstore is a fixture)

DATA = Path(__file__).parent / "data" / "fundamentals"
EXPRESS, FORECAST = DATA / "express_sh600000.csv", DATA / "forecast_sh600000.csv"
BALANCE, EQUITY = DATA / "balance_synthetic.csv", DATA / "equity_synthetic.csv"


def copy(tmp_path, source: Path, text: str | None = None, name: str | None = None) -> Path:
    target = tmp_path / (name or source.name)
    if text is None:
        shutil.copy(source, target)
    else:
        target.write_text(text, encoding="utf-8")
    return target


def test_real_express_reports_are_stored_with_their_dates_and_decimal_units(fstore, store):
    result = importing(store, EXPRESS)

    assert result.ok, result.failures
    [table] = result.tables
    assert (table.kind, table.label, table.rows, table.codes) == ("express reports", "baostock express", 3, 1)
    express = fstore.express()
    assert express["period_end"].dt.strftime("%Y-%m-%d").tolist() == ["2014-12-31", "2015-12-31", "2016-12-31"]
    assert express["announced"].dt.strftime("%Y-%m-%d").tolist() == ["2015-01-06", "2016-01-05", "2017-01-04"]
    first = express.iloc[0]
    assert (first["vt_symbol"], first["net_asset"], first["total_asset"], first["eps_diluted"]) == \
        ("600000.SSE", 260011000000.0, 4195602000000.0, 2.52)
    assert first["roe_wa"] == pytest.approx(0.2102)  # 21.02 % → decimal
    assert (first["eps_chg_pct"], first["yoy_revenue"], first["yoy_op_profit"]) == (0.32691, 0.22839, 0.153803)
    assert fstore.reports().empty  # nothing written into the periodic reports


def test_real_forecasts_are_stored_with_type_text_and_bounds(fstore, store):
    assert importing(store, FORECAST).ok

    forecasts = fstore.forecasts()
    assert forecasts["announced"].dt.strftime("%Y-%m-%d").tolist() == ["2010-01-05", "2011-01-05", "2012-01-05"]
    assert forecasts["type"].tolist() == ["略增"] * 3
    assert forecasts["abstract"].iloc[1].startswith("预计公司2010年年度")
    assert forecasts[["chg_pct_up", "chg_pct_dwn"]].values.tolist() == [
        [pytest.approx(0.0543), 0.0], [pytest.approx(0.4433)] * 2, [pytest.approx(0.4202)] * 2]


def test_reimporting_a_changed_express_file_replaces_the_same_report(fstore, store, tmp_path):
    importing(store, EXPRESS)
    changed = copy(tmp_path, EXPRESS, EXPRESS.read_text(encoding="utf-8").replace("2.400000,", "2.410000,"))

    assert importing(store, changed).ok

    express = fstore.express()
    assert len(express) == 3 and express["eps_diluted"].tolist() == [2.52, 2.66, 2.41]


@pytest.mark.parametrize("path,old,new,line,reason", [
    (EXPRESS, "2016-01-05,2015-12-31", "2016-13-05,2015-12-31", 3, "unparseable date '2016-13-05'"),
    (EXPRESS, "sh.600000,2017-01-04,", "sh.600000,,", 4, "missing value in column performanceExpPubDate"),
    (EXPRESS, "16.350000", "16,35", 4, "fields where the header has"),
    (FORECAST, "44.330000,44.330000", "n/a,44.330000", 3, "'n/a' is not a number in column profitForcastChgPctUp"),
    (FORECAST, "2011-01-05,2010-12-31", "2011-01-05,2010-12-30", 3, "not a quarter end"),
    (FORECAST, "2012-01-05,2011-12-31", "2011-01-05,2010-12-31", 4, "duplicate report"),
])
def test_bad_rows_are_refused_with_file_and_line_and_nothing_is_written(fstore, store, tmp_path, path, old, new,
                                                                         line, reason):
    from vnpy_rotation.fundamentals.store import ExpressRow, ForecastRow

    good = path.read_text(encoding="utf-8")
    assert old in good
    bad = copy(tmp_path, path, good.replace(old, new))

    result = importing(store, bad)

    [(source, problems)] = result.failures
    assert source == str(bad)
    assert [(p.line, reason in p.reason) for p in problems] == [(line, True)], problems
    assert ExpressRow.select().count() == 0 and ForecastRow.select().count() == 0


def test_balance_ratios_and_the_equity_layout_are_stored_point_in_time(fstore, store):
    assert importing(store, BALANCE, EQUITY).ok

    balance = fstore.balance()
    assert balance["announced"].dt.strftime("%Y-%m-%d").tolist() == ["2017-08-11", "2017-08-30"]
    row = balance[balance["vt_symbol"] == "600000.SSE"].iloc[0]
    # The ratios file and the equity file fill different fields of the same report.
    assert (row["liability_to_asset"], row["asset_to_equity"], row["total_equity"], row["total_share"]) == \
        (0.933703, 15.083598, 420000000000.0, 28103763899.0)
    other = balance[balance["vt_symbol"] == "000001.SZSE"].iloc[0]
    assert pd.isna(other["total_equity"]) and other["asset_to_equity"] == 15.38


def test_a_file_mixing_profit_and_balance_columns_is_refused_at_its_header(fstore, store, tmp_path):
    mixed = copy(tmp_path, EQUITY, "code,pubDate,statDate,roeAvg,totalEquity\nsh.600000,2017-08-30,2017-06-30,0.07,1\n",
                 name="mixed.csv")
    [(source, [problem])] = importing(store, mixed).failures
    assert (source, problem.line) == (str(mixed), 1)


def test_cli_imports_express_and_forecast_files_in_one_transaction_each(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in (EXPRESS, FORECAST):
        shutil.copy(path, folder / path.name)
    # Another stock's rows (good after line 2) make a partial write visible: nothing of 600036 may be stored.
    text = FORECAST.read_text(encoding="utf-8").replace("sh.600000", "sh.600036").replace("5.430000", "x")
    bad = copy(folder, FORECAST, text, name="bad_forecast.csv")

    proc = run_cli("import", str(folder), home=tmp_path)

    assert proc.returncode == 1 and f"{bad}:2:" in proc.stderr and "Traceback" not in proc.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        assert db.execute("select count(*) from rotation_express").fetchone() == (3,)
        assert db.execute("select count(*), min(announced) from rotation_forecast").fetchone() == (3, "2010-01-05")
        assert db.execute("select count(*) from rotation_forecast where symbol = '600036'").fetchone() == (0,)
