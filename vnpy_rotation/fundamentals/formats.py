"""Fundamentals and index-membership files: detection, parsing, validation (pure, no vnpy).

Every file is told by its header line (see ``../shared/data/real/PROVENANCE.md`` §12-13 for real ones):

- **Baostock** ``query_profit_data`` / ``query_growth_data`` CSVs (gzip too): ``code`` (``sh.600000``),
  ``pubDate`` (announcement), ``statDate`` (period end, a quarter end), then the value columns of
  :data:`BAOSTOCK_PROFIT` / :data:`BAOSTOCK_GROWTH` (decimals; ``roeAvg`` is year-to-date). Both tables
  fill different fields of the same report (code, statDate, pubDate); a file may hold either or both.
- **xtquant** ``xtdata.get_financial_data`` tables, one table per CSV, as ``DataFrame.to_csv`` writes them:
  ``m_timetag`` (report period end, ``YYYYMMDD``), ``m_anntime`` (announcement, ``YYYYMMDD``, may be
  empty), the table's fields, and the code in a ``stock_code`` / ``code`` column (``600000.SH``) or else
  in the file name (``600000.SH_Income.csv``). Tables: PershareIndex, Income, Capital (see
  :data:`XT_TABLES`); a file may hold many codes and, for a period, several announcements (restatements).
- **CSI 300 / CSI 500 membership changes** ``chang_date,code,in_out``: ``YYYY/M/D`` dates, integer codes
  without leading zeros (``527`` = 000527), ``takein`` / ``dropout``. The index comes from the file name.
- **Baostock index snapshots** ``updateDate,code,code_name``: the members on ``updateDate``.
- **Baostock** ``query_balance_data`` (``currentRatio … assetToEquity``: ratios only, no equity level) and a
  plain **equity** layout ``code,pubDate,statDate,totalEquity[,totalShare]`` (equity attributable to the
  parent's shareholders in CNY; shares): the book value behind PB (see :mod:`.valuation`).
- **Baostock** ``query_performance_express_report`` (业绩快报) and ``query_forecast_report`` (业绩预告),
  told by their ``performanceExp…`` / ``profitForcastExp…`` date columns (see :data:`BAOSTOCK_EXPRESS`).

A file is parsed whole into a :class:`TableFile` or rejected with every problem as ``file:line: reason``.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.formats import _numeric, parse_symbol, read_text
from ..errors import InputRejected, Problem
from .pit import statutory_deadline

REPORT_FIELDS = ("eps_ttm", "net_profit", "roe_ytd", "np_margin", "gp_margin", "revenue", "total_share",
                 "float_share", "yoy_equity", "yoy_asset", "yoy_net_profit", "yoy_eps", "yoy_parent_net_profit")
REPORTS, CHANGES, SNAPSHOT = "reports", "index changes", "index snapshot"
BALANCE, EXPRESS, FORECAST = "balance sheets", "express reports", "forecasts"
BALANCE_FIELDS = ("total_equity", "total_share", "current_ratio", "quick_ratio", "cash_ratio", "yoy_liability",
                  "liability_to_asset", "asset_to_equity")
EXPRESS_FIELDS = ("total_asset", "net_asset", "eps_chg_pct", "roe_wa", "eps_diluted", "yoy_revenue", "yoy_op_profit")
FORECAST_FIELDS = ("chg_pct_up", "chg_pct_dwn")

# Baostock column (lower-cased) -> our field. Baostock gives ratios and growth as decimals already.
BAOSTOCK_PROFIT = {"roeavg": "roe_ytd", "npmargin": "np_margin", "gpmargin": "gp_margin", "netprofit": "net_profit",
                   "epsttm": "eps_ttm", "mbrevenue": "revenue", "totalshare": "total_share", "liqashare": "float_share"}
BAOSTOCK_GROWTH = {"yoyequity": "yoy_equity", "yoyasset": "yoy_asset", "yoyni": "yoy_net_profit",
                   "yoyepsbasic": "yoy_eps", "yoypni": "yoy_parent_net_profit"}
# query_balance_data: solvency ratios (decimals). None of them is a level, so no book value follows from
# them (assetToEquity = assets / equity needs the asset level, which no Baostock table gives); the plain
# ``totalEquity`` column (CNY, attributable to the parent) is what PB uses.
BAOSTOCK_BALANCE = {"currentratio": "current_ratio", "quickratio": "quick_ratio", "cashratio": "cash_ratio",
                    "yoyliability": "yoy_liability", "liabilitytoasset": "liability_to_asset",
                    "assettoequity": "asset_to_equity"}
EQUITY_LAYOUT = {"totalequity": "total_equity", "totalshare": "total_share"}
# query_performance_express_report / query_forecast_report column → (our field, scale). Units as Baostock's
# documentation example shows them (https://www.baostock.com/mainContent?file=pythonAPI.md, sh.600000):
# assets in CNY, EPS change / revenue and operating-profit growth as decimals (0.115412), ROEWa in percent
# (16.35) and the forecast's net-profit change bounds in percent (44.33): both scaled to decimals here.
BAOSTOCK_EXPRESS = {"performanceexpresstotalasset": ("total_asset", 1.0),
                    "performanceexpressnetasset": ("net_asset", 1.0),
                    "performanceexpressepschgpct": ("eps_chg_pct", 1.0),
                    "performanceexpressroewa": ("roe_wa", 0.01),
                    "performanceexpressepsdiluted": ("eps_diluted", 1.0),
                    "performanceexpressgryoy": ("yoy_revenue", 1.0),
                    "performanceexpressopyoy": ("yoy_op_profit", 1.0)}
BAOSTOCK_FORECAST = {"profitforcastchgpctup": ("chg_pct_up", 0.01), "profitforcastchgpctdwn": ("chg_pct_dwn", 0.01)}

# xtquant field names from xtquant's own manual, xtquant/doc/xtdata.md, "财务数据字段列表" (as vendored in
# github.com/yijixiuxin/chanlun-pro src/xtquant/doc/xtdata.md), and the QMT built-in Python manual
# (PERSHAREINDEX / ASHAREINCOME / CAPITALSTRUCTURE). Our field -> candidate (column, scale), first present wins.
# Ratios are taken as percent (as the XT terminal shows them) and scaled to Baostock's decimals: the
# manuals name the fields but do not state units, so check one known value after a first import.
# ``s_fa_eps_basic`` is year-to-date basic EPS; ``eps_ttm`` is derived from it (see :func:`eps_ttm_from_ytd`).
# PershareIndex's ``net_profit`` is 净利率 (a margin), unlike Income's amounts.
PERCENT = 0.01
XT_TABLES: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    "PershareIndex": {
        "eps_ytd": (("s_fa_eps_basic", 1.0),),
        "roe_ytd": (("equity_roe", PERCENT), ("du_return_on_equity", PERCENT)),  # 加权 ROE ≈ Baostock roeAvg
        "gp_margin": (("sales_gross_profit", PERCENT), ("gross_profit", PERCENT)),
        "np_margin": (("net_profit", PERCENT),),
        "yoy_net_profit": (("du_profit_rate", PERCENT),),
        "yoy_parent_net_profit": (("inc_net_profit_rate", PERCENT),),
    },
    "Income": {
        "eps_ytd": (("s_fa_eps_basic", 1.0),),
        "revenue": (("revenue", 1.0),),  # 营业总收入
        "net_profit": (("net_profit_incl_min_int_inc", 1.0),),  # 净利润 (YTD, CNY)
    },
    # m_timetag is the change date here; each quarter keeps its last change (see _capital_by_quarter).
    "Capital": {"total_share": (("total_capital", 1.0),), "float_share": (("circulating_capital", 1.0),)},
}
XT_MARKERS = (("Capital", {"total_capital"}), ("PershareIndex", {"s_fa_bps", "equity_roe", "du_return_on_equity"}),
              ("Income", {"net_profit_incl_min_int_inc", "revenue_inc"}))
INDEX_NAMES = (("000300.SSE", "CSI 300", ("hs300", "沪深300", "csi300")),
               ("000905.SSE", "CSI 500", ("zz500", "中证500", "csi500")))
QUARTER_END_DAYS = (331, 630, 930, 1231)  # month * 100 + day
_XT_CODE = re.compile(r"([0-9]{6})\.(SH|SZ|BJ)", re.IGNORECASE)


@dataclass
class TableFile:
    """One validated fundamentals / membership file, ready to store."""

    source: str
    kind: str  # REPORTS | BALANCE | EXPRESS | FORECAST | CHANGES | SNAPSHOT
    label: str  # what the file is, e.g. "baostock profit", "xt Income", "CSI 300 changes"
    frame: pd.DataFrame  # reports: symbol, exchange, period_end, announced, fields; else day, symbol, exchange(, change)
    fields: tuple[str, ...] = ()  # the report fields this file provides; stored others are kept
    origin: str = ""  # baostock | xt
    index: str | None = None  # the index vt_symbol of membership files


def family(columns: list[str]) -> str | None:
    """Which family of file a (lower-cased) header announces, or None (then it may be a bar file)."""
    cols = set(columns)
    if {"chang_date", "code", "in_out"} <= cols:
        return CHANGES
    if {"updatedate", "code"} <= cols:
        return SNAPSHOT
    if {"code", "performanceexppubdate", "performanceexpstatdate"} <= cols:
        return EXPRESS
    if {"code", "profitforcastexppubdate", "profitforcastexpstatdate"} <= cols:
        return FORECAST
    if {"code", "pubdate", "statdate"} <= cols:
        return "baostock"
    if "m_timetag" in cols:
        return "xt"
    return None


def _columns(line: str) -> list[str]:
    return [c.strip().strip('"').lower() for c in line.split(",")]


def sniff(path: Path) -> str | None:
    """The family of ``path`` from its first non-empty line."""
    return family(_columns(sniff_header(path)))


def sniff_header(path: Path) -> str:
    """The first non-empty line of ``path`` ("" when unreadable; gzip-aware, reads 64 KiB at most)."""
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with (gzip.open(path) if gz else open(path, "rb")) as fh:
            head = fh.read(65536).decode("utf-8-sig", errors="replace")
    except (OSError, EOFError):
        return ""
    return next((line for line in head.splitlines() if line.strip()), "")


def to_symbol(text: str) -> tuple[str, str]:
    """Any code spelling of these files → (code, exchange): ``sh.600000``, ``600000.SH``, ``527`` (= 000527)."""
    text = text.strip()
    match = _XT_CODE.fullmatch(text)
    if match:
        text = f"{match.group(2).lower()}.{match.group(1)}"
    elif text.isdigit() and len(text) < 6:
        text = text.zfill(6)
    return parse_symbol(text)


def index_of(path: Path) -> tuple[str, str]:
    """The index a membership file is about, told by its file name: (vt_symbol, name)."""
    file_name = path.name.lower()
    for vt_symbol, name, keys in INDEX_NAMES:
        if any(key in file_name for key in keys):
            return vt_symbol, name
    raise InputRejected(Problem(str(path), None, "cannot tell the index from the file name: name it with hs300 / "
                                                 "沪深300 (CSI 300, 000300.SSE) or zz500 / 中证500 (CSI 500, 000905.SSE)"))


@dataclass
class _Raw:
    source: str
    frame: pd.DataFrame  # every cell a stripped string, columns lower-cased
    names: dict[str, str]  # lower-cased column -> as written in the file
    lines: np.ndarray  # 1-based file line of each row
    header_line: int
    problems: list[Problem]

    def flag(self, mask, reason) -> None:
        for i in np.flatnonzero(np.asarray(mask)):
            self.problems.append(Problem(self.source, int(self.lines[i]), reason(i) if callable(reason) else reason))

    def symbols(self, column: str) -> tuple[pd.Series, pd.Series]:
        codes = self.frame[column]
        mapped: dict[str, tuple[str, str] | None] = {}
        for code in codes.unique():
            try:
                mapped[code] = to_symbol(code) if code else None
            except InputRejected:
                mapped[code] = None
        pairs = [mapped[c] for c in codes]
        self.flag([p is None for p in pairs], lambda i: f"unknown code format {codes.iloc[i]!r}" if codes.iloc[i]
                  else f"missing value in column {self.names[column]}")
        return (pd.Series([p[0] if p else None for p in pairs], dtype=object),
                pd.Series([p[1] if p else None for p in pairs], dtype=object))

    def dates(self, column: str, fmt: str, required: bool = True) -> pd.Series:
        text = self.frame[column]
        if fmt == "%Y%m%d":
            text = text.str.replace(r"\.0+$", "", regex=True)  # 20230331.0 when pandas wrote floats
        values = pd.to_datetime(text, format=fmt, errors="coerce")
        # Year 0 or 9999 parse but do not fit nanoseconds: they are typos, reported as unparseable.
        values = values.where((values >= "1900-01-01") & (values <= "2200-12-31")).astype("datetime64[ns]")
        if fmt == "%Y%m%d":  # strptime would read 2022123 as 2022-12-03
            values = values.where(text.str.fullmatch(r"[0-9]{8}").fillna(False).astype(bool))
        blank = (text == "").to_numpy()
        self.flag(values.isna().to_numpy() & (~blank | required), lambda i: (
            f"missing value in column {self.names[column]}" if blank[i]
            else f"unparseable date {text.iloc[i]!r} in column {self.names[column]} (expected {fmt})"))
        return values

    def numbers(self, column: str) -> pd.Series:
        """Floats; empty cells are unknown (NaN), other non-numbers are problems."""
        return _numeric(self.frame, column, self.names[column], self.lines, self.source, self.problems, required=False)


def _read(path: Path) -> _Raw:
    source = str(path)
    lines = read_text(path).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputRejected(Problem(source, None, "the file is empty"))
    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines[first:])), dtype=str, keep_default_na=False,
                            skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        extra = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if extra:  # the C parser counts lines from the header
            raise InputRejected(Problem(source, int(extra[2]) + first, f"{extra[3]} fields where the header has "
                                                                       f"{extra[1]}")) from None
        raise InputRejected(Problem(source, None, f"not a CSV table: {exc}")) from None
    if frame.empty:
        raise InputRejected(Problem(source, None, "no data rows"))
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the first column as an index: rows too long
        width = len(next(csv.reader([lines[first]])))
        longer = next(k for k, line in enumerate(lines[first + 1:], first + 2) if len(next(csv.reader([line]), [])) > width)
        raise InputRejected(Problem(source, longer, f"more fields than the header's {width}"))
    names = {str(c).strip().lower(): str(c).strip() for c in frame.columns}
    frame.columns = list(names)
    frame = frame.fillna("").apply(lambda col: col.str.strip())  # short rows: empty cells
    return _Raw(source, frame, names, np.arange(len(frame)) + first + 2, first + 1, [])


def parse_table(path: Path) -> TableFile:
    """Read and validate one fundamentals / membership file; raise :class:`InputRejected` listing every problem."""
    raw = _read(path)
    kind = family(list(raw.frame.columns))
    if kind is None:
        raise InputRejected(Problem(raw.source, raw.header_line, "not a fundamentals or index-membership file"))
    table = {"baostock": _baostock, "xt": _xt, CHANGES: _changes, SNAPSHOT: _snapshot, EXPRESS: _express,
             FORECAST: _forecast}[kind](path, raw)
    if raw.problems:
        raise InputRejected(sorted(raw.problems, key=lambda p: p.line or 0))
    return table


def _report_frame(raw: _Raw, code: str, period: str, announced: str, fmt: str) -> pd.DataFrame:
    symbol, exchange = raw.symbols(code)
    return pd.DataFrame({"line": raw.lines, "symbol": symbol, "exchange": exchange,
                         "period_end": raw.dates(period, fmt), "announced": raw.dates(announced, fmt, required=False)})


def _check_reports(raw: _Raw, frame: pd.DataFrame, key: list[str]) -> None:
    period, announced = frame["period_end"], frame["announced"]
    off = period.notna() & ~(period.dt.month * 100 + period.dt.day).isin(QUARTER_END_DAYS)
    raw.flag(off, lambda i: f"period end {period.iloc[i].date()} is not a quarter end (03-31, 06-30, 09-30, 12-31)")
    raw.flag(announced < period, lambda i: f"announced {announced.iloc[i].date()} before its period end "
                                           f"{period.iloc[i].date()}")
    _flag_duplicates(raw, frame, key, "report")


def _flag_duplicates(raw: _Raw, frame: pd.DataFrame, key: list[str], what: str) -> None:
    usable = frame.dropna(subset=[k for k in key if k != "announced"])
    first = usable.groupby(key, dropna=False, sort=False)["line"].transform("first")
    for row in usable[usable["line"] != first].itertuples():
        detail = " ".join(str(getattr(row, k).date()) if isinstance(getattr(row, k), pd.Timestamp) else str(getattr(row, k))
                          for k in key if k not in ("symbol", "exchange"))
        raw.problems.append(Problem(raw.source, int(row.line), f"duplicate {what} for {row.symbol}.{row.exchange} "
                                                              f"{detail} (first on line {first[row.Index]})"))


def _baostock(path: Path, raw: _Raw) -> TableFile:
    mapping = {c: f for c, f in {**BAOSTOCK_PROFIT, **BAOSTOCK_GROWTH}.items() if c in raw.frame.columns}
    balance = {c: f for c, f in {**BAOSTOCK_BALANCE, **EQUITY_LAYOUT}.items() if c in raw.frame.columns}
    if balance and (set(balance) - {"totalshare"} or not mapping):
        if mapping.keys() - {"totalshare"}:
            raise InputRejected(Problem(raw.source, raw.header_line, "profit/growth and balance-sheet columns in one "
                                                                     "file: import them as separate files"))
        return _balance(raw, balance)
    if not mapping:
        raise InputRejected(Problem(raw.source, raw.header_line, "a Baostock table without profit, growth or balance "
                                                                 "columns: query_profit_data / query_growth_data / "
                                                                 "query_balance_data (or totalEquity) are imported"))
    tables = [name for name, cols in (("profit", BAOSTOCK_PROFIT), ("growth", BAOSTOCK_GROWTH)) if set(cols) & set(mapping)]
    frame = _report_frame(raw, "code", "statdate", "pubdate", "%Y-%m-%d")
    for column, name in mapping.items():
        frame[name] = raw.numbers(column)
    _check_reports(raw, frame, ["symbol", "exchange", "period_end"])
    return TableFile(raw.source, REPORTS, "baostock " + "+".join(tables), frame, tuple(mapping.values()), "baostock")


def _balance(raw: _Raw, mapping: dict[str, str]) -> TableFile:
    frame = _report_frame(raw, "code", "statdate", "pubdate", "%Y-%m-%d")
    for column, name in mapping.items():
        frame[name] = raw.numbers(column)
    if "total_share" in frame:
        raw.flag(~(frame["total_share"] > 0) & frame["total_share"].notna(),
                 lambda i: f"totalShare {frame['total_share'].iloc[i]:g} is not a positive share count")
    _check_reports(raw, frame, ["symbol", "exchange", "period_end"])
    label = "baostock balance" if set(mapping.values()) - set(EQUITY_LAYOUT.values()) else "equity"
    return TableFile(raw.source, BALANCE, label, frame, tuple(mapping.values()), "baostock")


def _dated_report(raw: _Raw, prefix: str, mapping: dict[str, tuple[str, float]], kind: str, label: str,
                  extra: dict[str, str]) -> TableFile:
    """Express reports and forecasts: a period end, an announcement (required: these have no deadline)."""
    frame = _report_frame(raw, "code", f"{prefix}statdate", f"{prefix}pubdate", "%Y-%m-%d")
    raw.flag(frame["announced"].isna() & (raw.frame[f"{prefix}pubdate"] == "").to_numpy(),
             f"missing value in column {raw.names[f'{prefix}pubdate']}")
    for column, name in extra.items():
        frame[name] = raw.frame[column].to_numpy() if column in raw.frame else ""
    fields = []
    for column, (name, scale) in mapping.items():
        if column in raw.frame.columns:
            frame[name] = raw.numbers(column) * scale
            fields.append(name)
    _check_reports(raw, frame, ["symbol", "exchange", "period_end", "announced"])
    return TableFile(raw.source, kind, label, frame, tuple(fields), "baostock")


def _express(path: Path, raw: _Raw) -> TableFile:
    table = _dated_report(raw, "performanceexp", BAOSTOCK_EXPRESS, EXPRESS, "baostock express", {})
    if "performanceexpupdatedate" in raw.frame:
        table.frame["updated"] = raw.dates("performanceexpupdatedate", "%Y-%m-%d", required=False)
    return table


def _forecast(path: Path, raw: _Raw) -> TableFile:
    return _dated_report(raw, "profitforcastexp", BAOSTOCK_FORECAST, FORECAST, "baostock forecast",
                         {"profitforcasttype": "type", "profitforcastabstract": "abstract"})


def _xt(path: Path, raw: _Raw) -> TableFile:
    cols = set(raw.frame.columns)
    table = next((name for name, markers in XT_MARKERS if markers & cols), None)
    if table is None:
        raise InputRejected(Problem(raw.source, raw.header_line, "unsupported xtquant table: export PershareIndex, "
                                                                 "Income or Capital"))
    code = next((c for c in ("stock_code", "code") if c in cols), None)
    if code is None:
        match = _XT_CODE.search(path.name)
        if match is None:
            raise InputRejected(Problem(raw.source, None, "no stock code: add a stock_code column or name the file "
                                                          "after its code, e.g. 600000.SH_Income.csv"))
        raw.frame["stock_code"], raw.names["stock_code"], code = match.group(0), "stock_code", "stock_code"
    frame = _report_frame(raw, code, "m_timetag", "m_anntime", "%Y%m%d")
    for name, candidates in XT_TABLES[table].items():
        column, scale = next(((c, s) for c, s in candidates if c in cols), (None, 1.0))
        if column is not None:
            frame[name] = raw.numbers(column) * scale
    if table == "Capital":
        _flag_duplicates(raw, frame, ["symbol", "exchange", "period_end", "announced"], "share change")
        frame = _capital_by_quarter(frame) if not raw.problems else frame
    else:
        _check_reports(raw, frame, ["symbol", "exchange", "period_end", "announced"])
        if "eps_ytd" in frame and not raw.problems:
            frame["eps_ttm"] = eps_ttm_from_ytd(frame)
    frame = frame.drop(columns=["eps_ytd"], errors="ignore")
    fields = tuple(f for f in REPORT_FIELDS if f in frame.columns)
    return TableFile(raw.source, REPORTS, f"xt {table}", frame, fields, "xt")


def _capital_by_quarter(frame: pd.DataFrame) -> pd.DataFrame:
    """Share changes → the share count at each quarter end that has one: the quarter's last change.

    A change counts from its announcement but never before it takes effect (announced ≥ change date).
    """
    frame = frame.assign(announced=frame[["announced", "period_end"]].max(axis=1))
    frame = frame.sort_values(["symbol", "exchange", "period_end", "announced", "line"])
    frame["period_end"] = (frame["period_end"] + pd.offsets.QuarterEnd(0)).astype("datetime64[ns]")
    return frame.groupby(["symbol", "exchange", "period_end"], sort=False).tail(1).sort_values("line")


def eps_ttm_from_ytd(frame: pd.DataFrame) -> pd.Series:
    """Trailing-twelve-month EPS from year-to-date EPS: YTD(Q) + annual(Y-1) − YTD(Q of Y-1).

    Each earlier report is taken in its latest version known when this one was announced (the statutory
    deadline standing in for an unknown date), so a restatement never leaks backwards. NaN when the
    earlier reports are not in the file. Per-share bases that changed in between (bonus shares) are not
    re-based: the same approximation Baostock's ``epsTTM`` makes.
    """
    known = frame["announced"].where(frame["announced"].notna(), frame["period_end"].map(
        lambda p: pd.Timestamp(statutory_deadline(p.date()))))
    rows = list(zip(frame["symbol"], frame["exchange"], frame["period_end"], known, frame["eps_ytd"]))
    versions: dict[tuple, list[tuple[pd.Timestamp, float]]] = {}
    for symbol, exchange, period, when, value in sorted(rows, key=lambda r: r[3]):
        versions.setdefault((symbol, exchange, period), []).append((when, value))

    def latest(key: tuple, when: pd.Timestamp) -> float:
        found = [value for at, value in versions.get(key, ()) if at <= when]
        return found[-1] if found else math.nan

    def ttm(symbol: str, exchange: str, period: pd.Timestamp, when: pd.Timestamp, value: float) -> float:
        if period.month == 12:
            return value
        annual = latest((symbol, exchange, pd.Timestamp(period.year - 1, 12, 31)), when)
        return value + annual - latest((symbol, exchange, period - pd.DateOffset(years=1)), when)

    return pd.Series([ttm(*row) for row in rows], index=frame.index, dtype=float)


def _membership(raw: _Raw, day_column: str, fmt: str) -> pd.DataFrame:
    symbol, exchange = raw.symbols("code")
    return pd.DataFrame({"line": raw.lines, "day": raw.dates(day_column, fmt), "symbol": symbol, "exchange": exchange})


def _changes(path: Path, raw: _Raw) -> TableFile:
    index, name = index_of(path)
    raw.frame["chang_date"] = raw.frame["chang_date"].str.replace("-", "/")  # YYYY/M/D, ISO accepted too
    frame = _membership(raw, "chang_date", "%Y/%m/%d")
    move = raw.frame["in_out"].str.lower().map({"takein": 1, "dropout": -1})
    raw.flag(move.isna(), lambda i: f"in_out {raw.frame['in_out'].iloc[i]!r} is neither takein nor dropout")
    frame["change"] = move.fillna(0).astype(int).to_numpy()
    _flag_duplicates(raw, frame, ["symbol", "exchange", "day"], "change")
    return TableFile(raw.source, CHANGES, f"{name} changes", frame, index=index)


def _snapshot(path: Path, raw: _Raw) -> TableFile:
    index, name = index_of(path)
    frame = _membership(raw, "updatedate", "%Y-%m-%d")
    _flag_duplicates(raw, frame, ["symbol", "exchange", "day"], "member")
    return TableFile(raw.source, SNAPSHOT, f"{name} members", frame, index=index)
