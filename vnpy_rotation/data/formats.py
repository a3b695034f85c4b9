"""Bar file formats: detection, parsing to one typed frame, symbol inference (pure, no vnpy).

Supported layouts (real samples: ``../shared/data/real/PROVENANCE.md`` and ``tests/data/formats``;
units and conversions: ``docs/data/formats.md``):

- ``akshare``: AKShare/Eastmoney ``fund_etf_hist_em`` / ``stock_zh_a_hist`` exports, Chinese
  (``日期,开盘,收盘,最高,最低,成交量,成交额,...``) or English (``date,open,close,high,low,volume,amount``)
  headers; note the open-close-high-low order; volume in lots of 100.
- ``tdx``: 通达信 exports without header, ``YYYY/MM/DD,open,high,low,close,volume,amount``; volume in shares.
- ``baostock``: ``query_history_k_data_plus`` CSVs (gzip too) with ``preclose``, ``tradestatus``, ``isST``;
  volume in shares; ``adjustflag`` 3 = unadjusted, 2 = forward-adjusted.
- ``tushare``: ``pro.daily`` CSVs ``ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount``;
  ``YYYYMMDD`` dates, newest day first (sorted here), ``vol`` in lots of 100, ``amount`` in thousands of CNY.
- ``choice`` / ``wind``: Eastmoney Choice and Wind terminal exports (CSV or .xlsx) with Chinese headers whose
  units are read from the header (``成交量(股)``, ``成交额(百万)`` …); thousands separators, ``--``
  placeholders, title lines and a ``数据来源`` footer are understood.
- ``csv``: this project's plain layout ``date,open,high,low,close,volume,turnover`` (ISO dates, volume
  in shares, turnover in CNY); indices may use ``date,close``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputRejected, Problem
from .readers import read_text

__all__ = ["FORMATS", "Layout", "ParsedFile", "detect", "parse", "parse_symbol", "read_text", "infer_exchange",
           "symbol_from_name", "symbol_from_content"]

FORMATS = ("akshare", "tdx", "baostock", "tushare", "choice", "wind", "csv")
PRICE_FIELDS = ("open", "high", "low", "close")
HEADER_SEARCH_LINES = 10  # terminal exports may put a title or parameter lines above the header


@dataclass(frozen=True)
class Layout:
    """How one format names its columns and counts volume and turnover."""

    name: str
    columns: dict[str, str]  # our field -> the file's column
    volume_multiplier: float = 1.0  # file unit -> shares
    date_format: str = "%Y-%m-%d"
    optional: frozenset[str] = frozenset()
    turnover_multiplier: float = 1.0  # file unit -> CNY
    more_date_formats: tuple[str, ...] = ()
    code_column: str | None = None  # a column naming the security
    newest_first: bool = False  # the source writes the newest day first: reversed, not refused
    dashes_mean_no_trade: bool = False  # a row whose four prices are all "--" is a day without trade
    infer_volume_unit: bool = False  # the header does not say shares or lots: tell it from turnover / volume

    @property
    def date_formats(self) -> tuple[str, ...]:
        return (self.date_format, *self.more_date_formats)


AKSHARE_CN = Layout(
    "akshare",
    {"date": "日期", "open": "开盘", "close": "收盘", "high": "最高", "low": "最低", "volume": "成交量", "turnover": "成交额"},
    volume_multiplier=100.0,
    optional=frozenset({"turnover"}),
)
AKSHARE_EN = Layout(
    "akshare",
    {"date": "date", "open": "open", "close": "close", "high": "high", "low": "low", "volume": "volume", "turnover": "amount"},
    volume_multiplier=100.0,
    optional=frozenset({"turnover"}),
)
TDX_COLUMNS = ("date", "open", "high", "low", "close", "volume", "turnover")
TDX = Layout("tdx", {name: str(i) for i, name in enumerate(TDX_COLUMNS)}, date_format="%Y/%m/%d")
BAOSTOCK = Layout(
    "baostock",
    {
        "date": "date", "open": "open", "high": "high", "low": "low", "close": "close", "preclose": "preclose",
        "volume": "volume", "turnover": "amount", "tradestatus": "tradestatus", "is_st": "isst",  # headers are lower-cased on read
    },
    optional=frozenset({"preclose", "tradestatus", "is_st", "turnover"}),
    code_column="code",
)
# Tushare pro.daily (https://tushare.pro/document/2?doc_id=27): vol 成交量（手）, amount 成交额（千元）,
# pre_close 昨收价（除权价）: the exchange's ex-rights reference price, like Baostock's preclose.
TUSHARE = Layout(
    "tushare",
    {"date": "trade_date", "open": "open", "high": "high", "low": "low", "close": "close", "preclose": "pre_close",
     "volume": "vol", "turnover": "amount"},
    volume_multiplier=100.0,
    turnover_multiplier=1000.0,
    date_format="%Y%m%d",
    more_date_formats=("%Y-%m-%d",),
    optional=frozenset({"preclose", "turnover"}),
    code_column="ts_code",
    newest_first=True,
)
PLAIN = Layout(
    "csv",
    {"date": "date", "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume", "turnover": "turnover"},
)
CLOSE_ONLY = Layout("csv", {"date": "date", "close": "close"})

# Chinese terminal headers (Choice, Wind): a name and an optional unit in brackets, e.g. 成交额(百万).
TERMINAL_NAMES = {
    "date": ("交易时间", "日期", "交易日期", "时间"),
    "code": ("证券代码", "代码"),
    "open": ("开盘价", "开盘"),
    "high": ("最高价", "最高"),
    "low": ("最低价", "最低"),
    "close": ("收盘价", "收盘"),
    "volume": ("成交量",),
    "turnover": ("成交额", "成交金额"),
}
VOLUME_UNITS = {"股": 1.0, "份": 1.0, "手": 100.0, "万股": 1e4, "万份": 1e4}
TURNOVER_UNITS = {"元": 1.0, "千元": 1e3, "万元": 1e4, "百万": 1e6, "百万元": 1e6, "亿元": 1e8, "亿": 1e8}
PRICE_UNITS = ("", "元")
_CELL = re.compile(r"^(?P<name>[^()]*?)\s*(?:\((?P<unit>[^)]*)\))?\s*$")
_FOOTER = re.compile(r"^\s*\"?(数据来源|来源|Source)\s*[:：]", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")


@dataclass
class ParsedFile:
    """A bar file read into one typed frame, before semantic validation."""

    source: str
    layout: Layout
    frame: pd.DataFrame  # line, date, open, high, low, close, volume, turnover, preclose, suspended, is_st
    code: str | None = None
    exchange: str | None = None
    adjustment: str = "none"  # none | qfq
    close_only: bool = False
    problems: list[Problem] = field(default_factory=list)


_TDX_DATE = re.compile(r"^\s*\d{4}/\d{1,2}/\d{1,2}\s*,")


def _cells(line: str) -> list[str]:
    """One CSV line split into stripped cells (quotes honoured: "1,234.00" is one cell)."""
    return [c.strip() for c in next(csv.reader([line]), [])]


def _unit_cell(cell: str) -> tuple[str, str]:
    """``成交额（百万）`` → (``成交额``, ``百万``); full-width brackets accepted."""
    cell = cell.replace("（", "(").replace("）", ")").replace("\ufeff", "").strip()
    match = _CELL.match(cell)
    return (match["name"].strip(), (match["unit"] or "").strip()) if match else (cell, "")


def _terminal_fields(header: list[str]) -> dict[str, tuple[str, str]]:
    """Our field -> (the header cell, its unit) for a Chinese terminal header (first match wins)."""
    found: dict[str, tuple[str, str]] = {}
    for cell in header:
        name, unit = _unit_cell(cell)
        for key, names in TERMINAL_NAMES.items():
            if key not in found and name in names:
                found[key] = (cell, unit)
    return found


def _detect_cells(cols: list[str]) -> str | None:
    lower = [c.lower() for c in cols]
    names = {_unit_cell(c)[0] for c in cols}
    if "ts_code" in lower and "trade_date" in lower:
        return "tushare"
    if "tradestatus" in lower or ("preclose" in lower and "code" in lower) or "pctchg" in lower:
        return "baostock"
    if names & {"开盘价", "收盘价"}:  # terminals write 开盘价; AKShare writes 开盘
        if names & {"交易时间", "证券代码"}:
            return "choice"
        if names & {"日期", "交易日期", "代码"}:
            return "wind"
    if "日期" in lower:
        return "akshare"
    if lower[:3] == ["date", "open", "close"] and "high" in lower:
        return "akshare"
    if lower[:5] == ["date", "open", "high", "low", "close"] or lower == ["date", "close"]:
        return "csv"
    return None


def detect(header_line: str) -> str | None:
    """Which format a file's header line (or first TDX data line) announces, or None."""
    if _TDX_DATE.match(header_line):
        return "tdx"
    return _detect_cells(_cells(header_line))


def _find_header(lines: list[str], fmt: str) -> tuple[int | None, str | None]:
    """(index of the header or first TDX data line, its format) among the first non-blank lines.

    With an explicit ``fmt`` only a line of that format counts (Choice and Wind share one header grammar).
    """
    wanted = {"choice", "wind"} if fmt in ("choice", "wind") else {fmt}
    seen = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        found = detect(line)
        following = next((other for other in lines[i + 1:] if other.strip()), "")
        if found and found != "tdx" and _TDX_DATE.match(following):
            found = "tdx"  # TDX's own column-name line (日期,开盘,最高,…) above its data lines
        if found and (fmt == "auto" or found in wanted):
            return i, found
        seen += 1
        if seen >= HEADER_SEARCH_LINES:
            break
    return None, None


def _hint(lines: list[str], fmt: str) -> str:
    _, found = _find_header(lines, "auto")
    return f" (it looks like {found}: use --format {found} or auto)" if found and found != fmt else ""


def _numeric(raw: pd.DataFrame, column: str, name: str, lines: np.ndarray, source: str, problems: list[Problem],
             required: bool = True, skip: np.ndarray | None = None) -> pd.Series:
    """Floats of one text column; ``1,234.50`` (quoted thousands separators) reads as 1234.5.

    Blank, ``--``, ``nan`` cells are missing (a problem when ``required``); other non-numbers and
    infinities are problems. Rows in ``skip`` are not checked.
    """
    text = raw[column].astype(str).str.strip()
    grouped = text.str.match(_THOUSANDS)
    text = text.where(~grouped, text.str.replace(",", "", regex=False))
    values = pd.to_numeric(text, errors="coerce")
    blank = text.eq("") | text.str.lower().isin(["nan", "none", "null", "--", "-"])
    skipped = np.zeros(len(text), dtype=bool) if skip is None else skip
    if required:
        for i in np.flatnonzero(blank.to_numpy() & ~skipped):
            problems.append(Problem(source, int(lines[i]), f"missing value in column {name}"))
    bad = (values.isna() & ~blank).to_numpy() & ~skipped
    for i in np.flatnonzero(bad):
        problems.append(Problem(source, int(lines[i]), f"{raw[column].iloc[i]!r} is not a number in column {name}"))
    infinite = np.isinf(values.to_numpy(dtype=float)) & ~skipped
    for i in np.flatnonzero(infinite):
        problems.append(Problem(source, int(lines[i]), f"{raw[column].iloc[i]!r} is not a finite number in column {name}"))
    return values.astype(float).where(~np.isinf(values.astype(float)))


FIRST_DAY = pd.Timestamp("1990-12-19")  # the Shanghai Stock Exchange's first trading day
LAST_DAY = pd.Timestamp("2100-12-31")  # later "dates" are typos (9999-12-31 placeholders)


def _dates(text: pd.Series, formats: tuple[str, ...]) -> pd.Series:
    """Days in the first of ``formats`` that fits each cell; NaT where none does or the day is absurd."""
    text = text.str.strip()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in formats:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        sane = parsed.notna() & (parsed >= FIRST_DAY) & (parsed <= LAST_DAY) & out.isna()
        out[sane] = parsed[sane].astype("datetime64[ns]")
    return out


def _body_bounds(lines: list[str], start: int, fmt: str) -> int:
    """Index one past the last data line: trailing blank rows, empty-cell rows and a 数据来源 footer are not data."""
    end = len(lines)
    while end > start:
        line = lines[end - 1]
        if fmt == "tdx":
            if _TDX_DATE.match(line):
                break
        elif line.strip().strip(",").strip() and not _FOOTER.match(line):
            break
        end -= 1
    return end


def _table(lines: list[str], start: int, end: int, header: list[str] | None, width: int,
           source: str, problems: list[Problem]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows ``start:end`` split into cells (a row with the wrong number of cells is a problem, kept blank)."""
    rows: list[list[str]] = []
    for k in range(start, end):
        cells = _cells(lines[k])
        while len(cells) > width and cells[-1] == "":
            cells.pop()  # trailing separators
        if header is None and len(cells) > width:
            cells = cells[:width]  # TDX: later columns (e.g. 持仓量) are not ours
        if len(cells) != width:
            what = "the header has" if header is not None else "a TDX row has"
            problems.append(Problem(source, k + 1, f"{len(cells)} fields where {what} {width}"))
            cells = [""] * width
        rows.append(cells)
    columns = header if header is not None else [str(i) for i in range(width)]
    frame = pd.DataFrame(rows, columns=columns, dtype=str) if rows else pd.DataFrame(columns=columns, dtype=str)
    return frame, np.arange(start, end) + 1


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        candidate, n = name, 0
        while candidate in out:  # a, a, a -> a, a.1, a.2
            n += 1
            candidate = f"{name}.{n}"
        out.append(candidate)
    return out


def parse(path: Path, fmt: str = "auto", adjustment: str | None = None) -> ParsedFile:
    """Read ``path`` in format ``fmt`` (or detect it) into a :class:`ParsedFile`.

    Problems in individual rows are collected in ``problems``; a file whose format or columns
    cannot be understood raises :class:`InputRejected` at once, naming the layout it expected.
    """
    source = str(path)
    if fmt != "auto" and fmt not in FORMATS:
        raise InputRejected(Problem(source, None, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"))
    lines = read_text(path).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputRejected(Problem(source, None, "the file is empty"))
    start, detected = _find_header(lines, fmt)
    if fmt == "auto":
        if start is None:
            raise InputRejected(Problem(source, first + 1, f"unrecognised header {lines[first][:80]!r}; "
                                        f"use --format with one of {', '.join(FORMATS)}"))
        fmt = detected
    if fmt == "tdx":
        start = next((i for i, line in enumerate(lines) if _TDX_DATE.match(line)), None)
        if start is None:
            raise InputRejected(Problem(source, first + 1, "no 通达信 (tdx) data lines: expected "
                                        "YYYY/MM/DD,open,high,low,close,volume,amount" + _hint(lines, fmt)))
    elif start is None:
        start = first  # not this format's header: the layout check below says what it expected
    preamble = lines[:start]
    end = _body_bounds(lines, start + (0 if fmt == "tdx" else 1), fmt)
    footer = lines[end:]

    problems: list[Problem] = []
    if fmt == "tdx":
        layout = TDX
        # A damaged first data row must not pass for a title line and vanish.
        problems += [Problem(source, k + 1, f"unparseable TDX row {line[:40]!r} (expected YYYY/MM/DD,open,…)")
                     for k, line in enumerate(preamble) if line.strip()[:1].isdigit() and line.count(",") >= 5]
        raw, line_numbers = _table(lines, start, end, None, len(TDX_COLUMNS), source, problems)
    else:
        header = _unique([c.strip().replace("\ufeff", "") for c in _cells(lines[start])])
        layout = _layout_for(fmt, header, source, start + 1, lines)
        if layout.name in ("baostock", "tushare", "csv") or layout is AKSHARE_EN:
            header = _unique([c.lower() for c in header])
        if layout is AKSHARE_EN and "amount" not in header and "成交额" in header:
            header = ["amount" if c == "成交额" else c for c in header]  # chenkx612's mixed header
        raw, line_numbers = _table(lines, start + 1, end, header, len(header), source, problems)
        missing = [col for key, col in layout.columns.items() if col not in raw.columns and key not in layout.optional]
        if missing:
            raise InputRejected(Problem(source, start + 1, f"{layout.name} layout needs columns {missing}; "
                                        f"the header is {lines[start][:80]!r}" + _hint(lines, fmt)))
    if raw.empty:
        raise InputRejected(Problem(source, start + 1, f"no data rows after the {layout.name} "
                                    f"{'header' if fmt != 'tdx' else 'title'}"))

    out = pd.DataFrame({"line": line_numbers})
    date_col = layout.columns["date"]
    dates = _dates(raw[date_col], layout.date_formats)
    for i in np.flatnonzero(dates.isna().to_numpy()):
        problems.append(Problem(source, int(line_numbers[i]),
                                f"unparseable date {raw[date_col].iloc[i]!r} (expected {layout.date_format}, "
                                f"{FIRST_DAY.date()} to {LAST_DAY.date()})"))
    out["date"] = dates.to_numpy()
    close_only = layout is CLOSE_ONLY
    no_trade = _no_trade_rows(raw, layout)
    for name in ("open", "high", "low", "close", "volume", "turnover", "preclose"):
        column = layout.columns.get(name)
        if column is None or column not in raw.columns:
            out[name] = np.nan
            continue
        # Baostock leaves volume empty on suspended rows (tradestatus 0): that is zero, not missing.
        required = name in PRICE_FIELDS or (name == "volume" and layout.columns.get("tradestatus") not in raw.columns)
        out[name] = _numeric(raw, column, name, line_numbers, source, problems, required=required, skip=no_trade)
    out.loc[no_trade, "volume"] = 0.0
    if "tradestatus" in layout.columns and layout.columns["tradestatus"] in raw.columns:
        halted = pd.to_numeric(raw[layout.columns["tradestatus"]], errors="coerce").to_numpy() == 0
        out.loc[halted & out["volume"].isna().to_numpy(), "volume"] = 0.0
        missing_volume = out["volume"].isna().to_numpy()
        for i in np.flatnonzero(missing_volume):
            problems.append(Problem(source, int(line_numbers[i]), "missing value in column volume"))
    if close_only:
        for name in ("open", "high", "low"):
            out[name] = out["close"]
        out["volume"] = 0.0
    if layout.infer_volume_unit:
        layout = _infer_volume_unit(layout, out, source, start + 1, problems)
    out["volume"] = out["volume"] * layout.volume_multiplier
    out["turnover"] = out["turnover"] * layout.turnover_multiplier

    status_col = layout.columns.get("tradestatus")
    traded = pd.to_numeric(raw[status_col], errors="coerce") if status_col in raw.columns else pd.Series(1.0, index=raw.index)
    out["suspended"] = (traded.to_numpy() == 0) | ((out["volume"].to_numpy() == 0) & (not close_only)) | no_trade
    st_col = layout.columns.get("is_st")
    out["is_st"] = (pd.to_numeric(raw[st_col], errors="coerce").fillna(0).to_numpy() == 1) if st_col in raw.columns else False
    if layout.newest_first:
        valid = out["date"].dropna()
        if len(valid) > 1 and valid.is_monotonic_decreasing:
            out = out.iloc[::-1].reset_index(drop=True)

    parsed = ParsedFile(source, layout, out, problems=problems, close_only=close_only)
    parsed.code, parsed.exchange = (symbol_from_content(raw, layout.code_column, source) or symbol_from_name(path)
                                    or (None, None))
    parsed.adjustment = adjustment or _adjustment_of(path, raw, [*preamble, lines[start], *footer])
    return parsed


def _layout_for(fmt: str, header: list[str], source: str, line: int, lines: list[str]) -> Layout:
    lower = [c.lower() for c in header]
    if fmt == "akshare":
        return AKSHARE_CN if "日期" in header else AKSHARE_EN
    if fmt == "baostock":
        return BAOSTOCK
    if fmt == "tushare":
        return TUSHARE
    if fmt in ("choice", "wind"):
        return _terminal_layout(fmt, header, source, line, lines)
    return CLOSE_ONLY if lower == ["date", "close"] else PLAIN


def _terminal_layout(fmt: str, header: list[str], source: str, line: int, lines: list[str]) -> Layout:
    """A Choice / Wind layout from the header's column names and units."""
    found = _terminal_fields(header)
    missing = [TERMINAL_NAMES[k][0] for k in ("date", "open", "high", "low", "close", "volume") if k not in found]
    if missing:
        raise InputRejected(Problem(source, line, f"{fmt} layout needs columns {missing} (any unit in brackets); "
                                    f"the header is {','.join(header)[:80]!r}" + _hint(lines, fmt)))
    for key in PRICE_FIELDS:
        cell, unit = found[key]
        if unit not in PRICE_UNITS and "复权" not in unit:
            raise InputRejected(Problem(source, line, f"column {cell}: prices must be in 元, not {unit}"))
    vol_cell, vol_unit = found["volume"]
    if vol_unit and vol_unit not in VOLUME_UNITS:
        raise InputRejected(Problem(source, line, f"column {vol_cell}: unknown volume unit {vol_unit!r}; "
                                                  f"expected one of {', '.join(VOLUME_UNITS)}"))
    turnover_multiplier = 1.0
    if "turnover" in found:
        t_cell, t_unit = found["turnover"]
        if t_unit and t_unit not in TURNOVER_UNITS:
            raise InputRejected(Problem(source, line, f"column {t_cell}: unknown turnover unit {t_unit!r}; "
                                                      f"expected one of {', '.join(TURNOVER_UNITS)}"))
        turnover_multiplier = TURNOVER_UNITS.get(t_unit, 1.0)  # no unit: 元, as both terminals default to
    columns = {key: cell for key, (cell, _) in found.items() if key != "code"}
    return Layout(fmt, columns, volume_multiplier=VOLUME_UNITS.get(vol_unit, 1.0),
                  turnover_multiplier=turnover_multiplier, date_format="%Y-%m-%d",
                  more_date_formats=("%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S"), optional=frozenset({"turnover"}),
                  code_column=found.get("code", (None,))[0], dashes_mean_no_trade=True,
                  infer_volume_unit=not vol_unit)


def _no_trade_rows(raw: pd.DataFrame, layout: Layout) -> np.ndarray:
    """Rows whose four prices are all ``--`` in a terminal export: no trade that day (suspended)."""
    if not layout.dashes_mean_no_trade or raw.empty:
        return np.zeros(len(raw), dtype=bool)
    dashes = np.ones(len(raw), dtype=bool)
    for key in PRICE_FIELDS:
        dashes &= raw[layout.columns[key]].str.strip().isin(["--", ""]).to_numpy()
    volume = raw[layout.columns["volume"]].str.strip()
    return dashes & volume.isin(["--", "", "0", "0.0", "0.00"]).to_numpy()


def _infer_volume_unit(layout: Layout, out: pd.DataFrame, source: str, line: int, problems: list[Problem]) -> Layout:
    """Shares or lots for a ``成交量`` column without a unit: turnover / volume must be near the price."""
    both = (out["volume"] > 0) & (out["turnover"] > 0) & (out["close"] > 0)
    if not both.any():
        problems.append(Problem(source, line, "成交量 has no unit and no 成交额 to tell shares from lots: "
                                              "name it in the header, e.g. 成交量(股) or 成交量(手)"))
        return layout
    ratio = float(np.median(out.loc[both, "turnover"] * layout.turnover_multiplier
                            / (out.loc[both, "volume"] * out.loc[both, "close"])))
    for _unit, multiplier in (("股", 1.0), ("手", 100.0)):
        if multiplier / 2 < ratio < multiplier * 2:
            return replace(layout, volume_multiplier=multiplier)
    problems.append(Problem(source, line, f"成交量 has no unit and 成交额/成交量 is {ratio:.3g} × the close "
                                          "(neither shares nor lots): name the units in the header"))
    return layout


def _adjustment_of(path: Path, raw: pd.DataFrame, marks: list[str]) -> str:
    """``qfq`` for Baostock adjustflag 2, a 前复权 marker in a title, header or footer line, or files whose
    name or folder says qfq / 前复权; else ``none``. Backward-adjusted (后复权) files are refused."""
    if "adjustflag" in raw.columns:
        flags = set(raw["adjustflag"].str.strip()) - {""}
        if flags == {"2"}:
            return "qfq"
        if flags and flags != {"3"}:
            raise InputRejected(Problem(str(path), None, f"adjustflag {sorted(flags)}: import unadjusted (3) or qfq (2) bars"))
        return "none"
    text = " ".join(marks)
    if "后复权" in text or "hfq" in path.name.lower():
        raise InputRejected(Problem(str(path), None, "backward-adjusted (后复权/hfq) prices cannot be imported; "
                                                     "export unadjusted (不复权) or forward-adjusted (前复权) bars"))
    if "前复权" in text:
        return "qfq"
    # Only the file's own name and folder count: a user's home called "qfq_fan" says nothing.
    name = f"{path.parent.name}/{path.name}".lower()
    return "qfq" if ("qfq" in name or "前复权" in name) else "none"


_PREFIXED = re.compile(r"^(sh|sz|bj)\.?([0-9]{6})$", re.IGNORECASE)
_SUFFIXED = re.compile(r"^([0-9]{6})\.(sh|sz|bj)$", re.IGNORECASE)  # Tushare / Wind / Choice: 510300.SH
_INDEX_FILE = re.compile(r"^h([0-9]{5})$", re.IGNORECASE)
_EXCHANGES = {"sh": "SSE", "sz": "SZSE", "bj": "BSE"}


def infer_exchange(code: str) -> str:
    """Exchange of a bare 6-digit code by its first digit (indices need a prefix or table entry)."""
    if code.startswith("H"):
        return "SSE"
    head = code[0]
    if head in "569":
        return "SSE"
    if head in "0123":
        return "SZSE"
    if head in "48":
        return "BSE"
    raise InputRejected(Problem(code, None, "cannot tell the exchange of this code; pass --symbol CODE.EXCHANGE"))


def parse_symbol(text: str) -> tuple[str, str]:
    """``510300.SSE`` / ``510300.SH`` / ``sh.510300`` / ``sh510300`` / ``510300`` / ``h00300`` → (code, exchange)."""
    text = text.strip()
    if "." in text and text.split(".")[1].upper() in ("SSE", "SZSE", "BSE"):
        code, exchange = text.split(".", 1)
        return code.upper(), exchange.upper()
    match = _PREFIXED.match(text)
    if match:
        return match.group(2), _EXCHANGES[match.group(1).lower()]
    match = _SUFFIXED.match(text)
    if match:
        return match.group(1), _EXCHANGES[match.group(2).lower()]
    match = _INDEX_FILE.match(text)
    if match:
        return "H" + match.group(1), "SSE"
    if re.fullmatch(r"[0-9]{6}", text):
        return text, infer_exchange(text)
    raise InputRejected(Problem(text, None, "not a symbol; write it as CODE.EXCHANGE, e.g. 510300.SSE"))


def symbol_from_name(path: Path) -> tuple[str, str] | None:
    parts = path.name.split(".")
    # Tushare/Wind-style names keep the exchange suffix (000300.SH.csv): it wins over the code's first digit.
    if len(parts) > 2 and _SUFFIXED.match(f"{parts[0]}.{parts[1]}"):
        return parse_symbol(f"{parts[0]}.{parts[1]}")
    stem = re.sub(r"^(raw_|SH#|SZ#|BJ#)", lambda m: m.group(1)[:2].lower() if "#" in m.group(1) else "", parts[0])
    try:
        return parse_symbol(stem)
    except InputRejected:
        return None


def symbol_from_content(raw: pd.DataFrame, column: str | None = "code", source: str = "") -> tuple[str, str] | None:
    """The one security a file's code column names; several codes in one file are refused."""
    if column is None or column not in raw.columns or raw.empty:
        return None
    codes = set(raw[column].str.strip()) - {""}
    if len(codes) > 1:
        sample = ", ".join(sorted(codes)[:3])
        raise InputRejected(Problem(source, None, f"column {column} names {len(codes)} securities ({sample} …): "
                                                  "import one security per file"))
    if not codes:
        return None
    code = codes.pop()
    if code.isdigit() and len(code) < 6:
        code = code.zfill(6)
    try:
        return parse_symbol(code)
    except InputRejected:
        return None
