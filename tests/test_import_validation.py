"""Rejected bar files: every problem names its line, and nothing of a rejected file is written."""

from __future__ import annotations

import sqlite3
import sys

import pytest
from conftest import run_cli

DAYS = ["2024-09-23", "2024-09-24", "2024-09-25", "2024-09-26", "2024-09-27"]
PLAIN_HEADER = "date,open,high,low,close,volume,turnover"
# date, open, high, low, close, volume, turnover (volume in shares)
GOOD = [
    [DAYS[0], "3.500", "3.560", "3.480", "3.520", "1000000", "3520000"],
    [DAYS[1], "3.520", "3.600", "3.510", "3.580", "1200000", "4296000"],
    [DAYS[2], "3.580", "3.620", "3.550", "3.600", "1100000", "3960000"],
    [DAYS[3], "3.600", "3.700", "3.590", "3.690", "1500000", "5535000"],
    [DAYS[4], "3.690", "3.760", "3.650", "3.740", "1300000", "4862000"],
]


def plain(**changes) -> str:
    """The good 5-row plain file with cells replaced: ``r2_close="..."`` sets row 2's close."""
    columns = PLAIN_HEADER.split(",")
    rows = [list(r) for r in GOOD]
    for key, value in changes.items():
        row, column = key.split("_", 1)
        rows[int(row[1:])][columns.index(column)] = value
    return "\n".join([PLAIN_HEADER, *(",".join(r) for r in rows)]) + "\n"


def tdx(rows, title: bool = False) -> bytes:
    """TDX export: no header, YYYY/MM/DD, open,high,low,close,volume,amount; optional title/trailer (GBK)."""
    lines = [f"{r[0].replace('-', '/')},{','.join(r[1:])}" for r in rows]
    if title:
        lines = ["510050 上证50ETF 日线 不复权", "      日期,    开盘,    最高,    最低,    收盘,    成交量,    成交额",
                 *lines, "数据来源:通达信"]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def akshare_cn(rows) -> str:
    """AKShare Chinese export: open, CLOSE, high, low order; volume in lots."""
    out = ["日期,开盘,收盘,最高,最低,成交量,成交额"]
    for d, o, h, low, c, v, t in rows:
        out.append(",".join([d, o, c, h, low, str(int(v) // 100), t]))
    return "\n".join(out) + "\n"


def replaced(row: int, column: int, value: str):
    rows = [list(r) for r in GOOD]
    rows[row][column] = value
    return rows


# id, file name, content, import options, expected line (None: the whole file), tokens in the reason
SCENARIOS = [
    ("unparseable-date", "510300.csv", plain(r2_date="2024-09-2x"), {}, 4, ["2024-09-2x"]),
    ("duplicate-date", "510300.csv", plain(r3_date=DAYS[2]), {}, 5, ["duplicate", DAYS[2]]),
    ("unsorted-dates", "510300.csv", plain(r1_date=DAYS[2], r2_date=DAYS[1]), {}, 4, ["order", DAYS[1]]),
    ("missing-close", "510300.csv", plain(r1_close=""), {}, 3, ["missing", "close"]),
    ("non-positive-price-last-row", "510300.csv", plain(r4_open="0"), {}, 6, ["non-positive", "open"]),
    ("high-below-open-close", "510300.csv", plain(r0_high="3.510"), {}, 2, ["high", "3.51"]),
    ("low-above-open-close", "510300.csv", plain(r2_low="3.590"), {}, 4, ["low", "3.59"]),
    ("negative-volume-last-row", "510300.csv", plain(r4_volume="-100"), {}, 6, ["volume", "-100"]),
    ("national-day-last-row", "510300.csv", plain(r4_date="2024-10-01"), {}, 6, ["2024-10-01", "trading day"]),
    ("unknown-instrument", "159000.csv", plain(), {}, None, ["159000"]),
    ("unrecognised-header", "510300.csv", plain().replace(PLAIN_HEADER, "day,o,h,l,c,v,t"), {}, 1, ["day,o,h"]),
    ("close-only-tradable", "510300.csv", "date,close\n" + "".join(f"{r[0]},{r[4]}\n" for r in GOOD), {},
     None, ["510300.SSE", "close-only"]),
    ("tdx-saturday", "510050.csv", tdx(replaced(4, 0, "2024-09-28")), {}, 5, ["2024-09-28", "trading day"]),
    ("tdx-title-trailer-gbk", "510050.txt", tdx(replaced(1, 2, "3.500"), title=True), {"fmt": "tdx"}, 4,
     ["high", "3.5"]),
    ("akshare-cn-not-a-number", "510300.csv", akshare_cn(replaced(3, 4, "abc")), {}, 5, ["abc", "close"]),
    ("akshare-cn-low-above", "510300.csv", akshare_cn(replaced(4, 3, "3.700")), {}, 6, ["low", "3.7"]),
]


def snapshot(store) -> dict[str, list]:
    """Every row of vnpy's bar tables and of the project's tables (without autoincrement ids)."""
    from vnpy_rotation.data.store import MODELS

    module = sys.modules[type(store.database).__module__]
    models = [store.bar_model, *MODELS, *[m for m in [getattr(module, "DbBarOverview", None)] if m is not None]]
    out = {}
    for model in models:
        fields = [f for f in model._meta.sorted_fields if f.name != "id"]
        out[model.__name__] = sorted(map(repr, model.select(*fields).tuples()))
    return out


def write(folder, name, content):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (path.write_bytes if isinstance(content, bytes) else lambda c: path.write_text(c, encoding="utf-8"))(content)
    return path


@pytest.fixture
def seeded(store, tmp_path):
    """The emptied store holding one good import (510300, the two weeks before the crafted files)."""
    from vnpy_rotation.data.importer import import_file

    earlier = ["2024-09-09", "2024-09-10", "2024-09-11", "2024-09-12", "2024-09-13"]
    text = PLAIN_HEADER + "\n" + "".join(",".join([d, *r[1:]]) + "\n" for d, r in zip(earlier, GOOD))
    import_file(write(tmp_path / "seed", "510300.csv", text), store)
    return store


def rejected(path, store, **options):
    from vnpy_rotation.data.importer import ImportOptions, import_file
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected) as info:
        import_file(path, store, ImportOptions(**options))
    return info.value.problems


@pytest.mark.parametrize("name, content, options, line, tokens",
                         [pytest.param(*s[1:], id=s[0]) for s in SCENARIOS])
def test_bad_file_is_rejected_with_its_line_and_nothing_written(seeded, tmp_path, name, content, options, line, tokens):
    before = snapshot(seeded)
    assert sum(map(len, before.values())) > 0
    path = write(tmp_path / "in", name, content)

    problems = rejected(path, seeded, **options)

    matching = [p for p in problems if p.line == line and all(t in p.reason for t in tokens)]
    assert matching, [str(p) for p in problems]
    assert all(p.source == str(path) for p in problems)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("row", range(5))
def test_one_bad_row_anywhere_rejects_the_whole_file(seeded, tmp_path, row):
    before = snapshot(seeded)
    path = write(tmp_path / "in", "510300.csv", plain(**{f"r{row}_volume": "-5"}))

    problems = rejected(path, seeded)

    assert [(p.line, "-5" in p.reason) for p in problems] == [(row + 2, True)]
    assert snapshot(seeded) == before


def test_every_problem_of_a_file_is_listed_in_line_order(store, tmp_path):
    path = write(tmp_path / "in", "510300.csv", plain(r4_volume="-1", r0_close="", r2_date="2024-09-2x"))

    problems = rejected(path, store)

    assert [p.line for p in problems] == [2, 4, 6]


def test_cli_rejects_a_bad_file_with_file_and_line(tmp_path):
    bad = write(tmp_path / "in", "510300.csv", plain(r2_high="3.000"))

    proc = run_cli("import", str(bad), home=tmp_path)

    assert proc.returncode != 0
    assert f"{bad}:4:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_folder_imports_good_file_and_rejects_bad_one(tmp_path):
    folder = tmp_path / "in"
    write(folder, "510300.csv", plain())
    bad = write(folder, "510500.csv", plain(r4_low="9.000"))

    proc = run_cli("import", str(folder), home=tmp_path)

    assert proc.returncode == 1, proc.stderr
    assert f"{bad}:6:" in proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(tmp_path / ".vntrader" / "database.db") as db:
        bars = db.execute("select symbol, count(*) from dbbardata group by symbol").fetchall()
        series = db.execute("select symbol, basis from rotation_series").fetchall()
        logged = db.execute("select source from rotation_import_log").fetchall()
    assert bars == [("510300", 5)]
    assert series == [("510300", "unadjusted")]
    assert logged == [(str(folder / "510300.csv"),)]
