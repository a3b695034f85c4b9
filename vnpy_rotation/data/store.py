"""The database adapter: vnpy's bar table plus this project's tables, in one transaction.

Unadjusted daily bars go into vnpy's own bar table through ``get_database().save_bar_data`` so every
vnpy tool (CtaBacktester, DataManager) sees them. What vnpy has no table for lives in tables
prefixed ``rotation_`` in the same database: adjustment events, suspended / ST days, the forward-
adjusted closes used to derive factors, the price basis of each series and an import log. All
vnpy database drivers (sqlite, mysql, postgresql) are peewee databases exposed as ``.db``; our
models are bound to that same connection so one ``atomic()`` block covers both.
"""

from __future__ import annotations

import io
import sqlite3
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from peewee import (
    BlobField,
    BooleanField,
    Case,
    CharField,
    DateField,
    FloatField,
    Model,
    OperationalError,
    TextField,
    Value,
    fn,
)
from vnpy.trader.constant import Exchange, Interval
from vnpy.trader.database import DB_TZ, BaseDatabase, get_database
from vnpy.trader.object import BarData

from ..runtime import DATABASE_TIMEZONE
from .corporate_actions import AdjustmentEvent

SHANGHAI = ZoneInfo(DATABASE_TIMEZONE)


class _Row(Model):
    symbol = CharField()
    exchange = CharField()


class AdjustmentRow(_Row):
    ex_date = DateField()
    factor = FloatField()
    source = CharField()
    note = TextField(default="")

    class Meta:
        table_name = "rotation_adjustment"
        indexes = ((("symbol", "exchange", "ex_date"), True),)


class DayFlagRow(_Row):
    day = DateField()
    suspended = BooleanField(default=False)
    is_st = BooleanField(default=False)

    class Meta:
        table_name = "rotation_day_flag"
        indexes = ((("symbol", "exchange", "day"), True),)


class QfqCloseRow(_Row):
    day = DateField()
    close = FloatField()

    class Meta:
        table_name = "rotation_qfq_close"
        indexes = ((("symbol", "exchange", "day"), True),)


class SeriesRow(_Row):
    basis = CharField()  # unadjusted | qfq

    class Meta:
        table_name = "rotation_series"
        indexes = ((("symbol", "exchange"), True),)


class BarBlockRow(_Row):
    """A columnar copy of one symbol's daily bars, tagged with the bar table state it mirrors."""

    signature = CharField()
    data = BlobField()

    class Meta:
        table_name = "rotation_bar_block"
        indexes = ((("symbol", "exchange"), True),)


class ProvisionalRow(_Row):
    """A stored bar the project made itself (e.g. built from live ticks): an official import replaces it."""

    day = DateField()
    source = CharField()

    class Meta:
        table_name = "rotation_provisional"
        indexes = ((("symbol", "exchange", "day"), True),)


class GapRow(_Row):
    """A trading day missing inside a series' span with no suspension record (reported at import)."""

    day = DateField()

    class Meta:
        table_name = "rotation_gap"
        indexes = ((("symbol", "exchange", "day"), True),)


class ImportLogRow(Model):
    digest = CharField(unique=True)
    source = TextField()

    class Meta:
        table_name = "rotation_import_log"


class ImportKeyRow(Model):
    """What a successful import of a file's bytes under some options rests on, to skip it without parsing.

    A table of its own (not new columns of ``rotation_import_log``) so databases written before it
    work unchanged: their log rows have no key row and simply take the full path once.
    """

    key = CharField(unique=True)  # the file's bytes, its path and the import options (nothing parsed)
    digest = CharField()  # the import-log digest the import recorded
    symbol = CharField()
    exchange = CharField()
    inputs = CharField()  # hash of every other input of validation, as they were after the write
    report = TextField()  # the counts and warnings a skip of this file reports (JSON)

    class Meta:
        table_name = "rotation_import_key"


MODELS = (AdjustmentRow, DayFlagRow, QfqCloseRow, SeriesRow, BarBlockRow, ProvisionalRow, GapRow, ImportLogRow,
          ImportKeyRow)
TABLE_MARKER = "*"  # the BarBlockRow holding the whole bar table's signature
# SQLite: a one-row count of the writes to vnpy's bar table, kept by triggers on that table (BarStore.__init__).
CHANGE_COUNT_TABLE = "rotation_bar_changes"
CHANGE_TRIGGERS = {f"rotation_bar_{op.lower()}": op for op in ("INSERT", "UPDATE", "DELETE")}


@dataclass(frozen=True)
class BlockCheck:
    """The outcome of :meth:`BarStore.check_blocks`, consumed by :meth:`BarStore.iter_blocks`."""

    signatures: dict[tuple[str, str], str]  # (symbol, exchange) → the bar table's current signature
    stored: dict[tuple[str, str], str]  # (symbol, exchange) → the signature its block was built from
    table: str | None  # the whole table's signature to record once every block is current

    @property
    def vt_symbols(self) -> list[str]:
        return [f"{code}.{exchange}" for code, exchange in self.signatures]
BLOCK_FIELDS = ("open", "high", "low", "close", "volume", "turnover")


class BarStore:
    """Reads and writes one symbol's data; every write method expects an open transaction."""

    def __init__(self, database: BaseDatabase | None = None) -> None:
        self.database = database or get_database()
        self.db = self.database.db
        self.db.bind(MODELS)
        self.db.create_tables(MODELS)
        self.bar_model = sys.modules[type(self.database).__module__].DbBarData
        self._series_sql: list[tuple[str, list]] | None = None
        self._key_sql: tuple[str, list] | None = None
        self._counted = self._count_bar_changes()

    def transaction(self) -> AbstractContextManager:
        return self.db.atomic()

    # -- vnpy's bar table -------------------------------------------------------------------
    def save_bars(self, code: str, exchange: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        ex = Exchange(exchange)
        turnover = frame["turnover"].fillna(0.0).to_numpy()
        bars = [
            BarData(
                gateway_name="DB", symbol=code, exchange=ex, interval=Interval.DAILY,
                datetime=datetime(d.year, d.month, d.day, tzinfo=SHANGHAI),
                open_price=o, high_price=h, low_price=lo, close_price=c, volume=v, turnover=t,
            )
            for d, o, h, lo, c, v, t in zip(
                frame["date"].dt.date, frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(),
                frame["close"].to_numpy(), frame["volume"].to_numpy(), turnover,
            )
        ]
        self.database.save_bar_data(bars)

    def delete_bars(self, code: str, exchange: str) -> None:
        self.database.delete_bar_data(code, Exchange(exchange), Interval.DAILY)

    def bar_frame(self, code: str, exchange: str) -> pd.DataFrame:
        """Date-indexed open/close of one symbol's daily bars, straight from SQL."""
        return self.stored_bars(code, exchange)[["open", "close"]]

    def first_days(self, codes: set[str] | None = None) -> dict[str, date]:
        """vt_symbol → the day of its first stored daily bar (for a stock imported from its IPO on: listing)."""
        m = self.bar_model
        where = m.interval == Interval.DAILY.value
        if codes is not None:
            where &= m.symbol.in_(sorted(codes))
        query = m.select(m.symbol, m.exchange, fn.MIN(m.datetime)).where(where).group_by(m.symbol, m.exchange)
        rows = self._raw(query)
        days = to_dates(pd.Series([r[2] for r in rows], dtype=object))
        return {f"{sym}.{ex}": day.date() for (sym, ex, _), day in zip(rows, days)}

    def stored_bars(self, code: str, exchange: str) -> pd.DataFrame:
        """Date-indexed open/high/low/close/volume/turnover of one symbol's daily bars."""
        m = self.bar_model
        query = (m.select(m.datetime, m.open_price, m.high_price, m.low_price, m.close_price, m.volume, m.turnover)
                 .where((m.symbol == code) & (m.exchange == exchange) & (m.interval == Interval.DAILY.value))
                 .order_by(m.datetime))
        frame = pd.DataFrame(self._raw(query), columns=["datetime", *BLOCK_FIELDS])
        frame.index = to_dates(frame["datetime"])
        return frame[list(BLOCK_FIELDS)].astype(float)

    def delete_bar_days(self, code: str, exchange: str, days: list[date]) -> None:
        """Delete one symbol's daily bars on ``days`` (found by id: stored datetimes are zone-dependent)."""
        if not days:
            return
        m = self.bar_model
        query = (m.select(m.id, m.datetime)
                 .where((m.symbol == code) & (m.exchange == exchange) & (m.interval == Interval.DAILY.value)))
        rows = self._raw(query)
        stored = to_dates(pd.Series([r[1] for r in rows], dtype=object))
        wanted = set(days)
        ids = [r[0] for r, d in zip(rows, stored) if d.date() in wanted]
        for chunk in range(0, len(ids), 500):
            m.delete().where(m.id.in_(ids[chunk:chunk + 500])).execute()

    # -- provisional bars ------------------------------------------------------------------------
    def save_provisional_bars(self, code: str, exchange: str, frame: pd.DataFrame, source: str) -> list[date]:
        """Store bars the project built itself (``frame`` as :meth:`save_bars` takes it), marked provisional.

        A day that already has an official bar is left alone; returns the days written.
        """
        official = set(self.stored_bars(code, exchange).index.date) - set(self.provisional_days(code, exchange))
        keep = ~frame["date"].dt.date.isin(official).to_numpy()
        frame = frame[keep]
        days = list(frame["date"].dt.date)
        self.save_bars(code, exchange, frame)
        rows = [{"symbol": code, "exchange": exchange, "day": d, "source": source} for d in days]
        for chunk in _chunks(rows):
            ProvisionalRow.insert_many(chunk).on_conflict_replace().execute()
        if days:
            self.rebuild_block(code, exchange)
        return days

    def provisional_days(self, code: str, exchange: str) -> dict[date, str]:
        """Day → source of the symbol's bars marked provisional."""
        query = (ProvisionalRow.select(ProvisionalRow.day, ProvisionalRow.source)
                 .where((ProvisionalRow.symbol == code) & (ProvisionalRow.exchange == exchange)))
        return {_as_date(day): source for day, source in self._raw(query)}

    def clear_provisional(self, code: str, exchange: str, days: list[date]) -> None:
        for i in range(0, len(days), 500):
            ProvisionalRow.delete().where((ProvisionalRow.symbol == code) & (ProvisionalRow.exchange == exchange)
                                          & ProvisionalRow.day.in_(days[i:i + 500])).execute()

    # -- gaps --------------------------------------------------------------------------------------
    def save_gaps(self, code: str, exchange: str, gaps: list[date], filled: list[date]) -> None:
        """Record ``gaps`` and forget recorded gaps on ``filled`` days (a bar or a suspension arrived)."""
        series = (GapRow.symbol == code) & (GapRow.exchange == exchange)
        recorded = {_as_date(row[0]) for row in self._raw(GapRow.select(GapRow.day).where(series))}
        closed = sorted(recorded.intersection(filled))
        for i in range(0, len(closed), 500):
            GapRow.delete().where(series & GapRow.day.in_(closed[i:i + 500])).execute()
        rows = [{"symbol": code, "exchange": exchange, "day": d} for d in gaps]
        for chunk in _chunks(rows):
            GapRow.insert_many(chunk).on_conflict_replace().execute()

    def gaps(self, codes: set[str] | None = None) -> pd.DataFrame:
        """Recorded gap days (of the series with these codes, or of all): symbol, exchange, day."""
        query = GapRow.select(GapRow.symbol, GapRow.exchange, GapRow.day)
        if codes is not None:
            query = query.where(GapRow.symbol.in_(sorted(codes)))
        return pd.DataFrame(self._raw(query), columns=["symbol", "exchange", "day"])

    # -- columnar blocks: the fast read path -----------------------------------------------------
    def _checksum(self) -> list:
        """Aggregates over bar rows that any insert, delete or in-place update changes (portable SQL).

        Counts and id sums see inserts and deletes (vnpy_sqlite's REPLACE gives a row a new id);
        value sums see in-place updates (vnpy_mysql / vnpy_postgresql upsert with ON CONFLICT DO
        UPDATE, keeping ids); the id-weighted sum sees prices moved between rows. Prices, volume
        and turnover are summed apart so one magnitude cannot hide a change in another: in a double
        the smallest change seen stays far below a tick, a share or a CNY up to millions of bars.
        Float sums depend on the order the database adds rows in only once rows are physically
        reordered: that can only make a current block look stale (one needless rebuild), never the
        other way round.
        """
        m = self.bar_model
        prices = m.open_price + m.high_price * 2 + m.low_price * 4 + m.close_price * 8
        return [fn.COUNT(m.id), fn.MAX(m.id), fn.SUM(m.id),
                fn.SUM(prices), fn.SUM(prices * m.id), fn.SUM(m.volume), fn.SUM(m.turnover)]

    def bar_signatures(self, codes: set[str] | None = None) -> dict[tuple[str, str], str]:
        """(symbol, exchange) → a checksum of its daily bars (:meth:`_checksum`): changes on any write."""
        m = self.bar_model
        where = m.interval == Interval.DAILY.value
        if codes is not None:
            where &= m.symbol.in_(sorted(codes))
        query = m.select(m.symbol, m.exchange, *self._checksum()).where(where).group_by(m.symbol, m.exchange)
        return {(row[0], row[1]): _signature(row[2:]) for row in self._raw(query)}

    def rebuild_block(self, code: str, exchange: str, signature: str | None = None) -> dict[str, np.ndarray]:
        """Copy one symbol's bars from vnpy's table into its columnar block and return the columns."""
        frame = self.stored_bars(code, exchange)
        columns = {"day": frame.index.values.astype("datetime64[D]").astype("int32")}
        columns.update({f: frame[f].to_numpy(dtype=float) for f in BLOCK_FIELDS})
        if signature is None:
            signature = self.bar_signatures({code}).get((code, exchange), "")
        buffer = io.BytesIO()
        np.savez(buffer, **columns)
        BarBlockRow.insert(symbol=code, exchange=exchange, signature=signature,
                           data=buffer.getvalue()).on_conflict_replace().execute()
        return columns

    def _count_bar_changes(self, again: bool = False) -> bool:
        """SQLite: make sure triggers on vnpy's bar table count every insert, update and delete in a one-row
        table, whoever writes the file (vnpy, this project, a user's script), so that the whole table's signature
        is one row read, not an aggregate over every bar (0.15 s on the bundled data, about a second per 5 million
        bars, in every command). Where a trigger is missing (a new database, a bar table dropped and made again,
        the count table dropped; ``again``: its row deleted) they are made again and the count restarts from the
        clock's nanoseconds, so no signature recorded before can match. Other databases keep the aggregate
        (False)."""
        if not isinstance(self.db.connection(), sqlite3.Connection):
            return False
        table = self.bar_model._meta.table_name
        present = {row[0] for row in self.db.execute_sql(
            "SELECT name FROM sqlite_master WHERE (type = 'trigger' AND tbl_name = ?) OR (type = 'table' AND name = ?)",
            (table, CHANGE_COUNT_TABLE))}
        if present >= {*CHANGE_TRIGGERS, CHANGE_COUNT_TABLE} and not again:
            return True
        try:
            with self.db.atomic():
                self.db.execute_sql(f"CREATE TABLE IF NOT EXISTS {CHANGE_COUNT_TABLE} "
                                    "(id INTEGER PRIMARY KEY CHECK (id = 1), changes INTEGER NOT NULL)")
                self.db.execute_sql(f"INSERT OR REPLACE INTO {CHANGE_COUNT_TABLE} (id, changes) VALUES (1, ?)",
                                    (time.time_ns(),))
                for name, operation in CHANGE_TRIGGERS.items():
                    self.db.execute_sql(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {operation} ON {table} BEGIN "
                                        f"UPDATE {CHANGE_COUNT_TABLE} SET changes = changes + 1 WHERE id = 1; END")
        except OperationalError:  # a read-only file: nothing was made, the aggregate still tells changes apart
            return False
        return True

    def table_signature(self) -> str:
        """A signature of vnpy's whole bar table: any insert, upsert, update or delete changes it.

        SQLite: the count of writes the triggers keep (:meth:`_count_bar_changes`). Other databases: a checksum
        aggregate over every bar.
        """
        if not self._counted:
            return _signature(self.db.execute_sql(*self.bar_model.select(*self._checksum()).sql()).fetchone())
        row = self.db.execute_sql(f"SELECT changes FROM {CHANGE_COUNT_TABLE} WHERE id = 1").fetchone()
        if row is None:  # the count's row deleted: counted again from a new start
            self._count_bar_changes(again=True)
            row = self.db.execute_sql(f"SELECT changes FROM {CHANGE_COUNT_TABLE} WHERE id = 1").fetchone()
        return f"changes:{row[0]}"

    def check_blocks(self, wanted: set[str] | None = None) -> BlockCheck:
        """Which (wanted) series have bars and whether their blocks are current: no block is decoded.

        When the whole bar table is as it was at the last full check (its checksum matches),
        every block is current and the per-series query is skipped.
        """
        codes = None if wanted is None else {s.partition(".")[0] for s in wanted}
        table = self.table_signature()
        marker = BarBlockRow.get_or_none(BarBlockRow.symbol == TABLE_MARKER)
        # Only the wanted symbols' signatures are read: a few ETFs in a database of stocks stay cheap.
        selection = (BarBlockRow.select(BarBlockRow.symbol, BarBlockRow.exchange, BarBlockRow.signature)
                     .where(BarBlockRow.symbol != TABLE_MARKER))
        if codes is not None:
            selection = selection.where(BarBlockRow.symbol.in_(sorted(codes)))
        stored = {(r.symbol, r.exchange): r.signature for r in selection}
        if marker is not None and marker.signature == table:
            signatures = dict(stored)
            table = None  # nothing to record
        else:
            signatures = self.bar_signatures()
            if wanted is not None:
                # A full check: rebuild now the outdated blocks nobody asked for, so that once the wanted
                # ones are read every block is current and the marker can say so (later reads skip this).
                others = {k: v for k, v in signatures.items() if f"{k[0]}.{k[1]}" not in wanted}
                built = {(r.symbol, r.exchange): r.signature for r in
                         BarBlockRow.select(BarBlockRow.symbol, BarBlockRow.exchange, BarBlockRow.signature)}
                for key, signature in others.items():
                    if built.get(key) != signature:
                        self.rebuild_block(*key, signature)
        if wanted is not None:
            signatures = {key: sig for key, sig in signatures.items() if f"{key[0]}.{key[1]}" in wanted}
        return BlockCheck(signatures, stored, table)

    def iter_blocks(self, check: BlockCheck) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """(vt_symbol, columns) for every series of ``check``, one block in memory at a time.

        Blocks the bar table outdated are rebuilt (after the current ones are read).
        """
        current = {key for key, signature in check.signatures.items() if check.stored.get(key) == signature}
        if current:  # one streaming cursor: the rows arrive one at a time
            query = (BarBlockRow.select(BarBlockRow.symbol, BarBlockRow.exchange, BarBlockRow.data)
                     .where(BarBlockRow.symbol.in_(sorted({code for code, _ in current}))))
            for code, exchange, blob in self.db.execute_sql(*query.sql()):
                if (code, exchange) in current:
                    with np.load(io.BytesIO(bytes(blob))) as data:
                        yield f"{code}.{exchange}", {k: data[k] for k in data.files}
        for (code, exchange), signature in check.signatures.items():
            if (code, exchange) not in current:
                yield f"{code}.{exchange}", self.rebuild_block(code, exchange, signature)
        if check.table is not None:  # every block was checked and is current now
            BarBlockRow.insert(symbol=TABLE_MARKER, exchange="", signature=check.table,
                               data=b"").on_conflict_replace().execute()

    def blocks(self, wanted: set[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """vt_symbol → columns for every (wanted) symbol, all decoded at once (:meth:`iter_blocks` streams)."""
        return dict(self.iter_blocks(self.check_blocks(wanted)))

    # -- project tables ---------------------------------------------------------------------
    def basis(self, code: str, exchange: str) -> str | None:
        row = SeriesRow.get_or_none(SeriesRow.symbol == code, SeriesRow.exchange == exchange)
        return row.basis if row else None

    def set_basis(self, code: str, exchange: str, basis: str) -> None:
        SeriesRow.insert(symbol=code, exchange=exchange, basis=basis).on_conflict_replace().execute()

    def save_flags(self, code: str, exchange: str, days: pd.Series, suspended: np.ndarray, is_st: np.ndarray) -> None:
        keep = np.asarray(suspended) | np.asarray(is_st)
        rows = [
            {"symbol": code, "exchange": exchange, "day": d, "suspended": bool(s), "is_st": bool(st)}
            for d, s, st in zip(days[keep].dt.date, np.asarray(suspended)[keep], np.asarray(is_st)[keep])
        ]
        for chunk in _chunks(rows):
            DayFlagRow.insert_many(chunk).on_conflict_replace().execute()

    def flags(self, code: str, exchange: str) -> pd.DataFrame:
        rows = (DayFlagRow.select(DayFlagRow.day, DayFlagRow.suspended, DayFlagRow.is_st)
                .where((DayFlagRow.symbol == code) & (DayFlagRow.exchange == exchange)).tuples())
        frame = pd.DataFrame(list(rows), columns=["day", "suspended", "is_st"])
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame["day"]))
        return frame[["suspended", "is_st"]].astype(bool)

    def suspended_days(self, code: str, exchange: str) -> np.ndarray:
        """The days flagged suspended for one symbol, as ``datetime64[D]``."""
        query = DayFlagRow.select(DayFlagRow.day).where((DayFlagRow.symbol == code) & (DayFlagRow.exchange == exchange)
                                                         & DayFlagRow.suspended)
        return np.array([str(row[0])[:10] for row in self._raw(query)], dtype="datetime64[D]")

    def save_qfq(self, code: str, exchange: str, days: pd.Series, close: np.ndarray) -> None:
        rows = [{"symbol": code, "exchange": exchange, "day": d, "close": float(c)} for d, c in zip(days.dt.date, close)]
        for chunk in _chunks(rows):
            QfqCloseRow.insert_many(chunk).on_conflict_replace().execute()

    def qfq_close(self, code: str, exchange: str) -> pd.Series:
        rows = (QfqCloseRow.select(QfqCloseRow.day, QfqCloseRow.close)
                .where((QfqCloseRow.symbol == code) & (QfqCloseRow.exchange == exchange)).tuples())
        frame = pd.DataFrame(list(rows), columns=["day", "close"])
        return pd.Series(frame["close"].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(frame["day"])))

    def events(self, code: str, exchange: str, sources: tuple[str, ...] | None = None) -> list[AdjustmentEvent]:
        query = AdjustmentRow.select().where((AdjustmentRow.symbol == code) & (AdjustmentRow.exchange == exchange))
        if sources:
            query = query.where(AdjustmentRow.source.in_(sources))
        return [AdjustmentEvent(_as_date(r.ex_date), r.factor, r.source, r.note) for r in query.order_by(AdjustmentRow.ex_date)]

    def replace_events(self, code: str, exchange: str, sources: tuple[str, ...], events: list[AdjustmentEvent]) -> None:
        AdjustmentRow.delete().where((AdjustmentRow.symbol == code) & (AdjustmentRow.exchange == exchange)
                                     & AdjustmentRow.source.in_(sources)).execute()
        rows = [{"symbol": code, "exchange": exchange, "ex_date": e.ex_date, "factor": e.factor,
                 "source": e.source, "note": e.note} for e in events]
        for chunk in _chunks(rows):
            AdjustmentRow.insert_many(chunk).on_conflict_replace().execute()

    def all_events(self, codes: set[str] | None = None) -> pd.DataFrame:
        """Adjustment events (of the series with these codes, or of all)."""
        query = AdjustmentRow.select(AdjustmentRow.symbol, AdjustmentRow.exchange, AdjustmentRow.ex_date,
                                     AdjustmentRow.factor)
        if codes is not None:
            query = query.where(AdjustmentRow.symbol.in_(sorted(codes)))
        return pd.DataFrame(self._raw(query), columns=["symbol", "exchange", "ex_date", "factor"])

    def all_flags(self, codes: set[str] | None = None) -> pd.DataFrame:
        """Suspended / ST day flags (of the series with these codes, or of all)."""
        query = DayFlagRow.select(DayFlagRow.symbol, DayFlagRow.exchange, DayFlagRow.day,
                                  DayFlagRow.suspended, DayFlagRow.is_st)
        if codes is not None:
            query = query.where(DayFlagRow.symbol.in_(sorted(codes)))
        return pd.DataFrame(self._raw(query), columns=["symbol", "exchange", "day", "suspended", "is_st"])

    def _raw(self, query) -> list[tuple]:
        """Rows of a select without peewee's per-value conversion (bulk reads)."""
        return self.db.execute_sql(*query.sql()).fetchall()

    def already_imported(self, digest: str) -> bool:
        return ImportLogRow.get_or_none(ImportLogRow.digest == digest) is not None

    def log_import(self, digest: str, source: str) -> None:
        ImportLogRow.insert(digest=digest, source=source).on_conflict_replace().execute()

    def series_signature(self, code: str, exchange: str) -> str:
        """A checksum of everything stored for one series that an import compares a file with.

        Aggregates computed in SQL (no row reaches Python): the bar checksum (:meth:`_checksum`) with the
        first and last datetime and the database zone they are read in, the basis, and per project table
        its row count, id count/sum/max (inserts, deletes and REPLACE, which gives a row a new id), first
        and last day and sums of its values (in-place updates). Any write to the series' bars, forward-
        adjusted closes, day flags, provisional marks, gaps or adjustment events changes it.
        """
        parts = [str(DB_TZ)] + [_signature(row) for sql, params in self._series_queries()
                                for row in self.db.execute_sql(sql, _bind(params, code, exchange)).fetchall()]
        return "|".join(parts)

    def _series_queries(self) -> list[tuple[str, list]]:
        """The SQL of :meth:`series_signature` with placeholders for the series, generated once per store
        (peewee's query building costs more than the queries themselves)."""
        if self._series_sql is None:
            m = self.bar_model
            bars = (m.select(*self._checksum(), fn.MIN(m.datetime), fn.MAX(m.datetime))
                    .where((m.symbol == _CODE) & (m.exchange == _EXCHANGE) & (m.interval == Interval.DAILY.value)))
            queries = [bars, SeriesRow.select(SeriesRow.basis).where((SeriesRow.symbol == _CODE)
                                                                      & (SeriesRow.exchange == _EXCHANGE))]
            one = Value(1)
            for model, days, values in (
                    (QfqCloseRow, QfqCloseRow.day, [QfqCloseRow.close]),
                    (DayFlagRow, DayFlagRow.day, [Case(None, [(DayFlagRow.suspended, one)], 0),
                                                  Case(None, [(DayFlagRow.is_st, one)], 0)]),
                    (ProvisionalRow, ProvisionalRow.day, [fn.LENGTH(ProvisionalRow.source)]),
                    (GapRow, GapRow.day, []),
                    (AdjustmentRow, AdjustmentRow.ex_date, [AdjustmentRow.factor])):
                sums = [f for v in values for f in (fn.SUM(v), fn.SUM(v * model.id))]
                queries.append(model.select(fn.COUNT(model.id), fn.MAX(model.id), fn.SUM(model.id), fn.MIN(days),
                                            fn.MAX(days), *sums)
                               .where((model.symbol == _CODE) & (model.exchange == _EXCHANGE)))
            self._series_sql = [q.sql() for q in queries]
        return self._series_sql

    def import_key(self, key: str) -> tuple[str, str, str, str] | None:
        """(symbol, exchange, inputs, report) recorded for a successful import with this pre-parse key
        whose import-log entry still exists."""
        if self._key_sql is None:
            self._key_sql = (ImportKeyRow.select(ImportKeyRow.symbol, ImportKeyRow.exchange, ImportKeyRow.inputs,
                                                 ImportKeyRow.report)
                             .join(ImportLogRow, on=ImportKeyRow.digest == ImportLogRow.digest)
                             .where(ImportKeyRow.key == _CODE)).sql()
        sql, params = self._key_sql
        return self.db.execute_sql(sql, _bind(params, key, "")).fetchone()

    def record_import_key(self, key: str, digest: str, code: str, exchange: str, inputs: str, report: str) -> None:
        ImportKeyRow.insert(key=key, digest=digest, symbol=code, exchange=exchange, inputs=inputs,
                            report=report).on_conflict_replace().execute()


_CODE, _EXCHANGE = "\0code", "\0exchange"  # placeholders in prepared SQL (see BarStore._series_queries)


def _bind(params: list, code: str, exchange: str) -> list:
    return [code if p == _CODE else exchange if p == _EXCHANGE else p for p in params]


def to_dates(values: pd.Series) -> pd.DatetimeIndex:
    """Stored bar datetimes (naive, in vnpy's database zone; text on SQLite) as Shanghai dates."""
    if str(DB_TZ) == DATABASE_TIMEZONE:  # the default we write: midnight stays midnight
        # The first ten characters of the text (SQLite) or of str(datetime) (other drivers) are the date;
        # numpy's fixed-width cast truncates to them without a Python-level loop.
        days = np.asarray(values.to_numpy(dtype=object).astype(str), dtype="U10").astype("datetime64[D]")
        return pd.DatetimeIndex(days.astype("datetime64[ns]"))
    stamps = pd.DatetimeIndex(pd.to_datetime(values.astype(str).str.slice(0, 19), format="%Y-%m-%d %H:%M:%S"))
    return stamps.tz_localize(DB_TZ).tz_convert(SHANGHAI).tz_localize(None).normalize()


def _signature(values) -> str:
    """Aggregates as text (floats in full precision; ints and Decimals as the driver gives them)."""
    return "/".join("" if v is None else repr(v) if isinstance(v, float) else str(v) for v in values)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _chunks(rows: list[dict], size: int = 500):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]
