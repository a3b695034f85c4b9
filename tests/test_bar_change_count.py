"""The bar table's signature on SQLite is a count of writes kept by triggers: every write of any program to vnpy's
bar table changes it, reading it costs one row whatever the size of the table, and a count that was dropped or
lost its triggers starts again where no recorded signature can match."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from vnpy.trader.constant import Exchange, Interval
from vnpy.trader.object import BarData

from vnpy_rotation.data.store import CHANGE_COUNT_TABLE, BarStore
from vnpy_rotation.runtime import DATABASE_TIMEZONE


def _bar(day: int, close: float) -> BarData:
    from zoneinfo import ZoneInfo

    return BarData(gateway_name="DB", symbol="510300", exchange=Exchange.SSE, interval=Interval.DAILY,
                   datetime=datetime(2024, 1, day, tzinfo=ZoneInfo(DATABASE_TIMEZONE)), open_price=close,
                   high_price=close, low_price=close, close_price=close, volume=1000.0, turnover=close * 1000)


def test_every_write_of_vnpy_or_another_connection_changes_the_signature(store):
    seen = [store.table_signature()]
    store.database.save_bar_data([_bar(2, 3.0), _bar(3, 3.1)])  # vnpy's own insert
    seen.append(store.table_signature())
    store.database.save_bar_data([_bar(3, 3.2)])  # vnpy_sqlite's REPLACE of a stored day
    seen.append(store.table_signature())
    table = store.bar_model._meta.table_name
    with sqlite3.connect(store.db.database) as other:  # another program: an update, then a delete
        other.execute(f"UPDATE {table} SET volume = volume + 1")
    seen.append(store.table_signature())
    with sqlite3.connect(store.db.database) as other:
        other.execute(f"DELETE FROM {table} WHERE close_price = 3.0")
    seen.append(store.table_signature())
    assert len(set(seen)) == len(seen)
    assert store.table_signature() == seen[-1]  # reading changes nothing
    assert BarStore().table_signature() == seen[-1]  # nor does opening the store again


def test_a_count_that_lost_its_triggers_or_its_row_never_repeats_a_signature(store):
    store.database.save_bar_data([_bar(2, 3.0)])
    before = store.table_signature()
    store.db.execute_sql("DROP TRIGGER rotation_bar_update")
    with sqlite3.connect(store.db.database) as other:  # a write the missing trigger does not count
        other.execute(f"UPDATE {store.bar_model._meta.table_name} SET close_price = 3.5")
    again = BarStore()  # the next program to open the store makes the triggers again, from a new start
    after = again.table_signature()
    assert after != before
    store.db.execute_sql(f"DELETE FROM {CHANGE_COUNT_TABLE}")
    assert again.table_signature() not in (before, after)
    again.database.save_bar_data([_bar(3, 3.0)])  # and counts again
    assert len({before, after, again.table_signature()}) == 3


def test_blocks_written_before_a_change_by_another_program_are_rebuilt(store):
    """The read path end to end: a block built, the bar table changed behind the store, the new price read."""
    store.database.save_bar_data([_bar(2, 3.0), _bar(3, 3.1)])
    assert store.blocks({"510300.SSE"})["510300.SSE"]["close"].tolist() == [3.0, 3.1]
    with sqlite3.connect(store.db.database) as other:
        other.execute(f"UPDATE {store.bar_model._meta.table_name} SET close_price = 4.0 WHERE close_price = 3.1")
    assert BarStore().blocks({"510300.SSE"})["510300.SSE"]["close"].tolist() == [3.0, 4.0]


def test_the_signature_reads_the_count_not_the_bars(store, monkeypatch):
    """On SQLite the signature never runs the aggregate over every bar (what made each command slower as the
    database grew)."""
    store.database.save_bar_data([_bar(2, 3.0)])

    def aggregate():
        raise AssertionError("the whole-table aggregate ran")

    monkeypatch.setattr(store, "_checksum", aggregate)
    first = store.table_signature()
    store.database.save_bar_data([_bar(3, 3.1)])
    assert store.table_signature() != first
