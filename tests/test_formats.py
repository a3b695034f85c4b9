"""Bar file layouts: the wrong layout is a `file:line: reason` naming what was expected; Tushare, Choice
and Wind exports import with their units converted (real Tushare sample, synthetic Choice/Wind fixtures
built from real bars: tests/data/formats/PROVENANCE.md)."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import run_cli

SAMPLES = Path(__file__).resolve().parent / "data" / "formats"
TUSHARE = SAMPLES / "600529.SH_tushare_daily.csv"
TUSHARE_NEWEST_FIRST = SAMPLES / "600529.SH_tushare_daily_newest_first.csv"
CHOICE = SAMPLES / "000333.SZ_choice_synthetic.csv"
CHOICE_QFQ = SAMPLES / "000333.SZ_choice_qfq_synthetic.csv"
WIND_CSV = SAMPLES / "510300.SH_wind_synthetic.csv"
WIND_XLSX = SAMPLES / "510300.SH_wind_synthetic.xlsx"

DAYS = ["2024-09-23", "2024-09-24", "2024-09-25"]
BAOSTOCK = ("date,code,open,high,low,close,preclose,volume,amount,adjustflag,turn,tradestatus,pctChg,isST\n"
            + "".join(f"{d},sh.510300,3.5,3.6,3.4,3.5,3.5,1000,3500,3,0.1,1,0.0,0\n" for d in DAYS))
TDX = "".join(f"{d.replace('-', '/')},3.5,3.6,3.4,3.5,1000,3500\n" for d in DAYS)
AKSHARE = "日期,开盘,收盘,最高,最低,成交量,成交额\n" + "".join(f"{d},3.5,3.5,3.6,3.4,10,3500\n" for d in DAYS)
PLAIN = "date,open,high,low,close,volume,turnover\n" + "".join(f"{d},3.5,3.6,3.4,3.5,1000,3500\n" for d in DAYS)


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


# id, file name, content, --format, expected line (None: the whole file), tokens in the reason
WRONG_LAYOUTS = [
    ("baostock-as-tdx", "510300.csv", BAOSTOCK, "tdx", 1, ["tdx", "YYYY/MM/DD", "baostock"]),
    ("akshare-as-tdx", "510300.csv", AKSHARE, "tdx", 1, ["tdx", "YYYY/MM/DD", "akshare"]),
    ("tdx-as-akshare", "510300.csv", TDX, "akshare", 1, ["akshare", "date", "tdx"]),
    ("akshare-as-baostock", "510300.csv", AKSHARE, "baostock", 1, ["baostock", "date", "akshare"]),
    ("baostock-as-tushare", "510300.csv", BAOSTOCK, "tushare", 1, ["tushare", "trade_date", "baostock"]),
    ("plain-as-wind", "510300.csv", PLAIN, "wind", 1, ["wind", "开盘价", "csv"]),
    ("xlsx-as-csv", "510300.csv", WIND_XLSX.read_bytes(), "csv", 1, ["csv", "date", "wind"]),
    ("empty", "510300.csv", "", "auto", None, ["empty"]),
    ("blank-lines-only", "510300.csv", "\n \n\n", "tdx", None, ["empty"]),
    ("header-only", "510300.csv", PLAIN.splitlines()[0] + "\n", "auto", 1, ["no data rows"]),
    ("tushare-header-only", "510300.csv", "ts_code,trade_date,open,high,low,close,pre_close,vol,amount\n", "auto", 1,
     ["no data rows"]),
    ("binary-garbage", "510300.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "auto", 3, ["binary"]),
    ("legacy-xls", "510300.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "auto", None, [".xls"]),
    ("damaged-xlsx", "510300.xlsx", WIND_XLSX.read_bytes()[:400], "auto", None, ["xlsx"]),
    ("damaged-gzip", "510300.csv.gz", gz(PLAIN)[:25], "auto", None, ["gzip"]),
    ("ragged-row", "510300.csv", PLAIN.replace(f"{DAYS[1]},3.5,", f"{DAYS[1]},3.5,9,9,"), "auto", 3, ["9 fields", "7"]),
    ("unknown-volume-unit", "510300.csv", "代码,日期,开盘价,最高价,最低价,收盘价,成交量(桶)\n510300.SH,2024-09-23,1,1,1,1,1\n",
     "auto", 1, ["成交量(桶)", "股"]),
    ("hfq-terminal-export", "510300.csv", "复权方式：后复权\n" + WIND_CSV.read_bytes().decode("gbk"), "auto", None,
     ["后复权", "前复权"]),
    ("several-securities", "stocks.csv", TUSHARE.read_text().replace("600529.SH,20190625", "600000.SH,20190625"),
     "auto", None, ["ts_code", "2 securities"]),
]


def write(folder: Path, name: str, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("name, content, fmt, line, tokens", [pytest.param(*s[1:], id=s[0]) for s in WRONG_LAYOUTS])
def test_wrong_layout_is_refused_with_file_line_and_what_was_expected(tmp_path, name, content, fmt, line, tokens):
    from vnpy_rotation.data.formats import parse
    from vnpy_rotation.data.importer import ImportOptions, read_and_validate
    from vnpy_rotation.errors import InputRejected
    from vnpy_rotation.market.calendar import default_calendar

    path = write(tmp_path / "in", name, content)

    with pytest.raises(InputRejected) as info:
        read_and_validate(path, ImportOptions(fmt=fmt), default_calendar())

    problems = info.value.problems
    assert all(p.source == str(path) for p in problems)
    assert [p for p in problems if p.line == line and all(t in p.reason for t in tokens)], [str(p) for p in problems]
    with pytest.raises(InputRejected):  # the parser alone refuses the same way
        problems_of_parse = parse(path, fmt)
        if problems_of_parse.problems:
            raise InputRejected(problems_of_parse.problems)


def test_cli_tdx_format_on_a_baostock_file_is_a_one_line_error(tmp_path):
    path = write(tmp_path / "in", "510300.csv", BAOSTOCK)

    proc = run_cli("import", str(path), "--format", "tdx", home=tmp_path)

    assert proc.returncode != 0
    assert f"{path}:1:" in proc.stderr
    assert "Traceback" not in proc.stderr


def bars(store, code: str) -> list[tuple]:
    """(day, open, high, low, close, volume, turnover) of every stored daily bar of ``code``."""
    m = store.bar_model
    query = m.select(m.datetime, m.open_price, m.high_price, m.low_price, m.close_price, m.volume, m.turnover) \
        .where(m.symbol == code).order_by(m.datetime).tuples()
    return [(str(r[0])[:10], *(round(float(v), 4) for v in r[1:])) for r in query]


def test_tushare_daily_converts_lots_and_thousands_and_feeds_preclose(store):
    from vnpy_rotation.data.importer import import_file

    report = import_file(TUSHARE, store)

    assert (report.vt_symbol, report.fmt, report.rows) == ("600529.SSE", "tushare", 10)
    stored = bars(store, "600529")
    # 20190612: vol 19454.8 lots, amount 53580.678 thousand CNY
    assert stored[0] == ("2019-06-12", 27.6, 27.98, 27.11, 27.22, 1945480.0, 53580678.0)
    assert stored[-1] == ("2019-06-25", 21.61, 22.36, 21.32, 22.31, 8117527.0, 178625675.0)
    # 2019-06-20: pre_close 20.69 after a close of 29.27 is the ex-rights reference price (10转4 + cash)
    events = store.events("600529", "SSE")
    assert [(e.ex_date, round(e.factor, 6), e.source) for e in events] == [(date(2019, 6, 20), round(29.27 / 20.69, 6), "preclose")]


def test_tushare_newest_first_is_sorted_not_refused(store, tmp_path):
    from vnpy_rotation.data.importer import import_file

    import_file(TUSHARE_NEWEST_FIRST, store)
    newest_first = bars(store, "600529"), store.events("600529", "SSE")
    from conftest import empty_database

    empty_database(store)
    import_file(TUSHARE, store)

    assert (bars(store, "600529"), store.events("600529", "SSE")) == newest_first
    assert newest_first[0][0][0] == "2019-06-12"


def test_tushare_csv_written_with_pandas_index_column_reads_the_same(tmp_path):
    from vnpy_rotation.data.formats import parse

    text = TUSHARE.read_text().splitlines()
    indexed = write(tmp_path, "600529.SH.csv", "\n".join("," + text[0] if i == 0 else f"{i - 1},{line}"
                                                         for i, line in enumerate(text)) + "\n")

    a, b = parse(TUSHARE), parse(indexed)

    assert (b.layout.name, b.code, b.exchange) == ("tushare", "600529", "SSE")
    assert a.frame.drop(columns="line").equals(b.frame.drop(columns="line"))


def test_choice_export_thousands_separators_dashes_and_footer(store):
    from vnpy_rotation.data.importer import import_file

    report = import_file(CHOICE, store)

    assert (report.vt_symbol, report.fmt, report.basis, report.rows, report.suspended) == ("000333.SZSE", "choice", "none", 9, 1)
    stored = bars(store, "000333")
    assert len(stored) == 8  # the "--" day (2019-02-20, suspended) has no bar
    assert "2019-02-20" not in [b[0] for b in stored]
    assert stored[0] == ("2019-02-14", 46.9, 47.31, 46.5, 47.15, 22921397.0, 1077612635.88)
    flags = store.flags("000333", "SZSE")
    assert list(flags.index[flags["suspended"]].strftime("%Y-%m-%d")) == ["2019-02-20"]


def test_choice_forward_adjusted_export_takes_the_qfq_path(store):
    from vnpy_rotation.data.formats import parse
    from vnpy_rotation.data.importer import import_file

    assert parse(CHOICE_QFQ).adjustment == "qfq"
    report = import_file(CHOICE_QFQ, store)

    assert report.basis == "qfq"
    qfq = store.qfq_close("000333", "SZSE")
    assert qfq["2019-05-29"] == 49.08 and qfq["2019-05-30"] == 49.45


@pytest.mark.parametrize("path", [WIND_CSV, WIND_XLSX], ids=["csv-gbk", "xlsx"])
def test_wind_export_turnover_in_millions_volume_in_shares(store, tmp_path, path):
    from vnpy_rotation.data.importer import import_paths

    copy = tmp_path / path.name
    shutil.copy(path, copy)
    result = import_paths([tmp_path], store, progress=False)  # a folder: .xlsx files are collected too

    assert result.ok, result.failures
    assert [(r.vt_symbol, r.fmt, r.rows) for r in result.reports] == [("510300.SSE", "wind", 7)]
    stored = bars(store, "510300")
    assert stored[0] == ("2024-09-23", 3.269, 3.3, 3.263, 3.283, 897316500.0, 2948484500.0)
    assert stored[-1][0] == "2024-10-08"


# id, header, body row: a unitless 成交量 is told from turnover / (volume × close)
VOLUME_UNITS = [
    ("shares", "成交量", "1,000", 1000.0),
    ("lots", "成交量", "10", 1000.0),
    ("stated-lots", "成交量(手)", "10", 1000.0),
    ("stated-ten-thousand", "成交量(万股)", "0.1", 1000.0),
]


@pytest.mark.parametrize("unit, cell, shares", [pytest.param(*v[1:], id=v[0]) for v in VOLUME_UNITS])
def test_choice_volume_unit_from_header_or_turnover(tmp_path, unit, cell, shares):
    from vnpy_rotation.data.formats import parse

    path = write(tmp_path, "510300.csv", f"证券代码,证券名称,交易时间,开盘价,最高价,最低价,收盘价,{unit},成交额\n"
                                         f'510300.SH,沪深300ETF,2024-09-23,3.5,3.6,3.4,3.5,"{cell}","3,500.00"\n')

    parsed = parse(path)

    assert parsed.problems == []
    assert parsed.frame["volume"].tolist() == [shares]
    assert parsed.frame["turnover"].tolist() == [3500.0]


def test_choice_partial_dashes_are_missing_values_not_a_suspension(tmp_path):
    from vnpy_rotation.data.formats import parse

    path = write(tmp_path, "510300.csv", "证券代码,证券名称,交易时间,开盘价,最高价,最低价,收盘价,成交量(股),成交额(元)\n"
                                         "510300.SH,沪深300ETF,2024-09-23,3.5,3.6,3.4,--,1000,3500\n")

    problems = parse(path).problems

    assert [(p.line, p.reason) for p in problems] == [(2, "missing value in column close")]


@pytest.mark.parametrize("text, expected", [("510300.SH", ("510300", "SSE")), ("000001.SZ", ("000001", "SZSE")),
                                            ("430047.BJ", ("430047", "BSE")), ("sh.600000", ("600000", "SSE"))])
def test_exchange_suffixed_codes(text, expected):
    from vnpy_rotation.data.formats import parse_symbol

    assert parse_symbol(text) == expected


@pytest.mark.parametrize("title, adjustment", [("510050 上证50ETF 日线 不复权", "none"), ("510050 上证50ETF 日线 前复权", "qfq")])
def test_tdx_export_with_title_and_column_names_is_detected_with_its_adjustment(tmp_path, title, adjustment):
    from vnpy_rotation.data.formats import parse

    lines = [title, "      日期,    开盘,    最高,    最低,    收盘,    成交量,    成交额",
             "2024/09/23,3.500,3.560,3.480,3.520,1000000,3520000", "2024/09/24,3.520,3.600,3.510,3.580,1200000,4296000",
             "数据来源:通达信"]
    path = write(tmp_path, "510050.txt", ("\r\n".join(lines) + "\r\n").encode("gbk"))

    parsed = parse(path)

    assert (parsed.layout.name, parsed.adjustment, parsed.problems) == ("tdx", adjustment, [])
    assert parsed.frame[["line", "close", "volume"]].values.tolist() == [[3, 3.52, 1000000.0], [4, 3.58, 1200000.0]]


def test_tdx_damaged_first_row_is_reported_not_taken_for_a_title(tmp_path):
    from vnpy_rotation.data.formats import parse

    path = write(tmp_path, "510050.csv", "2024/09/2x,3.5,3.6,3.4,3.5,1000,3500\n" + TDX)

    assert [p.line for p in parse(path, "tdx").problems] == [1]


# Terminal headers as public loaders quote them (see tests/data/formats/PROVENANCE.md); one row of 510300
# on 2024-09-23: 8 973 165 lots = 897 316 500 shares, 2 948 484 470 CNY.
TERMINAL_HEADERS = [
    ("wind-millions", "代码,名称,日期,开盘价(元),最高价(元),最低价(元),收盘价(元),成交额(百万),成交量(股)",
     "510300.SH,沪深300ETF,2024-09-23,3.269,3.3,3.263,3.283,2948.48447,897316500", "wind"),
    ("choice-lots-thousands", "证券代码,交易时间,开盘价,最高价,最低价,收盘价,前收盘价,涨跌额,涨跌幅,成交量(手),成交额(千元)",
     "510300.SH,2024/09/23,3.269,3.300,3.263,3.283,3.274,0.009,0.27,8973165,2948484.47", "choice"),
    ("full-width-brackets", "证券代码,证券名称,交易时间,开盘价（元）,最高价（元）,最低价（元）,收盘价（元）,成交量（股）,成交金额（元）",
     '510300.SH,沪深300ETF,20240923,3.269,3.300,3.263,3.283,"897,316,500","2,948,484,470.00"', "choice"),
]


@pytest.mark.parametrize("header, row, fmt", [pytest.param(*h[1:], id=h[0]) for h in TERMINAL_HEADERS])
def test_terminal_header_units_convert_to_shares_and_cny(tmp_path, header, row, fmt):
    from vnpy_rotation.data.formats import parse

    path = write(tmp_path, "export.csv", ("行情数据 日线 不复权\r\n" + header + "\r\n" + row + "\r\n").encode("gb18030"))

    parsed = parse(path)

    assert (parsed.layout.name, parsed.code, parsed.exchange, parsed.adjustment, parsed.problems) == (
        fmt, "510300", "SSE", "none", [])
    got = parsed.frame.iloc[0]
    assert (str(got["date"].date()), got["line"], got["close"], got["volume"], round(got["turnover"])) == (
        "2024-09-23", 3, 3.283, 897316500.0, 2948484470)


@pytest.mark.parametrize("name,expected", [("000300.SH.csv", ("000300", "SSE")), ("000001.SZ.csv", ("000001", "SZSE")),
                                           ("510300.csv", ("510300", "SSE")), ("SZ#159915.txt", ("159915", "SZSE"))])
def test_an_exchange_suffix_in_the_file_name_wins_over_the_codes_first_digit(name, expected):
    """000300.SH is the CSI 300 index on SSE; its first digit alone would say SZSE."""
    from vnpy_rotation.data.formats import symbol_from_name

    assert symbol_from_name(Path(name)) == expected


def test_a_column_name_repeated_three_times_gets_three_names():
    from vnpy_rotation.data.formats import _unique

    assert _unique(["a", "a", "a", "b"]) == ["a", "a.1", "a.2", "b"]
