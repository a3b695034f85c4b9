"""An industry classification for the stock segments, in Baostock's ``query_stock_industry`` layout.

Columns (http://baostock.com/baostock/index.php/行业分类): ``updateDate, code, code_name, industry,
industryClassification``, one row per stock, ``code`` like ``sh.600000``. Read as a snapshot (the latest
``updateDate`` per code wins): Baostock publishes the current classification, not its history.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from ..errors import InputRejected, Problem

COLUMNS = ("updateDate", "code", "code_name", "industry", "industryClassification")
EXCHANGES = {"sh": "SSE", "sz": "SZSE", "bj": "BSE"}
UNCLASSIFIED = "unclassified"  # Baostock leaves ``industry`` empty for some codes


def _text(path: Path) -> str:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gbk"):  # Baostock's own to_csv examples write either
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputRejected(Problem(str(path), None, "neither UTF-8 nor GBK text"))


def read_industries(path: Path) -> dict[str, str]:
    """vt_symbol → industry; every bad row is reported as ``file:line: reason``."""
    try:
        text = _text(path)
    except OSError as exc:
        raise InputRejected(Problem(str(path), None, f"cannot read ({exc.strerror})")) from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, [])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputRejected(Problem(str(path), 1, f"not Baostock's query_stock_industry layout: no column "
                                    f"{', '.join(missing)} (expected {', '.join(COLUMNS)})"))
    at = {c: header.index(c) for c in COLUMNS}
    problems: list[Problem] = []
    found: dict[str, tuple[date, str]] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            problems.append(Problem(str(path), line, f"{len(row)} fields, the header has {len(header)}"))
            continue
        try:
            updated = date.fromisoformat(row[at["updateDate"]].strip())
        except ValueError:
            problems.append(Problem(str(path), line, f"updateDate: not a date ({row[at['updateDate']]!r})"))
            continue
        prefix, _, digits = row[at["code"]].strip().partition(".")
        if prefix.lower() not in EXCHANGES or not (digits.isdigit() and len(digits) == 6):
            problems.append(Problem(str(path), line, f"code: not like sh.600000 ({row[at['code']]!r})"))
            continue
        symbol = f"{digits}.{EXCHANGES[prefix.lower()]}"
        industry = row[at["industry"]].strip() or UNCLASSIFIED
        if symbol not in found or found[symbol][0] <= updated:
            found[symbol] = (updated, industry)
    if problems:
        raise InputRejected(problems)
    if not found:
        raise InputRejected(Problem(str(path), None, "no classification row"))
    return {symbol: industry for symbol, (_, industry) in found.items()}
