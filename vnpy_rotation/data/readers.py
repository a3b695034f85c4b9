"""Bytes of an import file → text lines (pure, no vnpy): gzip, UTF-8/GBK text and .xlsx workbooks.

Every failure is an :class:`InputRejected` naming the file and what was expected, never a traceback.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from datetime import date, datetime, time
from pathlib import Path

from ..errors import InputRejected, Problem

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx is a zip of XML parts
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls (BIFF in an OLE container)
EXPECTED = "expected a CSV/TXT text file (UTF-8 or GBK, gzip allowed) or an .xlsx workbook"


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputRejected(Problem(str(path), None, f"cannot read the file: {exc.strerror or exc}")) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputRejected(Problem(str(path), None, f"damaged gzip data ({exc}); {EXPECTED}")) from None
    return data


def read_text(path: Path) -> str:
    """File content as text: gzip by magic bytes; UTF-8 (with BOM) or GBK as Chinese terminals write it;
    the first sheet of an .xlsx workbook as CSV lines."""
    data = read_bytes(path)
    if data[:4] == ZIP_MAGIC:
        return xlsx_text(path, data)
    if data[:4] == OLE_MAGIC:
        raise InputRejected(Problem(str(path), None, "a legacy .xls workbook; save it as .xlsx or CSV"))
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 is a superset of GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputRejected(Problem(str(path), None, f"not UTF-8 or GBK text; {EXPECTED}"))
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputRejected(Problem(str(path), line, f"binary data (a NUL byte); {EXPECTED}"))
    return text


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def xlsx_text(path: Path, data: bytes) -> str:
    """The first worksheet of an .xlsx workbook as CSV text, one line per sheet row (so line = row)."""
    try:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in sheet.iter_rows(values_only=True):
            writer.writerow([_cell(v).replace("\n", " ") for v in row])
        book.close()
    except ImportError:
        raise InputRejected(Problem(str(path), None, "reading .xlsx needs openpyxl: pip install openpyxl")) from None
    except Exception as exc:  # openpyxl raises many types (zipfile.BadZipFile, KeyError, XML errors) on damage
        raise InputRejected(Problem(str(path), None, f"not a readable .xlsx workbook ({type(exc).__name__}); "
                                                     f"{EXPECTED}")) from None
    return out.getvalue()
