"""Importing fundamentals and index-membership files: exact rows, file:line rejections, merges, re-imports."""

from __future__ import annotations

import gzip
import math
import sqlite3

import pytest
from conftest import REAL, needs_real, run_cli

PROFIT_HEADER = "code,pubDate,statDate,roeAvg,npMargin,gpMargin,netProfit,epsTTM,MBRevenue,totalShare,liqaShare"
GROWTH_HEADER = "code,pubDate,statDate,YOYEquity,YOYAsset,YOYNI,YOYEPSBasic,YOYPNI"
PROFIT_ROWS = [
    "sh.600000,2023-04-29,2023-03-31,0.025,0.40,,1.2E10,1.80,,2.9E10,2.9E10",
    "sh.600000,2023-08-30,2023-06-30,0.051,0.41,,2.5E10,1.75,8.0E10,2.9E10,2.9E10",
    "sz.000001,2023-04-25,2023-03-31,0.030,0.35,0.60,1.4E10,2.10,4.0E10,1.9E10,1.9E10",
]
GROWTH_ROWS = [
    "sh.600000,2023-04-29,2023-03-31,0.05,0.06,-0.10,-0.11,-0.12",
    "sh.600000,2023-08-30,2023-06-30,0.04,0.05,-0.20,-0.21,-0.22",
    "sz.000001,2023-04-25,2023-03-31,0.08,0.09,0.10,0.11,0.12",
]
HS300_CHANGES = "chang_date,code,in_out\n2013/9/18,527,dropout\n2013/9/18,333,takein\n2013/12/16,600000,takein\n"
SNAPSHOT = "updateDate,code,code_name\n2024-08-19,sh.600000,浦发银行\n2024-08-19,sz.000001,平安银行\n"
PERSHARE = ("stock_code,m_timetag,m_anntime,s_fa_eps_basic,s_fa_bps,equity_roe,sales_gross_profit,net_profit,"
            "du_profit_rate,inc_net_profit_rate\n"
            "600000.SH,20220331,20220430,0.30,20,2.5,,40,10,11\n"
            "600000.SH,20221231,20230428,1.20,21,9.0,,41,12,13\n"
            "600000.SH,20230331,20230429,0.40,22,2.8,,42,14,15\n")


def text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def write(path, content: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def parse(path):
    from vnpy_rotation.fundamentals.formats import parse_table

    return parse_table(path)


def problems_of(path) -> list:
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected) as info:
        parse(path)
    return info.value.problems


@pytest.fixture
def fstore(store):
    """A :class:`FundamentalStore` on the emptied database; its tables are emptied before and after
    (the shared ``store`` fixture does not know them, and later tests must not see these made-up reports)."""
    from vnpy_rotation.fundamentals.store import MODELS, FundamentalStore

    fundamentals = FundamentalStore(store.database)
    for model in MODELS:
        model.delete().execute()
    yield fundamentals
    for model in MODELS:
        model.delete().execute()


def importing(store, *paths):
    from vnpy_rotation.data.importer import import_paths

    return import_paths(paths, store, progress=False)


def everything(fstore) -> dict[str, list]:
    """Every stored row of the three tables, ids left out."""
    from vnpy_rotation.fundamentals.store import MODELS

    return {m.__name__: sorted(map(repr, m.select(*[f for f in m._meta.sorted_fields if f.name != "id"]).tuples()))
            for m in MODELS}


# -- each format parses to the exact rows ---------------------------------------------------------------
def test_baostock_profit_parses_to_exact_rows(tmp_path):
    table = parse(write(tmp_path / "profit_data.csv", text(PROFIT_HEADER, PROFIT_ROWS)))

    assert (table.kind, table.label, table.origin) == ("reports", "baostock profit", "baostock")
    assert set(table.fields) == {"roe_ytd", "np_margin", "gp_margin", "net_profit", "eps_ttm", "revenue",
                                 "total_share", "float_share"}
    frame = table.frame
    assert frame["line"].tolist() == [2, 3, 4]
    assert list(zip(frame["symbol"], frame["exchange"])) == [("600000", "SSE"), ("600000", "SSE"), ("000001", "SZSE")]
    assert frame["period_end"].dt.strftime("%Y-%m-%d").tolist() == ["2023-03-31", "2023-06-30", "2023-03-31"]
    assert frame["announced"].dt.strftime("%Y-%m-%d").tolist() == ["2023-04-29", "2023-08-30", "2023-04-25"]
    assert frame["eps_ttm"].tolist() == [1.80, 1.75, 2.10]
    assert frame["net_profit"].tolist() == [1.2e10, 2.5e10, 1.4e10]
    assert math.isnan(frame["gp_margin"].iloc[0]) and math.isnan(frame["revenue"].iloc[0])  # empty cells: unknown
    assert frame["revenue"].iloc[1] == 8.0e10


def test_baostock_growth_parses_gzipped(tmp_path):
    path = write(tmp_path / "growth_data.csv.gz", gzip.compress(text(GROWTH_HEADER, GROWTH_ROWS).encode()))

    table = parse(path)

    assert table.label == "baostock growth"
    assert table.frame[["yoy_equity", "yoy_asset", "yoy_net_profit", "yoy_eps", "yoy_parent_net_profit"]].iloc[0].tolist() \
        == [0.05, 0.06, -0.10, -0.11, -0.12]


def test_index_changes_parse_integer_codes_and_the_index_from_the_name(tmp_path):
    table = parse(write(tmp_path / "HS300_history.csv", HS300_CHANGES))

    assert (table.kind, table.index) == ("index changes", "000300.SSE")
    frame = table.frame
    assert list(zip(frame["day"].dt.strftime("%Y-%m-%d"), frame["symbol"] + "." + frame["exchange"], frame["change"])) == [
        ("2013-09-18", "000527.SZSE", -1), ("2013-09-18", "000333.SZSE", 1), ("2013-12-16", "600000.SSE", 1)]
    assert parse(write(tmp_path / "中证500_history.csv", HS300_CHANGES)).index == "000905.SSE"


def test_index_snapshot_parses_members_of_the_day(tmp_path):
    table = parse(write(tmp_path / "hs300_stocks_2024-08-19.csv", SNAPSHOT))

    assert (table.kind, table.index) == ("index snapshot", "000300.SSE")
    assert list(zip(table.frame["day"].dt.strftime("%Y-%m-%d"), table.frame["symbol"])) == [
        ("2024-08-19", "600000"), ("2024-08-19", "000001")]


def test_xt_pershareindex_scales_percent_and_derives_ttm_eps(tmp_path):
    table = parse(write(tmp_path / "pershareindex.csv", PERSHARE))

    assert (table.label, table.origin) == ("xt PershareIndex", "xt")
    frame = table.frame
    assert frame["announced"].dt.strftime("%Y-%m-%d").tolist() == ["2022-04-30", "2023-04-28", "2023-04-29"]
    assert frame["roe_ytd"].tolist() == pytest.approx([0.025, 0.09, 0.028])
    assert frame["np_margin"].tolist() == pytest.approx([0.40, 0.41, 0.42])  # PershareIndex net_profit is a margin
    assert frame["yoy_parent_net_profit"].tolist() == pytest.approx([0.11, 0.13, 0.15])
    # TTM: 2022 annual as is; 2023Q1 = 0.40 + 1.20 - 0.30; 2022Q1 lacks 2021 reports.
    assert math.isnan(frame["eps_ttm"].iloc[0])
    assert frame["eps_ttm"].iloc[1:].tolist() == pytest.approx([1.20, 1.30])
    assert "gp_margin" in table.fields and frame["gp_margin"].isna().all()


def test_xt_ttm_uses_the_version_known_at_the_announcement(tmp_path):
    content = ("stock_code,m_timetag,m_anntime,s_fa_eps_basic,net_profit_incl_min_int_inc,revenue\n"
               "000001.SZ,20220331,20220420,0.30,1,2\n000001.SZ,20221231,20230310,1.20,3,4\n"
               "000001.SZ,20221231,20230601,1.00,3,4\n"  # restated after 2023Q1 came out
               "000001.SZ,20230331,20230420,0.40,5,6\n")
    frame = parse(write(tmp_path / "income.csv", content)).frame

    assert frame["eps_ttm"].tolist()[1:] == pytest.approx([1.20, 1.00, 1.30])


def test_xt_income_takes_the_code_from_the_file_name_and_capital_maps_to_quarters(tmp_path):
    income = parse(write(tmp_path / "600519.SH_Income.csv",
                         "m_timetag,m_anntime,revenue,net_profit_incl_min_int_inc,s_fa_eps_basic\n"
                         "20231231,20240402,1.5E11,7.5E10,59.49\n"))
    capital = parse(write(tmp_path / "capital.csv", "stock_code,m_timetag,m_anntime,total_capital,circulating_capital\n"
                          "600519.SH,20230105,20230101,100,80\n600519.SH,20230220,20230301,120,90\n"
                          "600519.SH,20230815,,130,95\n"))

    assert (income.label, income.frame["symbol"].iloc[0], income.frame["revenue"].iloc[0]) == ("xt Income", "600519", 1.5e11)
    assert income.frame["eps_ttm"].iloc[0] == 59.49
    rows = capital.frame
    assert set(capital.fields) == {"total_share", "float_share"}
    assert list(zip(rows["period_end"].dt.strftime("%Y-%m-%d"), rows["announced"].dt.strftime("%Y-%m-%d"),
                    rows["total_share"])) == [("2023-03-31", "2023-03-01", 120.0), ("2023-09-30", "2023-08-15", 130.0)]


# -- every problem names file:line; a bad file writes nothing ---------------------------------------------
SCENARIOS = [
    ("bad-statdate", "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0], PROFIT_ROWS[1].replace("2023-06-30", "2023-06-3x")]), 3, "2023-06-3x"),
    ("published-before-period", "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0].replace("2023-04-29", "2023-03-30")]), 2, "2023-03-30"),
    ("not-quarter-end", "growth_data.csv", text(GROWTH_HEADER, [GROWTH_ROWS[0], GROWTH_ROWS[1].replace("2023-06-30", "2023-05-31")]), 3, "2023-05-31"),
    ("duplicate-period", "growth_data.csv", text(GROWTH_HEADER, [*GROWTH_ROWS, GROWTH_ROWS[1].replace("2023-08-30", "2023-09-01")]), 5, "line 3"),
    ("not-a-number", "profit_data.csv", text(PROFIT_HEADER, [*PROFIT_ROWS[:2], PROFIT_ROWS[2].replace("0.030", "abc")]), 4, "abc"),
    ("unknown-code", "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0], PROFIT_ROWS[1].replace("sh.600000", "xx.12")]), 3, "xx.12"),
    ("bad-in-out", "HS300_history.csv", HS300_CHANGES + "2014/6/16,600001,maybe\n", 5, "maybe"),
    ("bad-change-date", "HS300_history.csv", HS300_CHANGES.replace("2013/12/16", "2013/13/16"), 4, "2013/13/16"),
    ("duplicate-change", "HS300_history.csv", HS300_CHANGES + "2013/9/18,527,takein\n", 5, "line 2"),
    ("duplicate-member", "hs300_stocks.csv", SNAPSHOT + "2024-08-19,sh.600000,浦发银行\n", 4, "line 2"),
    ("bad-xt-period", "pershareindex.csv", PERSHARE.replace("20221231", "2022123"), 3, "2022123"),
    ("short-row", "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0], "sz.000001,2023-04-25"]), 3, "statDate"),
    ("long-row", "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0], PROFIT_ROWS[1] + ",7"]), 3, "12"),
]


@pytest.mark.parametrize("name, content, line, token", [pytest.param(*s[1:], id=s[0]) for s in SCENARIOS])
def test_bad_file_is_rejected_with_its_line_and_nothing_written(fstore, store, tmp_path, name, content, line, token):
    importing(store, write(tmp_path / "seed" / "profit_data.csv", text(PROFIT_HEADER, PROFIT_ROWS)),
              write(tmp_path / "seed" / "HS300_history.csv", HS300_CHANGES))
    before = everything(fstore)
    path = write(tmp_path / "in" / name, content)

    result = importing(store, path)

    assert not result.ok and not result.tables
    [(source, problems)] = result.failures
    assert source == str(path) and all(p.source == str(path) for p in problems)
    assert any(p.line == line and token in p.reason for p in problems), [str(p) for p in problems]
    assert everything(fstore) == before


def test_every_problem_of_a_file_is_listed_in_line_order(tmp_path):
    rows = [PROFIT_ROWS[0].replace("0.025", "x"), PROFIT_ROWS[1].replace("2023-06-30", "2023-06-29"),
            PROFIT_ROWS[2].replace("sz.000001", "")]
    problems = problems_of(write(tmp_path / "profit_data.csv", text(PROFIT_HEADER, rows)))

    assert [p.line for p in problems] == [2, 3, 4]


def test_membership_file_without_an_index_in_its_name_is_rejected_naming_it(tmp_path):
    path = write(tmp_path / "history.csv", HS300_CHANGES)

    [problem] = problems_of(path)

    assert problem.source == str(path)


def test_xt_file_without_a_code_is_rejected_naming_it(tmp_path):
    path = write(tmp_path / "income.csv", "m_timetag,m_anntime,revenue,net_profit_incl_min_int_inc\n20231231,20240402,1,2\n")

    [problem] = problems_of(path)

    assert problem.source == str(path)


def test_other_baostock_and_xt_tables_are_rejected_not_read_as_bars(fstore, store, tmp_path):
    dupont = write(tmp_path / "dupont_data.csv", "code,pubDate,statDate,dupontROE,dupontAssetStoEquity\n"
                                                 "sh.600000,2017-08-30,2017-06-30,0.074617,15.594453\n")
    cash = write(tmp_path / "cashflow.csv", "stock_code,m_timetag,m_anntime,net_cash_flows_oper_act\n600000.SH,20230331,20230429,1\n")

    result = importing(store, dupont, cash)

    assert [source for source, _ in result.failures] == [str(dupont), str(cash)]
    assert all(p.line == 1 for _, problems in result.failures for p in problems)


# -- merges and re-imports ---------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["profit-first", "growth-first"])
def test_profit_and_growth_fill_the_same_reports(fstore, store, tmp_path, order):
    profit = write(tmp_path / "profit_data.csv", text(PROFIT_HEADER, PROFIT_ROWS))
    growth = write(tmp_path / "growth_data.csv", text(GROWTH_HEADER, GROWTH_ROWS))

    result = importing(store, *((profit, growth) if order == "profit-first" else (growth, profit)))

    assert result.ok
    reports = fstore.reports()
    assert len(reports) == 3
    assert reports["vt_symbol"].tolist() == ["000001.SZSE", "600000.SSE", "600000.SSE"]
    assert str(reports["period_end"].dtype) == str(reports["announced"].dtype) == "datetime64[ns]"
    first = reports.iloc[1]
    assert (first["eps_ttm"], first["roe_ytd"], first["yoy_parent_net_profit"]) == (1.80, 0.025, -0.12)
    assert reports["yoy_equity"].notna().all() and reports["eps_ttm"].notna().all()
    assert fstore.symbols_with_reports() == ["000001.SZSE", "600000.SSE"]
    assert fstore.reports(["000001.SZSE"])["period_end"].dt.strftime("%Y-%m-%d").tolist() == ["2023-03-31"]


def test_reimport_is_skipped_and_changed_bytes_replace_the_same_keys(fstore, store, tmp_path):
    profit = write(tmp_path / "profit_data.csv", text(PROFIT_HEADER, PROFIT_ROWS))
    growth = write(tmp_path / "growth_data.csv", text(GROWTH_HEADER, GROWTH_ROWS))
    changes = write(tmp_path / "HS300_history.csv", HS300_CHANGES)
    snapshot = write(tmp_path / "hs300_stocks.csv", SNAPSHOT)
    importing(store, profit, growth, changes, snapshot)
    before = everything(fstore)

    again = importing(store, profit, growth, changes, snapshot)

    assert [t.skipped for t in again.tables] == [True] * 4
    assert everything(fstore) == before

    write(profit, text(PROFIT_HEADER, [PROFIT_ROWS[0].replace("1.80", "1.85"), *PROFIT_ROWS[1:]]))
    write(snapshot, SNAPSHOT.replace("sz.000001,平安银行", "sz.000002,万科A"))
    changed = importing(store, profit, snapshot)

    assert [t.skipped for t in changed.tables] == [False, False]
    reports = fstore.reports(["600000.SSE"])
    assert len(reports) == 2 and reports["eps_ttm"].tolist() == [1.85, 1.75]
    assert reports["yoy_eps"].tolist() == [-0.11, -0.21]  # growth fields survive a profit re-import
    assert fstore.index_snapshots("000300.SSE")["vt_symbol"].tolist() == ["000002.SZSE", "600000.SSE"]


def test_unknown_announcement_rows_merge_too(fstore, store, tmp_path):
    importing(store, write(tmp_path / "p" / "profit_data.csv", "code,pubDate,statDate,epsTTM\nsh.600000,,2023-03-31,1.5\n"),
              write(tmp_path / "g" / "growth_data.csv", "code,pubDate,statDate,YOYNI\nsh.600000,,2023-03-31,0.2\n"))

    reports = fstore.reports()

    assert len(reports) == 1 and reports["announced"].isna().all()
    assert (reports["eps_ttm"].iloc[0], reports["yoy_net_profit"].iloc[0]) == (1.5, 0.2)


def test_bar_and_fundamentals_files_in_one_folder(fstore, store, tmp_path):
    from conftest import BUNDLED

    folder = tmp_path / "in"
    write(folder / "510300.csv", (BUNDLED / "etf" / "unadjusted_em" / "510300.csv").read_bytes())
    write(folder / "HS300_history.csv", HS300_CHANGES)

    result = importing(store, folder)

    assert result.ok and len(result.reports) == 1 and len(result.tables) == 1
    assert fstore.index_changes("000300.SSE")["change"].tolist() == [1, -1, 1]


# -- the command line on the real files --------------------------------------------------------------------
def test_cli_rejects_a_bad_fundamentals_file_with_file_and_line(tmp_path):
    bad = write(tmp_path / "in" / "profit_data.csv", text(PROFIT_HEADER, [PROFIT_ROWS[0], PROFIT_ROWS[1].replace("0.41", "n/a")]))

    proc = run_cli("import", str(bad), home=tmp_path)

    assert proc.returncode == 1
    assert f"{bad}:3:" in proc.stderr and "Traceback" not in proc.stderr


@needs_real
def test_cli_imports_the_real_fundamentals_and_membership_files(tmp_path):
    paths = [str(REAL / "fundamentals_baostock"), str(REAL / "index_constituents")]

    first = run_cli("import", *paths, home=tmp_path)
    again = run_cli("import", *paths, home=tmp_path)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        reports = db.execute("select count(*), count(eps_ttm), count(yoy_net_profit) from rotation_fundamental").fetchone()
        changes = db.execute("select change, count(*), count(distinct day) from rotation_index_change "
                             "where index_symbol = '000300.SSE' group by change order by change").fetchall()
        members = db.execute("select count(*) from rotation_index_snapshot where index_symbol = '000300.SSE'").fetchone()
        code_527 = db.execute("select symbol, exchange, change, day from rotation_index_change "
                              "where index_symbol = '000300.SSE' and symbol = '000527'").fetchall()
    assert reports == (24460, 24460 - 23, 24460 - 85)  # empty cells stay unknown
    assert changes == [(-1, 450, 24), (1, 450, 24)]
    assert members == (300,)
    assert code_527 == [("000527", "SZSE", -1, "2013-09-18")]
