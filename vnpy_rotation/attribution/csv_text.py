"""CSV files in the text Arrow's CSV writer gives, written without pyarrow.

The attribution tables are long (a row per day and symbol), and pandas' ``to_csv`` formats floats value by
value through its own machinery, about ten times slower. Arrow's writer is fast but needs pyarrow, which a
``run.py backtest`` process does not otherwise import (pandas imports it whenever it can, at ~40 MB and
~0.05 s; see ``cli/main.py``). This writer keeps the files' bytes as Arrow writes them, so files written with
and without pyarrow are identical:

- floats in the shortest text that reads back to the same double, laid out as Arrow's
  ``FloatToStringFormatter`` does (double-conversion's ``ToShortest`` with ``EMIT_POSITIVE_EXPONENT_SIGN``,
  ``decimal_in_shortest_low = -6`` and ``decimal_in_shortest_high = 10``; apache/arrow
  ``cpp/src/arrow/util/formatting.cc``): fixed notation for decimal exponents −6 … 9 (``0.000001``,
  ``9999999999``, no trailing ``.0``), otherwise ``1e+10``, ``1.5e-7``; ``nan``, ``inf``, ``-inf``;
- integers as digits, booleans as ``true``/``false``, dates as ``YYYY-MM-DD``;
- text, and the header, in double quotes with quotes doubled (Arrow's ``quoting_style="needed"``);
- a missing value (NaT, a missing text) as an empty field; rows end in ``\\n``.

orjson's float texts and Python's ``repr`` give the same shortest digits (among the shortest decimals that
read back, the one nearest the double) as Arrow's double-conversion; only their layouts differ, which
``_float_texts`` rewrites.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

# orjson writes fixed notation for 1e-5 <= |x| < 1e16 and Arrow for 1e-6 <= |x| < 1e10. Inside both ranges the
# texts differ only by orjson's trailing ".0" on whole numbers, outside both they are the same scientific text
# ("1.5e-7", "1e+16"); the doubles between the two ranges' ends (and infinities, which orjson writes as null) are
# laid out one by one.
_ARROW_EXPONENT_LOW, _ARROW_EXPONENT_HIGH = -6, 10
_ARROW_FIXED_LOW, _ARROW_FIXED_HIGH = 10.0 ** _ARROW_EXPONENT_LOW, 10.0 ** _ARROW_EXPONENT_HIGH
_ORJSON_FIXED_LOW, _ORJSON_FIXED_HIGH = 1e-5, 1e16
# Arrow's fixed text of a double with decimal exponent -6 starts with this ("2.5e-6" is "0.0000025").
_SMALLEST_FIXED_PREFIX = "0." + "0" * (-_ARROW_EXPONENT_LOW - 1)


# Rows formatted and written at a time: the field grid and its text stay a few MB however long the table.
CHUNK_ROWS = 1 << 12


def write_csv(frame: pd.DataFrame, path: Path, decimals: int | None = None) -> None:
    """Write ``frame`` (its columns, no index) to ``path``; float columns rounded to ``decimals`` places
    first when given (``-0.0`` written as ``0``)."""
    with path.open("w", encoding="utf-8", newline="") as file:  # newline="": "\n" on every platform, as Arrow
        file.writelines(_pieces(frame, decimals))


def csv_text(frame: pd.DataFrame, decimals: int | None = None) -> str:
    """The CSV text :func:`write_csv` writes."""
    return "".join(_pieces(frame, decimals))


def _pieces(frame: pd.DataFrame, decimals: int | None) -> Iterator[str]:
    """The header, then the rows CHUNK_ROWS at a time."""
    yield ",".join(_quoted(str(name)) for name in frame.columns) + "\n"
    rows, width = frame.shape
    for start in range(0, rows if width else 0, CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        # One grid of fields and separators joined once: a join per row costs more than formatting the fields.
        grid = np.full((len(chunk), 2 * width), ",", dtype=object)
        grid[:, -1] = "\n"
        for k in range(width):
            grid[:, 2 * k] = _column_texts(chunk.iloc[:, k], decimals)
        yield "".join(grid.ravel().tolist())


def _column_texts(values: pd.Series, decimals: int | None) -> np.ndarray:
    """The fields of one column. The tables repeat values (a segment's weight every day, zeros): each distinct
    value is formatted once and the texts are gathered by code."""
    if pd.api.types.is_datetime64_any_dtype(values):
        values = pd.Series(values.to_numpy().astype("datetime64[D]"))
    elif pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):  # a signalling NaN stays NaN
            values = pd.Series((numbers if decimals is None else np.round(numbers, decimals)) + 0.0)
    codes, distinct = pd.factorize(values, use_na_sentinel=True)  # missing values: code -1, the last text
    missing = "nan" if pd.api.types.is_float_dtype(values) else ""
    fields: np.ndarray = np.array([*_texts(distinct), missing], dtype=object)[codes]
    return fields


def _texts(distinct: pd.Index | np.ndarray) -> list[str]:
    kind = distinct.dtype.kind
    if kind == "M":
        return [str(day) for day in np.datetime_as_string(np.asarray(distinct, dtype="datetime64[D]"))]
    if kind == "b":
        return ["true" if flag else "false" for flag in np.asarray(distinct).tolist()]
    if kind in "iu":
        return [str(number) for number in np.asarray(distinct).tolist()]
    if kind == "f":
        return _float_texts(np.asarray(distinct, dtype=np.float64))
    return [_quoted(str(value)) for value in np.asarray(distinct, dtype=object).tolist()]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _float_texts(numbers: np.ndarray) -> list[str]:
    """The texts of finite or infinite doubles (never NaN): orjson's shortest texts (compiled; about six times
    faster than ``repr``), with the layout changed where it differs from Arrow's (see the ranges above)."""
    if not len(numbers):
        return []
    joined = orjson.dumps(np.ascontiguousarray(numbers), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    # Shortest texts never end a fraction in 0, so ".0," only ever closes a whole number.
    texts = (joined[1:-1] + ",").replace(".0,", ",")[:-1].split(",")
    size = np.abs(numbers)
    other = (((size >= _ARROW_FIXED_LOW) & (size < _ORJSON_FIXED_LOW))
             | ((size >= _ARROW_FIXED_HIGH) & (size < _ORJSON_FIXED_HIGH)) | np.isinf(numbers))
    for k in np.flatnonzero(other).tolist():
        if size[k] < _ORJSON_FIXED_LOW:  # orjson's "-2.5e-6" is Arrow's "-0.0000025"
            mantissa, _ = texts[k].split("e")
            sign, digits = ("-", mantissa[1:]) if mantissa[0] == "-" else ("", mantissa)
            texts[k] = sign + _SMALLEST_FIXED_PREFIX + digits.replace(".", "")
        else:
            texts[k] = _arrow_float(float(numbers[k]))
    return texts


def _arrow_float(number: float) -> str:
    """One double as Arrow writes it (the module's docstring); for any double, not only the rare ones."""
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = int(exponent) + len(digit_tuple) - len(digits)  # number = ±digits × 10**exponent
    point = len(digits) + exponent  # digits "d1d2…" with the decimal point after ``point`` of them
    text: str
    if _ARROW_EXPONENT_LOW <= point - 1 < _ARROW_EXPONENT_HIGH:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits))
        else:
            text = digits[:point] + "." + digits[point:]
    else:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mantissa}e{'+' if point - 1 >= 0 else '-'}{abs(point - 1)}"
    return ("-" if sign else "") + text
