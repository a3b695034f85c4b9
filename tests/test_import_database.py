"""What an import leaves in the database: upserts, suspended / ST days, ex-rights factors, price basis."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from conftest import BUNDLED, empty_database

UNADJUSTED = BUNDLED / "etf" / "unadjusted_em" / "510300.csv"
QFQ = BUNDLED / "etf" / "qfq_em" / "510300.csv"
BAOSTOCK_HEADER = "date,code,open,high,low,close,preclose,volume,amount,adjustflag,turn,tradestatus,pctChg,isST"
DAYS = ["2024-09-20", "2024-09-23", "2024-09-24", "2024-09-25", "2024-09-26", "2024-09-27"]
LATER = dict(zip(DAYS, ["2024-10-08", "2024-10-09", "2024-10-10", "2024-10-11", "2024-10-14", "2024-10-15"]))


def baostock(rows) -> str:
    """rows: (date, open, high, low, close, preclose, volume, amount, tradestatus, isST) for sh.600000."""
    lines = [BAOSTOCK_HEADER]
    for d, o, h, low, c, pre, vol, amount, status, st in rows:
        lines.append(f"{d},sh.600000,{o},{h},{low},{c},{pre},{vol},{amount},3,0.1,{status},0.0,{st}")
    return "\n".join(lines) + "\n"


SUSPENDED_ROWS = [
    (DAYS[0], 10.00, 10.10, 9.90, 10.00, 9.95, 100000, 1000000, 1, 0),
    (DAYS[1], 10.00, 10.00, 10.00, 10.00, 10.00, "", "", 0, 0),  # halted: no volume, no amount
    (DAYS[2], 10.00, 10.20, 9.95, 10.10, 10.00, 120000, 1212000, 1, 1),  # ST
    (DAYS[3], 10.10, 10.20, 10.00, 10.05, 10.10, 90000, 904500, 1, 0),
    (DAYS[4], 10.05, 10.15, 10.00, 10.10, 10.05, 80000, 808000, 1, 0),
    (DAYS[5], 10.10, 10.20, 10.05, 10.15, 10.10, 70000, 710500, 1, 0),
]
EX_RIGHTS_ROWS = [
    (DAYS[0], 9.90, 10.00, 9.85, 9.95, 9.90, 100000, 995000, 1, 0),
    (DAYS[1], 9.95, 10.05, 9.90, 10.00, 9.95, 110000, 1100000, 1, 0),
    (DAYS[2], 10.00, 10.05, 9.95, 10.00, 10.00, 120000, 1200000, 1, 0),  # day 3: close 10.00
    (DAYS[3], 9.50, 9.65, 9.45, 9.60, 9.50, 150000, 1440000, 1, 0),  # day 4: reference 9.50
    (DAYS[4], 9.60, 9.70, 9.55, 9.65, 9.60, 90000, 868500, 1, 0),
    (DAYS[5], 9.65, 9.75, 9.60, 9.70, 9.65, 80000, 776000, 1, 0),
]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def importing(store, *paths):
    from vnpy_rotation.data.importer import import_file

    return [import_file(p, store) for p in paths]


def rows(store) -> dict[str, list]:
    """Every stored row of vnpy's bar table and the project's tables, ids left out."""
    from vnpy_rotation.data.store import MODELS, ImportKeyRow

    out = {}
    # ImportKeyRow is bookkeeping: the fingerprint a later skip compares (ids included), not content.
    for model in (store.bar_model, *(m for m in MODELS if m is not ImportKeyRow)):
        # ids and the bar-block signature (which tracks ids) change on an upsert; content must not.
        fields = [f for f in model._meta.sorted_fields if f.name not in ("id", "signature")]
        out[model.__name__] = sorted(map(repr, model.select(*fields).tuples()))
    return out


empty = empty_database


def bar_closes(store, code="510300", exchange="SSE") -> pd.Series:
    return store.bar_frame(code, exchange)["close"]


def test_reimport_is_idempotent_and_an_upsert(store, tmp_path):
    from vnpy_rotation.data.store import AdjustmentRow, DayFlagRow, ImportLogRow

    files = [UNADJUSTED, QFQ, write(tmp_path / "bs_600000.csv", baostock(SUSPENDED_ROWS)),
             write(tmp_path / "bs2_600000.csv", baostock([(LATER[r[0]], *r[1:]) for r in EX_RIGHTS_ROWS]))]
    first = importing(store, *files)
    assert not any(r.skipped for r in first)
    before = rows(store)
    assert AdjustmentRow.select().count() > 0 and DayFlagRow.select().count() > 0

    again = importing(store, *files)
    assert all(r.skipped for r in again)
    assert rows(store) == before

    ImportLogRow.delete().execute()
    upserted = importing(store, *files)
    assert not any(r.skipped for r in upserted)
    assert rows(store) == before


def test_suspended_day_has_a_flag_and_no_bar(store, tmp_path):
    from vnpy_rotation.data.store import DayFlagRow

    (report,) = importing(store, write(tmp_path / "bs_600000.csv", baostock(SUSPENDED_ROWS)))

    assert (report.vt_symbol, report.suspended) == ("600000.SSE", 1)
    bar_days = [d.date().isoformat() for d in bar_closes(store, "600000").index]
    assert bar_days == [d for d in DAYS if d != DAYS[1]]
    flag = DayFlagRow.get(DayFlagRow.symbol == "600000", DayFlagRow.day == date.fromisoformat(DAYS[1]))
    assert flag.suspended


def test_st_row_is_flagged(store, tmp_path):
    from vnpy_rotation.data.store import DayFlagRow

    importing(store, write(tmp_path / "bs_600000.csv", baostock(SUSPENDED_ROWS)))

    flag = DayFlagRow.get_or_none(DayFlagRow.symbol == "600000", DayFlagRow.day == date.fromisoformat(DAYS[2]))
    assert flag is not None and flag.is_st and not flag.suspended


def test_baostock_preclose_gives_one_exact_ex_rights_factor(store, tmp_path):
    from vnpy_rotation.data.store import AdjustmentRow

    importing(store, write(tmp_path / "bs_600000.csv", baostock(EX_RIGHTS_ROWS)))

    events = list(AdjustmentRow.select())
    assert len(events) == 1
    (event,) = events
    assert (event.symbol, event.exchange, str(event.ex_date), event.source) == ("600000", "SSE", DAYS[3], "preclose")
    assert event.factor == pytest.approx(10.00 / 9.50, abs=1e-12)


def test_qfq_and_unadjusted_give_the_same_result_in_either_order(store):
    outcomes = []
    for order in ([QFQ, UNADJUSTED], [UNADJUSTED, QFQ]):
        empty(store)
        importing(store, *order)
        assert store.basis("510300", "SSE") == "unadjusted"
        outcomes.append((bar_closes(store), store.events("510300", "SSE")))

    (closes_a, events_a), (closes_b, events_b) = outcomes
    pd.testing.assert_series_equal(closes_a, closes_b)
    assert closes_a[pd.Timestamp("2017-01-18")] == pytest.approx(3.398, abs=1e-12)  # the unadjusted close
    assert len(events_a) > 0
    assert [(e.ex_date, e.source) for e in events_a] == [(e.ex_date, e.source) for e in events_b]
    assert [e.factor for e in events_a] == pytest.approx([e.factor for e in events_b], abs=1e-9)


def test_qfq_only_import_stores_qfq_bars_with_a_warning(store):
    (report,) = importing(store, BUNDLED / "etf" / "qfq_em" / "513500.csv")

    assert report.basis == "qfq" and report.warnings
    assert store.basis("513500", "SSE") == "qfq"
    assert bar_closes(store, "513500")[pd.Timestamp("2017-01-18")] == pytest.approx(0.724, abs=1e-12)


def test_510300_distribution_of_2024_01_18_from_the_bundled_pair(store):
    importing(store, UNADJUSTED, QFQ)

    unadjusted = pd.read_csv(UNADJUSTED, index_col="日期")["收盘"]
    qfq = pd.read_csv(QFQ, index_col="date")["close"]
    gap = unadjusted - qfq
    cash = gap["2024-01-17"] - gap["2024-01-18"]
    assert cash > 0.01
    expected = unadjusted["2024-01-17"] / (unadjusted["2024-01-17"] - cash)

    on_day = [e for e in store.events("510300", "SSE") if e.ex_date == date(2024, 1, 18)]
    assert len(on_day) == 1
    assert on_day[0].factor == pytest.approx(expected, abs=1e-3)
