"""Imports never corrupt what is stored: conflicts, --replace, provisional bars, true counts, the skip, gaps,
and a block cache that notices every write to vnpy's bar table."""

from __future__ import annotations

import sqlite3
from datetime import date

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED, REAL, needs_real, run_cli
from test_import_database import DAYS, EX_RIGHTS_ROWS, baostock
from test_import_validation import snapshot

GOOD_FUND = BUNDLED / "etf" / "unadjusted_em" / "510300.csv"  # real Eastmoney export, 2017-01-18 … 2024-09-30
BAD_DAY = "2020-06-11"  # its line 827; the bad copy halves that day's prices (a split that never happened)
BAD_LINE = 827


def halved(path, day: str = BAD_DAY):
    """The real file with one day's open/close/high/low halved (a consistent but wrong bar)."""
    lines = GOOD_FUND.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines:
        cells = line.split(",")
        if cells[0] == day:
            cells[1:5] = [f"{float(v) / 2:.3f}" for v in cells[1:5]]
        out.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def load(store, path, **options):
    from vnpy_rotation.data.importer import ImportOptions, import_file

    return import_file(path, store, ImportOptions(**options))


def refused(store, path, **options):
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected) as info:
        load(store, path, **options)
    return info.value.problems


def stored_close(store, day: str, code: str = "510300", exchange: str = "SSE") -> float:
    return float(store.bar_frame(code, exchange)["close"][pd.Timestamp(day)])


def inferred(store, code="510300", exchange="SSE"):
    return [e.ex_date for e in store.events(code, exchange) if e.source == "inferred"]


# -- conflicts ---------------------------------------------------------------------------------------

def test_a_conflicting_bar_refuses_the_whole_file_and_writes_nothing(store, tmp_path):
    load(store, GOOD_FUND)
    before = snapshot(store)

    problems = refused(store, halved(tmp_path / "bad" / "510300.csv"))

    located = [p for p in problems if p.line is not None]
    assert [(p.line, BAD_DAY in p.reason) for p in located] == [(BAD_LINE, True)]
    assert snapshot(store) == before
    assert stored_close(store, BAD_DAY) == pytest.approx(4.003, abs=1e-12)
    assert inferred(store) == []


def test_replace_reports_the_day_and_recomputes_the_series_factors(store, tmp_path):
    load(store, GOOD_FUND)
    bad = load(store, halved(tmp_path / "bad" / "510300.csv"), replace=True)

    assert [(r.day, r.why) for r in bad.replaced] == [(date(2020, 6, 11), "replace")]
    assert (bad.new, bad.unchanged) == (0, 1870)
    assert stored_close(store, BAD_DAY) == pytest.approx(2.002, abs=1e-12)
    assert date(2020, 6, 11) in inferred(store)  # what a wrong bar fabricates: a "split"

    good = load(store, GOOD_FUND, replace=True)

    assert [r.day for r in good.replaced] == [date(2020, 6, 11)]
    assert stored_close(store, BAD_DAY) == pytest.approx(4.003, abs=1e-12)
    assert inferred(store) == []


def test_identical_reimport_is_skipped_with_true_counts(store, tmp_path):
    first = load(store, GOOD_FUND)
    again = load(store, GOOD_FUND)

    assert (first.skipped, first.new, first.unchanged, first.replaced) == (False, 1871, 0, [])
    assert (again.skipped, again.new, again.unchanged, again.replaced) == (True, 0, 1871, [])


def test_an_overlapping_file_counts_new_and_unchanged_rows(store, tmp_path):
    lines = GOOD_FUND.read_text(encoding="utf-8").splitlines()
    early = tmp_path / "a" / "510300.csv"
    later = tmp_path / "b" / "510300.csv"
    early.parent.mkdir()
    later.parent.mkdir()
    early.write_text("\n".join(lines[:101]) + "\n", encoding="utf-8")  # rows 1-100
    later.write_text("\n".join([lines[0], *lines[51:151]]) + "\n", encoding="utf-8")  # rows 51-150

    report = (load(store, early), load(store, later))[1]

    assert (report.new, report.unchanged, len(report.replaced), report.skipped) == (50, 50, 0, False)


def test_the_skip_never_hides_a_conflict(store, tmp_path):
    """The same file again, after the stored bar changed behind the import log: compared, not skipped."""
    load(store, GOOD_FUND)
    m = store.bar_model
    stored = store.bar_frame("510300", "SSE")
    row = int(np.flatnonzero(stored.index == pd.Timestamp(BAD_DAY))[0])
    target = m.select(m.id).where(m.symbol == "510300").order_by(m.datetime).offset(row).limit(1).scalar()
    m.update(close_price=3.999).where(m.id == target).execute()

    problems = refused(store, GOOD_FUND)

    assert [p.line for p in problems if p.line is not None] == [BAD_LINE]


def test_byte_identical_files_for_two_symbols_both_import(store, tmp_path):
    text = GOOD_FUND.read_text(encoding="utf-8")
    a = tmp_path / "510300.csv"
    b = tmp_path / "510500.csv"
    a.write_text(text, encoding="utf-8")
    b.write_text(text, encoding="utf-8")

    reports = [load(store, a), load(store, b)]

    assert [(r.vt_symbol, r.skipped) for r in reports] == [("510300.SSE", False), ("510500.SSE", False)]
    assert len(store.bar_frame("510500", "SSE")) == 1871


def test_the_same_file_with_symbol_options_imports_for_each_symbol(store, tmp_path):
    reports = [load(store, GOOD_FUND, symbol="510300.SSE"), load(store, GOOD_FUND, symbol="510050.SSE")]

    assert [(r.vt_symbol, r.skipped) for r in reports] == [("510300.SSE", False), ("510050.SSE", False)]


def test_cli_refuses_a_conflict_and_replace_overwrites(tmp_path):
    bad = halved(tmp_path / "bad" / "510300.csv")
    assert run_cli("import", str(GOOD_FUND), home=tmp_path).returncode == 0

    refusal = run_cli("import", str(bad), home=tmp_path)
    close_after_refusal = close_in_home(tmp_path, BAD_DAY)
    replaced = run_cli("import", str(bad), "--replace", home=tmp_path)

    assert refusal.returncode != 0 and f"{bad}:{BAD_LINE}:" in refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert close_after_refusal == 4.003  # the good file's close, untouched
    assert replaced.returncode == 0, replaced.stderr
    assert close_in_home(tmp_path, BAD_DAY) == pytest.approx(2.002)  # the bad file's (4.003 / 2 to the tick)


def close_in_home(home, day) -> float:
    """510300's stored close on ``day`` in the database of the runtime folder ``home``."""
    with sqlite3.connect(home / ".vntrader" / "database.db") as db:
        return db.execute("select close_price from dbbardata where symbol = '510300' and datetime like ?",
                          (f"{day}%",)).fetchone()[0]


def test_a_qfq_reexport_that_differs_conflicts_with_qfq_bars(store, tmp_path):
    qfq = BUNDLED / "etf" / "qfq_em" / "513500.csv"
    load(store, qfq)
    header, *body = qfq.read_text(encoding="utf-8").splitlines()
    cells = body[10].split(",")
    columns = header.split(",")
    for name in ("open", "close", "high", "low"):
        cells[columns.index(name)] = f"{float(cells[columns.index(name)]) + 0.01:.3f}"
    changed = tmp_path / "qfq" / "513500.csv"
    changed.parent.mkdir()
    changed.write_text("\n".join([header, *body[:10], ",".join(cells), *body[11:]]) + "\n", encoding="utf-8")

    problems = refused(store, changed)

    assert [p.line for p in problems if p.line is not None] == [12]
    assert len(load(store, changed, replace=True).replaced) == 1


def test_replace_restates_the_preclose_factor_after_a_replaced_close(store, tmp_path):
    path = tmp_path / "bs_600000.csv"
    path.write_text(baostock(EX_RIGHTS_ROWS), encoding="utf-8")
    load(store, path)
    # A corrected bar for the day before the ex-date: close 10.00 → 10.20 (the reference price stays 9.50).
    fix = tmp_path / "fix" / "600000.csv"
    fix.parent.mkdir()
    fix.write_text(f"date,open,high,low,close,volume,turnover\n{DAYS[2]},10.00,10.20,9.95,10.20,120000,1200000\n",
                   encoding="utf-8")

    load(store, fix, replace=True)

    (event,) = store.events("600000", "SSE")
    assert (str(event.ex_date), event.source) == (DAYS[3], "preclose")
    assert event.factor == pytest.approx(10.20 / 9.50, abs=1e-12)


# -- provisional bars ----------------------------------------------------------------------------------

def test_an_official_import_replaces_provisional_bars_without_conflict(store, tmp_path):
    official = tmp_path / "510300.csv"
    official.write_text("date,open,high,low,close,volume,turnover\n"
                        "2024-09-23,3.500,3.560,3.480,3.520,1000000,3520000\n"
                        "2024-09-24,3.520,3.600,3.510,3.580,1200000,4296000\n", encoding="utf-8")
    load(store, official)
    built = pd.DataFrame({"date": pd.to_datetime(["2024-09-24", "2024-09-25"]), "open": [3.6, 3.58],
                          "high": [3.7, 3.62], "low": [3.5, 3.55], "close": [3.65, 3.61],
                          "volume": [900000.0, 1000000.0], "turnover": [3.3e6, 3.6e6]})
    with store.transaction():
        written = store.save_provisional_bars("510300", "SSE", built, "ticks")
    assert written == [date(2024, 9, 25)]  # the official 09-24 bar is left alone
    assert store.provisional_days("510300", "SSE") == {date(2024, 9, 25): "ticks"}

    later = tmp_path / "later" / "510300.csv"
    later.parent.mkdir()
    later.write_text("date,open,high,low,close,volume,turnover\n"
                     "2024-09-25,3.580,3.620,3.550,3.600,1100000,3960000\n", encoding="utf-8")
    report = load(store, later)

    assert [(r.day, r.why) for r in report.replaced] == [(date(2024, 9, 25), "provisional")]
    assert stored_close(store, "2024-09-25") == pytest.approx(3.600, abs=1e-12)
    assert store.provisional_days("510300", "SSE") == {}


# -- what counts as the same bar -----------------------------------------------------------------------

# file bar, stored bar (open, high, low, close, volume, turnover), tick, same?
SAME_BAR_CASES = [
    ("identical", (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), 0.001, True),
    ("one-tick-close", (3.5, 3.6, 3.4, 3.551, 1e6, 3.5e6), (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), 0.001, False),
    ("float-noise", (3.5, 3.6, 3.4, 3.55 + 1e-12, 1e6, 3.5e6), (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), 0.001, True),
    ("stock-half-tick", (10.0, 10.1, 9.9, 10.005, 1e6, 1e7), (10.0, 10.1, 9.9, 10.0, 1e6, 1e7), 0.01, True),
    ("stock-one-tick", (10.0, 10.1, 9.9, 10.01, 1e6, 1e7), (10.0, 10.1, 9.9, 10.0, 1e6, 1e7), 0.01, False),
    ("lot-rounding", (3.5, 3.6, 3.4, 3.55, 1277518800, 3.5e6), (3.5, 3.6, 3.4, 3.55, 1277518769, 3.5e6), 0.001, True),
    ("one-lot-off", (3.5, 3.6, 3.4, 3.55, 1000100, 3.5e6), (3.5, 3.6, 3.4, 3.55, 1000000, 3.5e6), 0.001, False),
    ("float32-volume", (3.5, 3.6, 3.4, 3.55, 4647056500, 3.5e6), (3.5, 3.6, 3.4, 3.55, 4647056400, 3.5e6), 0.001, True),
    ("float32-turnover", (3.5, 3.6, 3.4, 3.55, 1e6, 15113081733.0), (3.5, 3.6, 3.4, 3.55, 1e6, 15113081856.0), 0.001, True),
    ("turnover-off", (3.5, 3.6, 3.4, 3.55, 1e6, 3.6e6), (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), 0.001, False),
    ("turnover-missing", (3.5, 3.6, 3.4, 3.55, 1e6, np.nan), (3.5, 3.6, 3.4, 3.55, 1e6, 3.5e6), 0.001, True),
]


@pytest.mark.parametrize("file, stored, tick, same", [pytest.param(*c[1:], id=c[0]) for c in SAME_BAR_CASES])
def test_same_bar_tolerance(file, stored, tick, same):
    from vnpy_rotation.data.validate import same_bars

    columns = ["open", "high", "low", "close", "volume", "turnover"]
    result = same_bars(pd.DataFrame([file], columns=columns), pd.DataFrame([stored], columns=columns), tick)
    assert result.tolist() == [same]


@needs_real
def test_real_eastmoney_and_tdx_510300_conflict_on_five_days_of_august_2020(store):
    """Two real sources of the same fund: Eastmoney quotes every price one tick higher on 2020-08-21 … 27.

    Volume differences (lots vs shares, TDX float32) and turnover rounding on the other 2998 common days
    are within the tolerance and are not conflicts.
    """
    load(store, REAL / "etf_daily_unadjusted_em" / "510300.csv")
    tdx = REAL / "etf_daily_unadjusted_tdx" / "510300.csv"

    problems = refused(store, tdx)

    days = [p.reason[:10] for p in problems if p.line is not None]
    assert days == ["2020-08-21", "2020-08-24", "2020-08-25", "2020-08-26", "2020-08-27"]
    assert [p.line for p in problems if p.line is not None] == [2007, 2008, 2009, 2010, 2011]


# -- gaps ----------------------------------------------------------------------------------------------

def test_real_159915_export_lacks_2021_02_08_and_the_gap_is_reported_and_stored(store):
    report = load(store, BUNDLED / "etf" / "unadjusted_em" / "159915.csv")

    assert report.gaps == [date(2021, 2, 8)]
    assert [(s, e, str(d)[:10]) for s, e, d in store.gaps().itertuples(index=False)] == [("159915", "SZSE", "2021-02-08")]


PLAIN = "date,open,high,low,close,volume,turnover\n"


def plain_rows(days) -> str:
    return PLAIN + "".join(f"{d},3.500,3.560,3.480,3.520,1000000,3520000\n" for d in days)


# files imported in order (name, days), then the gaps expected in each report and stored at the end
GAP_SCENARIOS = [
    ("none", [("a", ["2024-09-23", "2024-09-24", "2024-09-25"])], [[]], []),
    ("inside-the-file", [("a", ["2024-09-23", "2024-09-26", "2024-09-27"])], [["2024-09-24", "2024-09-25"]],
     ["2024-09-24", "2024-09-25"]),
    ("between-stored-and-file", [("a", ["2024-09-23", "2024-09-24"]), ("b", ["2024-09-27", "2024-09-30"])],
     [[], ["2024-09-25", "2024-09-26"]], ["2024-09-25", "2024-09-26"]),
    ("filled-later", [("a", ["2024-09-23", "2024-09-26"]), ("b", ["2024-09-24", "2024-09-25"])],
     [["2024-09-24", "2024-09-25"], []], []),
    ("holiday-is-not-a-gap", [("a", ["2024-09-30", "2024-10-08"])], [[]], []),
]


@pytest.mark.parametrize("files, expected, stored", [pytest.param(*s[1:], id=s[0]) for s in GAP_SCENARIOS])
def test_gaps(store, tmp_path, files, expected, stored):
    reports = []
    for name, days in files:
        path = tmp_path / name / "510300.csv"
        path.parent.mkdir()
        path.write_text(plain_rows(days), encoding="utf-8")
        reports.append(load(store, path))

    assert [[str(d) for d in r.gaps] for r in reports] == expected
    assert sorted(str(d)[:10] for d in store.gaps()["day"]) == stored


def test_a_suspension_record_is_not_a_gap(store, tmp_path):
    path = tmp_path / "bs_600000.csv"
    halted = [(DAYS[0], 10.00, 10.10, 9.90, 10.00, 9.95, 100000, 1000000, 1, 0),
              (DAYS[1], 10.00, 10.00, 10.00, 10.00, 10.00, "", "", 0, 0),
              (DAYS[2], 10.00, 10.20, 9.95, 10.10, 10.00, 120000, 1212000, 1, 0)]
    path.write_text(baostock(halted), encoding="utf-8")

    assert load(store, path).gaps == []


# -- the block cache notices every write ----------------------------------------------------------------

def test_an_in_place_update_of_a_bar_reaches_the_block_cache(store, tmp_path):
    """vnpy_postgresql upserts with ON CONFLICT DO UPDATE: same id, same count, new values."""
    from vnpy_rotation.data.panels import load_panels

    load(store, GOOD_FUND)
    load(store, BUNDLED / "etf" / "unadjusted_em" / "159915.csv")
    assert store.blocks()["510300.SSE"]["close"][-1] == pytest.approx(4.233, abs=1e-12)  # blocks and marker built
    m = store.bar_model
    last = m.select(m.id).where(m.symbol == "510300").order_by(m.datetime.desc()).limit(1).scalar()
    count = m.select().count()

    store.db.execute_sql(f"UPDATE {m._meta.table_name} SET close_price = 4.321 WHERE id = {int(last)}")

    assert m.select().count() == count
    assert store.blocks({"510300.SSE"})["510300.SSE"]["close"][-1] == pytest.approx(4.321, abs=1e-12)
    panels = load_panels(["510300.SSE", "159915.SZSE"], store=store)
    assert panels.close["510300.SSE"].iloc[-1] == pytest.approx(4.321, abs=1e-12)


def test_values_swapped_between_two_rows_change_the_signature(store):
    load(store, GOOD_FUND)
    before = store.table_signature()
    m = store.bar_model
    (a, ca), (b, cb) = m.select(m.id, m.close_price).where(m.symbol == "510300").order_by(m.datetime).limit(2).tuples()
    m.update(close_price=cb).where(m.id == a).execute()
    m.update(close_price=ca).where(m.id == b).execute()

    assert ca != cb and store.table_signature() != before


def test_unadjusted_bars_replace_qfq_stand_ins_without_conflict(store):
    """A qfq-only series gets real prices: every stand-in on a common day is counted replaced, none refused."""
    qfq = BUNDLED / "etf" / "qfq_em" / "510300.csv"
    stand_ins = load(store, qfq)
    real = load(store, GOOD_FUND)

    common = len(set(store.qfq_close("510300", "SSE").index) & set(store.bar_frame("510300", "SSE").index))
    assert (stand_ins.basis, store.basis("510300", "SSE")) == ("qfq", "unadjusted")
    assert (real.new, real.unchanged, real.standins, real.replaced) == (1871 - common, 0, common, [])
    assert stored_close(store, "2017-01-18") == pytest.approx(3.398, abs=1e-12)


# -- the skip without parsing: every input of the check is fingerprinted -------------------------------

@pytest.fixture
def parse_calls(monkeypatch):
    """Counts the importer's calls of the bar parser (still parsing)."""
    from vnpy_rotation.data import importer

    calls: list[str] = []
    real = importer.parse

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(importer, "parse", counting)
    return calls


def test_an_unchanged_reimport_is_skipped_without_parsing(store, monkeypatch):
    from vnpy_rotation.data import importer

    first = load(store, GOOD_FUND)

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed although nothing changed")

    monkeypatch.setattr(importer, "parse", no_parse)
    again = load(store, GOOD_FUND)

    assert (again.skipped, again.new, again.unchanged, again.replaced, again.vt_symbol) == \
        (True, 0, 1871, [], "510300.SSE")
    assert (again.rows, again.first, again.last, again.gaps, again.warnings) == \
        (first.rows, first.first, first.last, first.gaps, first.warnings)


def test_a_close_changed_with_raw_sql_is_still_refused(store):
    load(store, GOOD_FUND)
    m = store.bar_model
    table = m._meta.table_name
    day_id = m.select(m.id).where(m.symbol == "510300").order_by(m.datetime).offset(BAD_LINE - 2).limit(1).scalar()
    store.db.execute_sql(f"UPDATE {table} SET close_price = 3.999 WHERE id = ?", (day_id,))

    problems = refused(store, GOOD_FUND)

    assert [p.line for p in problems if p.line is not None] == [BAD_LINE]


def test_a_provisional_mark_added_behind_the_log_is_cleared_not_skipped(store):
    load(store, GOOD_FUND)
    store.db.execute_sql("INSERT INTO rotation_provisional (symbol, exchange, day, source) VALUES (?, ?, ?, ?)",
                         ("510300", "SSE", BAD_DAY, "ticks"))

    again = load(store, GOOD_FUND)

    assert (again.skipped, [(r.day, r.why) for r in again.replaced]) == (False, [])
    assert store.provisional_days("510300", "SSE") == {}


def test_a_user_reclassification_is_checked_again(store, parse_calls, runtime_user_file):
    from vnpy_rotation.market.instruments import InstrumentKind, NamedInstrument, add_user_instrument

    load(store, GOOD_FUND)
    add_user_instrument(runtime_user_file, NamedInstrument(code="510300", exchange="SSE",
                                                          kind=InstrumentKind.CROSS_BORDER_ETF))  # T+0, other limits
    again = load(store, GOOD_FUND)
    settled = load(store, GOOD_FUND)  # the check under the new classification was recorded
    runtime_user_file.unlink()
    back = load(store, GOOD_FUND)

    assert len(parse_calls) == 3  # the first import, after the user file was written, after it was removed
    assert (again.skipped, settled.skipped, back.skipped) == (True, True, True)


def test_the_same_bytes_under_another_symbol_import(store, parse_calls):
    load(store, GOOD_FUND, symbol="510300.SSE")
    same = load(store, GOOD_FUND, symbol="510300.SSE")
    other = load(store, GOOD_FUND, symbol="510050.SSE")

    assert [(r.vt_symbol, r.skipped, r.new) for r in (same, other)] == [("510300.SSE", True, 0), ("510050.SSE", False, 1871)]
    assert len(parse_calls) == 2
    assert len(store.bar_frame("510050", "SSE")) == 1871
