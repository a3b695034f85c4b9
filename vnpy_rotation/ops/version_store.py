"""The tables of strategy versions and their alias moves, in the project's database (beside the bars).

- ``rotation_version``: one row per immutable strategy version, keyed by its content hash;
- ``rotation_alias``: one row per alias move (``champion``, ``candidate``, ... per strategy): the current alias
  is the latest row of its (strategy, alias), a retired alias is a row with no version.

Both tables are insert-only. On SQLite (vnpy's embedded default) triggers abort any UPDATE or DELETE, so
even a hand-written SQL edit fails (https://www.sqlite.org/lang_createtrigger.html, ``RAISE(ABORT, ...)``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from peewee import AutoField, CharField, Database, Model, SqliteDatabase, TextField

VERSION_TABLE = "rotation_version"
ALIAS_TABLE = "rotation_alias"


class VersionRow(Model):
    id = CharField(primary_key=True)  # the content hash's first 12 hex digits
    strategy = CharField(index=True)
    strategy_class = CharField()
    content_hash = CharField()  # the whole SHA-256 of the canonical content
    settings_json = TextField()
    settings_hash = CharField()
    backtest_json = TextField()
    backtest_hash = CharField()
    release_json = TextField()  # the validated release: section (the defaults when absent)
    risk_json = TextField()  # the configured ladders and stop rules
    config_path = TextField()
    config_text = TextField()
    config_sha256 = CharField()
    files_json = TextField()  # files the config refers to (pools): field, path, sha256, text
    start = CharField()  # the window the backtest covered (first and last trading day)
    end = CharField()
    bars_json = TextField()  # per-symbol row count and last day of the bars used
    bars_hash = CharField()
    code_commit = CharField()
    code_diff_hash = CharField()  # of the uncommitted changes ("" when clean or not in git)
    metrics_json = TextField()
    checks_json = TextField()  # look-ahead and identity checks: kind, name, ok, detail
    walkforward_json = TextField(null=True)
    equity_json = TextField()  # {"dates": [...], "equity": [...]}: the backtest's daily close equity
    created_at = CharField()
    created_by = CharField()
    note = TextField()

    class Meta:
        table_name = VERSION_TABLE


class AliasRow(Model):
    seq = AutoField()  # insertion order: the latest row of (strategy, alias) is the current alias
    strategy = CharField()
    name = CharField(column_name="alias")  # not "alias": peewee's Model.alias() would be shadowed
    version = CharField(null=True)  # NULL: retired
    previous = CharField(null=True)
    who = CharField()
    why = TextField()
    at = CharField()  # ISO timestamp of the move

    class Meta:
        table_name = ALIAS_TABLE
        indexes = ((("strategy", "name", "seq"), False),)


MODELS = (VersionRow, AliasRow)


def _triggers(table: str) -> list[str]:
    return [f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable: insert a new row instead'); END"
            for op in ("UPDATE", "DELETE")]


def open_tables(models: tuple[type[Model], ...], db: Database | None = None, immutable: bool = True) -> Database:
    """Bind and create ``models`` on ``db`` (default: vnpy's database connection, beside the bars); with
    ``immutable`` on SQLite, triggers refuse UPDATE and DELETE of their rows even from raw SQL."""
    if db is None:
        from vnpy.trader.database import get_database  # the shell: only when no connection is given

        db = get_database().db  # type: ignore[attr-defined]  # every vnpy driver's peewee database
    db.bind(models)
    db.create_tables(models)
    if immutable and isinstance(db, SqliteDatabase):
        for model in models:
            for sql in _triggers(model._meta.table_name):  # type: ignore[attr-defined]
                db.execute_sql(sql)  # type: ignore[no-untyped-call]
    return db


class VersionStore:
    """Reads and inserts version and alias rows on ``db`` (default: vnpy's database connection)."""

    def __init__(self, db: Database | None = None) -> None:
        self.db = open_tables(MODELS, db)

    def transaction(self) -> AbstractContextManager[Any]:
        return self.db.atomic()

    def insert_version(self, row: dict[str, Any]) -> None:
        VersionRow.insert(**row).execute()

    def version(self, version_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = VersionRow.select().where(VersionRow.id == version_id).dicts().first()
        return found

    def versions(self, strategy: str | None = None) -> list[dict[str, Any]]:
        query = VersionRow.select().order_by(VersionRow.created_at, VersionRow.id)
        if strategy is not None:
            query = query.where(VersionRow.strategy == strategy)
        rows: Any = query.dicts()  # plain dicts (the stubs type them as models)
        return list(rows)

    def ids_starting(self, prefix: str) -> list[str]:
        query = VersionRow.select(VersionRow.id).where(VersionRow.id.startswith(prefix)).order_by(VersionRow.id)
        return [r.id for r in query]

    def insert_alias(self, row: dict[str, Any]) -> int:
        return int(AliasRow.insert(**row).execute())

    def alias_rows(self, strategy: str) -> list[dict[str, Any]]:
        query = AliasRow.select().where(AliasRow.strategy == strategy).order_by(AliasRow.seq)
        rows: Any = query.dicts()  # plain dicts (the stubs type them as models)
        return list(rows)

    def latest_alias(self, strategy: str, alias: str) -> dict[str, Any] | None:
        query = (AliasRow.select().where((AliasRow.strategy == strategy) & (AliasRow.name == alias))
                 .order_by(AliasRow.seq.desc()))
        found: dict[str, Any] | None = query.dicts().first()
        return found
