"""The KPI history in the project's database (beside the bars): table ``rotation_kpi``.

One row per (run, date, scope, kpi) and recording — each run folder (a live account's, a replay's) keeps its own
history, so a replay of days live has recorded never collides with live's values: the table is insert-only. Recording a snapshot again with the same
values adds nothing; with other values it is refused (:class:`KpiConflict`) unless ``replace``, which inserts the
new values as a row that names the one it supersedes. A KPI recorded without a value (e.g. the risk engine had not
closed the day when the daemon took its snapshot) is filled in by a later snapshot the same way, without ``replace``;
a snapshot without a value never erases a recorded one.
:func:`kpi_history` shows the latest row of each key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from peewee import AutoField, CharField, Database, FloatField, IntegerField, Model, TextField

from ..errors import InputRejected, Problem
from .home_paths import database_home, from_stored, lookup_keys
from .kpi import KpiRow
from .version_store import open_tables

KPI_TABLE = "rotation_kpi"
HISTORY_COLUMNS = ["date", "scope", "kpi", "value", "baseline", "threshold", "status"]


class KpiRecord(Model):
    seq = AutoField()  # insertion order: the latest row of a (date, scope, kpi) is the one that counts
    date = CharField()  # ISO session day
    scope = CharField()  # a strategy's name or "account"
    kpi = CharField()
    value = FloatField(null=True)  # NULL: not computable that day
    baseline = FloatField(null=True)
    threshold = CharField()
    status = CharField()  # ok | breach | n/a
    unit = CharField()
    note = TextField()
    run = TextField()  # the run folder the snapshot came from: relative to the home when inside it (home_paths.py)
    recorded_at = CharField()
    replaces = IntegerField(null=True)  # the seq of the row a --replace superseded

    class Meta:
        table_name = KPI_TABLE
        indexes = ((("run", "date", "scope", "kpi", "seq"), False),)


class KpiConflict(InputRejected):
    """A snapshot's values differ from those already recorded for the same date, scope and KPI."""


def _database(db: Database | None) -> Database:
    # no triggers: a --replace supersedes a row by inserting, but nothing here enforces immutability in SQL
    return open_tables((KpiRecord,), db, immutable=False)


def run_key(run: str | Path) -> str:
    """How a run folder is named in the table: its absolute path."""
    return str(Path(run).absolute())


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _stored(x: float) -> float | None:
    return x if math.isfinite(x) else None


def record(rows: Iterable[KpiRow], run: str | Path, *, replace: bool = False, db: Database | None = None,
           now: datetime | None = None) -> int:
    """Append ``rows`` of the run folder ``run``; returns how many were inserted (0 when all were recorded before
    with the same values).

    Raises :class:`KpiConflict` (nothing written) when a row's values differ from the recorded ones and not
    ``replace``.
    """
    database = _database(db)
    home = database_home(database)
    keys = lookup_keys(run, home)
    rows = list(rows)
    at = (now or datetime.now()).isoformat(timespec="seconds")
    with database.atomic():
        latest = _latest(keys, {r.date.isoformat() for r in rows})
        new, conflicts = [], []
        for r in rows:
            key = (r.date.isoformat(), r.scope, r.kpi)
            old = latest.get(key)
            values: dict[str, Any] = {"value": _stored(r.value), "baseline": _stored(r.baseline),
                                      "threshold": r.threshold, "status": r.status}
            if old is not None and _same(old["value"], values["value"]) and _same(old["baseline"], values["baseline"]) \
                    and (old["threshold"], old["status"]) == (r.threshold, r.status):
                continue
            if old is not None and values["value"] is None and old["value"] is not None:
                continue  # a snapshot taken before its source closed the day: it never erases a recorded value
            # a KPI recorded without a value (its source had not closed the day yet) may be filled in
            filled_in = old is not None and old["value"] is None and values["value"] is not None
            if old is not None and not replace and not filled_in:
                conflicts.append(f"{key[0]} {key[1]} {key[2]}: recorded {old['value']} ({old['status']}, from "
                                 f"{from_stored(old['run'], home)}), now {values['value']} ({values['status']})")
                continue
            new.append({"date": key[0], "scope": r.scope, "kpi": r.kpi, **values, "unit": r.unit, "note": r.note,
                        "run": keys[0], "recorded_at": at, "replaces": None if old is None else old["seq"]})
        if conflicts:
            raise KpiConflict([Problem(KPI_TABLE, None, f"{len(conflicts)} KPI values differ from the recorded ones; "
                                       "rerun with --replace to record the new ones")]
                              + [Problem(KPI_TABLE, None, c) for c in conflicts[:10]])
        if new:
            KpiRecord.insert_many(new).execute()
    return len(new)


def _latest(keys: list[str], days: set[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    query: Any = (KpiRecord.select().where(KpiRecord.run.in_(keys) & KpiRecord.date.in_(sorted(days)))
                  .order_by(KpiRecord.seq).dicts())
    return {(r["date"], r["scope"], r["kpi"]): r for r in query}


def kpi_history(scope: str | None = None, since: date | None = None, *, run: str | Path | None = None,
                db: Database | None = None) -> pd.DataFrame:
    """The latest recorded value of each (run, date, scope, kpi): columns ``date`` (datetime64), ``scope``, ``kpi``,
    ``value`` (float), ``baseline`` (float, NaN when none), ``threshold`` (str), ``status`` (ok|breach|n/a) and
    ``run`` (the run folder); ``run`` given: that run folder's history only."""
    home = database_home(_database(db))
    query = KpiRecord.select().order_by(KpiRecord.seq)
    if run is not None:
        query = query.where(KpiRecord.run.in_(lookup_keys(run_key(run), home)))
    if scope is not None:
        query = query.where(KpiRecord.scope == scope)
    if since is not None:
        query = query.where(KpiRecord.date >= since.isoformat())
    frame = pd.DataFrame([{**r, "run": from_stored(r["run"], home)} for r in query.dicts()],
                         columns=[*HISTORY_COLUMNS, "run", "seq"])
    frame = frame.drop_duplicates(["run", "date", "scope", "kpi"], keep="last").drop(columns="seq")
    frame["date"] = pd.to_datetime(frame["date"])
    for column in ("value", "baseline"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("scope", "kpi", "threshold", "status", "run"):
        frame[column] = frame[column].astype(str)
    return frame.sort_values(["date", "scope"], kind="stable").reset_index(drop=True)
