"""Bar file formats: detection, parsing to one typed frame, symbol inference (pure, no vnpy).

Supported layouts (see ``../shared/data/real/PROVENANCE.md`` for the real files):

- ``akshare``: AKShare/Eastmoney ``fund_etf_hist_em`` / ``stock_zh_a_hist`` exports, Chinese
  (``日期,开盘,收盘,最高,最低,成交量,成交额,...``) or English (``date,open,close,high,low,volume,amount``)
  headers; note the open-close-high-low order; volume in lots of 100.
- ``tdx``: 通达信 exports without header, ``YYYY/MM/DD,open,high,low,close,volume,amount``; volume in shares.
- ``baostock``: ``query_history_k_data_plus`` CSVs (gzip too) with ``preclose``, ``tradestatus``, ``isST``;
  volume in shares; ``adjustflag`` 3 = unadjusted, 2 = forward-adjusted.
- ``csv``: this project's plain layout ``date,open,high,low,close,volume,turnover`` (ISO dates, volume
  in shares, turnover in CNY); indices may use ``date,close``.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputRejected, Problem

FORMATS = ("akshare", "tdx", "baostock", "csv")
PRICE_FIELDS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Layout:
    """How one format names its columns and counts volume."""

    name: str
    columns: dict[str, str]  # our field -> the file's column
    volume_multiplier: float = 1.0
    date_format: str = "%Y-%m-%d"
    optional: frozenset[str] = frozenset()


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
TDX = Layout(
    "tdx",
    {"date": "0", "open": "1", "high": "2", "low": "3", "close": "4", "volume": "5", "turnover": "6"},
    date_format="%Y/%m/%d",
)
BAOSTOCK = Layout(
    "baostock",
    {
        "date": "date", "open": "open", "high": "high", "low": "low", "close": "close", "preclose": "preclose",
        "volume": "volume", "turnover": "amount", "tradestatus": "tradestatus", "is_st": "isst",  # headers are lower-cased on read
    },
    optional=frozenset({"preclose", "tradestatus", "is_st", "turnover"}),
)
PLAIN = Layout(
    "csv",
    {"date": "date", "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume", "turnover": "turnover"},
)
CLOSE_ONLY = Layout("csv", {"date": "date", "close": "close"})


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


def read_text(path: Path) -> str:
    """File content as text: gzip by magic bytes; UTF-8 (with BOM) or GBK as TDX writes it."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputRejected(Problem(str(path), None, "not UTF-8 or GBK text"))


_TDX_DATE = re.compile(r"^\s*\d{4}/\d{1,2}/\d{1,2}\s*,")


def detect(header_line: str) -> str | None:
    """Which format a file's first line announces, or None."""
    if _TDX_DATE.match(header_line):
        return "tdx"
    cols = [c.strip().lower() for c in header_line.split(",")]
    if "tradestatus" in cols or ("preclose" in cols and "code" in cols) or "pctchg" in cols:
        return "baostock"
    if "日期" in cols:
        return "akshare"
    if cols[:3] == ["date", "open", "close"] and "high" in cols:
        return "akshare"
    if cols[:5] == ["date", "open", "high", "low", "close"] or cols == ["date", "close"]:
        return "csv"
    return None


def _layout_for(fmt: str, header: list[str]) -> Layout:
    if fmt == "akshare":
        return AKSHARE_CN if "日期" in header else AKSHARE_EN
    if fmt == "tdx":
        return TDX
    if fmt == "baostock":
        return BAOSTOCK
    return CLOSE_ONLY if header == ["date", "close"] else PLAIN


def _numeric(raw: pd.DataFrame, column: str, name: str, lines: np.ndarray, source: str, problems: list[Problem],
             required: bool = True) -> pd.Series:
    text = raw[column].str.strip()
    values = pd.to_numeric(text, errors="coerce")
    blank = text.eq("") | text.str.lower().isin(["nan", "none", "null", "--"])
    if required:
        for i in np.flatnonzero(blank.to_numpy()):
            problems.append(Problem(source, int(lines[i]), f"missing value in column {name}"))
    bad = values.isna() & ~blank
    for i in np.flatnonzero(bad.to_numpy()):
        problems.append(Problem(source, int(lines[i]), f"{raw[column].iloc[i]!r} is not a number in column {name}"))
    return values.astype(float)


def parse(path: Path, fmt: str = "auto", adjustment: str | None = None) -> ParsedFile:
    """Read ``path`` in format ``fmt`` (or detect it) into a :class:`ParsedFile`.

    Problems in individual rows are collected in ``problems``; a file whose format or columns
    cannot be understood raises :class:`InputRejected` at once.
    """
    source = str(path)
    text = read_text(path)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputRejected(Problem(source, None, "the file is empty"))
    detected = detect(lines[first])
    if fmt == "auto":
        if detected is None:
            raise InputRejected(Problem(source, first + 1, f"unrecognised header {lines[first][:80]!r}; "
                                        f"use --format with one of {', '.join(FORMATS)}"))
        fmt = detected
    elif fmt not in FORMATS:
        raise InputRejected(Problem(source, None, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"))

    has_header = fmt != "tdx"
    skip = first
    if fmt == "tdx" and not _TDX_DATE.match(lines[first]):
        # Some TDX exports start with a title line and a column-name line.
        skip = next((i for i, line in enumerate(lines) if _TDX_DATE.match(line)), len(lines))
    body = lines[skip:]
    # TDX appends "数据来源:通达信"; drop trailing lines that are not data.
    while body and fmt == "tdx" and not _TDX_DATE.match(body[-1]):
        body.pop()
    raw = pd.read_csv(io.StringIO("\n".join(body)), dtype=str, keep_default_na=False,
                      header=0 if has_header else None, skip_blank_lines=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    header = [c.lower() for c in raw.columns]
    layout = _layout_for(fmt, header)
    if layout is AKSHARE_EN and "amount" not in header and "成交额" in header:
        header = ["amount" if c == "成交额" else c for c in header]  # chenkx612's mixed header
    if has_header:
        raw.columns = header if layout.name != "akshare" or "日期" not in raw.columns else list(raw.columns)
    first_data_line = skip + (2 if has_header else 1)
    line_numbers = np.arange(len(raw)) + first_data_line

    missing = [col for key, col in layout.columns.items() if col not in raw.columns and key not in layout.optional]
    if missing:
        raise InputRejected(Problem(source, skip + 1, f"{layout.name} layout needs columns {missing}"))

    problems: list[Problem] = []
    out = pd.DataFrame({"line": line_numbers})
    dates = pd.to_datetime(raw[layout.columns["date"]].str.strip(), format=layout.date_format, errors="coerce")
    for i in np.flatnonzero(dates.isna().to_numpy()):
        problems.append(Problem(source, int(line_numbers[i]),
                                f"unparseable date {raw[layout.columns['date']].iloc[i]!r} (expected {layout.date_format})"))
    out["date"] = dates.to_numpy()
    close_only = layout is CLOSE_ONLY
    for name in ("open", "high", "low", "close", "volume", "turnover", "preclose"):
        column = layout.columns.get(name)
        if column is None or column not in raw.columns:
            out[name] = np.nan
            continue
        # Baostock leaves volume empty on suspended rows (tradestatus 0): that is zero, not missing.
        required = name in PRICE_FIELDS or (name == "volume" and "tradestatus" not in layout.columns)
        out[name] = _numeric(raw, column, name, line_numbers, source, problems, required=required)
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
    out["volume"] = out["volume"] * layout.volume_multiplier

    status_col = layout.columns.get("tradestatus")
    traded = pd.to_numeric(raw[status_col], errors="coerce") if status_col in raw.columns else pd.Series(1.0, index=raw.index)
    out["suspended"] = (traded.to_numpy() == 0) | ((out["volume"].to_numpy() == 0) & (not close_only))
    st_col = layout.columns.get("is_st")
    out["is_st"] = (pd.to_numeric(raw[st_col], errors="coerce").fillna(0).to_numpy() == 1) if st_col in raw.columns else False

    parsed = ParsedFile(source, layout, out, problems=problems, close_only=close_only)
    parsed.code, parsed.exchange = symbol_from_content(raw) or symbol_from_name(path) or (None, None)
    parsed.adjustment = adjustment or _adjustment_of(path, raw)
    return parsed


def _adjustment_of(path: Path, raw: pd.DataFrame) -> str:
    """``qfq`` for Baostock adjustflag 2 or files whose name or folder says qfq / 前复权; else ``none``."""
    if "adjustflag" in raw.columns:
        flags = set(raw["adjustflag"].str.strip()) - {""}
        if flags == {"2"}:
            return "qfq"
        if flags and flags != {"3"}:
            raise InputRejected(Problem(str(path), None, f"adjustflag {sorted(flags)}: import unadjusted (3) or qfq (2) bars"))
        return "none"
    # Only the file's own name and folder count: a user's home called "qfq_fan" says nothing.
    text = f"{path.parent.name}/{path.name}".lower()
    return "qfq" if ("qfq" in text or "前复权" in text) else "none"


_PREFIXED = re.compile(r"^(sh|sz|bj)\.?([0-9]{6})$", re.IGNORECASE)
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
    """``510300.SSE`` / ``sh.510300`` / ``sh510300`` / ``510300`` / ``h00300`` → (code, exchange)."""
    text = text.strip()
    if "." in text and text.split(".")[1].upper() in ("SSE", "SZSE", "BSE"):
        code, exchange = text.split(".", 1)
        return code.upper(), exchange.upper()
    match = _PREFIXED.match(text)
    if match:
        return match.group(2), _EXCHANGES[match.group(1).lower()]
    match = _INDEX_FILE.match(text)
    if match:
        return "H" + match.group(1), "SSE"
    if re.fullmatch(r"[0-9]{6}", text):
        return text, infer_exchange(text)
    raise InputRejected(Problem(text, None, "not a symbol; write it as CODE.EXCHANGE, e.g. 510300.SSE"))


def symbol_from_name(path: Path) -> tuple[str, str] | None:
    stem = path.name.split(".")[0]
    stem = re.sub(r"^(raw_|SH#|SZ#|BJ#)", lambda m: m.group(1)[:2].lower() if "#" in m.group(1) else "", stem)
    try:
        return parse_symbol(stem)
    except InputRejected:
        return None


def symbol_from_content(raw: pd.DataFrame) -> tuple[str, str] | None:
    if "code" not in raw.columns or raw.empty:
        return None
    codes = set(raw["code"].str.strip()) - {""}
    if len(codes) != 1:
        return None
    code = codes.pop()
    if code.isdigit() and len(code) < 6:
        code = code.zfill(6)
    try:
        return parse_symbol(code)
    except InputRejected:
        return None
