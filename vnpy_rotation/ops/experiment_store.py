"""The tables of the experiment registry, in the project's database (beside the bars and the versions).

- ``rotation_experiment``: one row per run (a backtest, a sweep, a walk-forward, a replay, a drill ...),
  written once when the run ends, with its inputs, results and status;
- ``rotation_experiment_link``: one row per (version, experiment) link: the experiments that justify a version.

Both tables are insert-only, as the version tables are: on SQLite triggers abort any UPDATE or DELETE
(https://www.sqlite.org/lang_createtrigger.html, ``RAISE(ABORT, ...)``).
"""

from __future__ import annotations

from typing import Any

from peewee import AutoField, CharField, Database, FloatField, IntegerField, Model, TextField

from .home_paths import database_home, from_stored, lookup_keys, to_stored
from .version_store import open_tables

KINDS = ("backtest", "sweep", "walkforward", "replay", "drill", "regress", "replay-week", "kpi")  # the kind column

EXPERIMENT_TABLE = "rotation_experiment"
LINK_TABLE = "rotation_experiment_link"


class ExperimentRow(Model):
    id = CharField(primary_key=True)  # EXP-YYYYMMDD-HHMMSS-xxxx (UTC start, 4 hex digits)
    kind = CharField(index=True)  # backtest | sweep | walkforward | replay | drill | ...
    strategy = CharField(index=True)
    status = CharField()  # ok | failed
    error = TextField()  # "" when ok
    exit_code = IntegerField(null=True)  # the command's exit code (1: a check failed); None when it raised
    started_at = CharField(index=True)  # ISO timestamps with the offset
    finished_at = CharField()
    duration_s = FloatField()
    who = CharField()
    command = TextField()  # the command line, or the Python entry point
    settings_json = TextField()
    settings_hash = CharField()
    config_path = TextField()
    config_sha256 = CharField()
    window_start = CharField()  # the first and last trading day the run's data covered ("" when unknown)
    window_end = CharField()
    bars_hash = CharField()  # versions.bars_signature of the data the run read ("" when unknown)
    bars_symbols = IntegerField()
    code_commit = CharField()
    code_diff_hash = CharField()
    inputs_json = TextField()  # the rest of the inputs: backtest section, grid, options, versions, gateway ...
    metrics_json = TextField()  # the headline metrics
    results_json = TextField()  # best row and combinations (sweep, walk-forward), consistency (replay) ...
    out_dir = TextField()  # the output folder ("" when none): relative to the home when inside it (home_paths.py)

    class Meta:
        table_name = EXPERIMENT_TABLE


class LinkRow(Model):
    seq = AutoField()
    version = CharField(index=True)
    experiment = CharField(index=True)
    relation = CharField()  # backtest | walkforward: what the experiment is to the version
    at = CharField()

    class Meta:
        table_name = LINK_TABLE


MODELS = (ExperimentRow, LinkRow)


class ExperimentStore:
    """Reads and inserts experiment and link rows on ``db`` (default: vnpy's database connection). A row's
    ``out_dir`` is absolute in what this class takes and gives, stored relative to the home when inside it."""

    def __init__(self, db: Database | None = None) -> None:
        self.db = open_tables(MODELS, db)
        self.home = database_home(self.db)

    def insert(self, row: dict[str, Any]) -> None:
        ExperimentRow.insert(**{**row, "out_dir": to_stored(row["out_dir"], self.home)}).execute()

    def _read(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "out_dir": from_stored(row["out_dir"], self.home)}

    def get(self, experiment_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = (ExperimentRow.select().where(ExperimentRow.id == experiment_id)
                                        .dicts().first())
        return None if found is None else self._read(found)

    def ids_starting(self, prefix: str) -> list[str]:
        query = (ExperimentRow.select(ExperimentRow.id).where(ExperimentRow.id.startswith(prefix))
                 .order_by(ExperimentRow.id))
        return [r.id for r in query]

    def rows(self, kind: str | None = None, strategy: str | None = None, since: str | None = None,
             out_dir: str | None = None, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Matching rows, oldest first (by start time, then id)."""
        query = ExperimentRow.select().order_by(ExperimentRow.started_at, ExperimentRow.id)
        if kind is not None:
            query = query.where(ExperimentRow.kind == kind)
        if strategy is not None:
            query = query.where(ExperimentRow.strategy == strategy)
        if since is not None:
            query = query.where(ExperimentRow.started_at >= since)
        if out_dir is not None:
            query = query.where(ExperimentRow.out_dir.in_(lookup_keys(out_dir, self.home)))
        if ids is not None:
            query = query.where(ExperimentRow.id.in_(ids))
        rows: Any = query.dicts()  # plain dicts (the stubs type them as models)
        return [self._read(row) for row in rows]

    def insert_link(self, row: dict[str, Any]) -> None:
        LinkRow.insert(**row).execute()

    def links(self, version: str | None = None, experiment: str | None = None) -> list[dict[str, Any]]:
        query = LinkRow.select().order_by(LinkRow.seq)
        if version is not None:
            query = query.where(LinkRow.version == version)
        if experiment is not None:
            query = query.where(LinkRow.experiment == experiment)
        rows: Any = query.dicts()
        return list(rows)
