"""``run.py import`` for fundamentals and index-membership files: validate whole, write in one transaction.

:func:`vnpy_rotation.data.importer.import_paths` hands every file whose header :func:`.formats.sniff`
recognises to :func:`import_table_file`; bar options (``--symbol``, ``--start`` …) do not apply to them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..data.store import BarStore
from .dividends import KIND as DIVIDENDS
from .dividends import DividendStore, is_dividend_file, parse_dividends
from .formats import BALANCE, CHANGES, EXPRESS, FORECAST, REPORTS, SNAPSHOT, TableFile, parse_table, sniff
from .store import FundamentalStore


@dataclass
class TableReport:
    """What one fundamentals / membership file added, for the ``ok`` line."""

    source: str
    kind: str  # reports | index changes | index snapshot
    label: str  # e.g. "baostock profit", "CSI 300 changes"
    target: str  # "fundamentals" or the index vt_symbol
    rows: int = 0
    codes: int = 0
    first: date | None = None
    last: date | None = None
    taken_in: int = 0
    dropped: int = 0
    skipped: bool = False


def is_table_file(path: Path) -> bool:
    """Whether ``path`` is a fundamentals / membership file (by its header), not a bar file."""
    return sniff(path) is not None or is_dividend_file(path)


def import_table_file(path: Path, store: BarStore) -> TableReport:
    """Validate ``path`` fully, then write it in one transaction. Raises :class:`InputRejected`.

    The import log keys files by content: the same bytes again are skipped; changed bytes replace the
    rows with the same keys (report fields the file provides, changes, a day's member list).
    """
    digest = hashlib.sha256(b"fundamentals\0" + path.read_bytes()).hexdigest()
    if store.already_imported(digest):
        return TableReport(str(path), "", "", "", skipped=True)
    if is_dividend_file(path):
        dividends = parse_dividends(path)
        with store.transaction():
            DividendStore(store.database).save(dividends.frame)
            store.log_import(digest, str(path))
        days, codes = dividends.frame["ex_date"], dividends.frame["symbol"] + "." + dividends.frame["exchange"]
        return TableReport(str(path), DIVIDENDS, "baostock dividends", "dividends", len(days), int(codes.nunique()),
                           days.min().date() if len(days) else None, days.max().date() if len(days) else None)
    table = parse_table(path)
    fundamentals = FundamentalStore(store.database)
    with store.transaction():
        write_table(fundamentals, table)
        store.log_import(digest, str(path))
    return summarise(table)


def write_table(store: FundamentalStore, table: TableFile) -> None:
    """Store one validated file (inside the caller's transaction)."""
    if table.kind == REPORTS:
        store.upsert_reports(table.frame, table.fields, table.origin)
    elif table.kind == BALANCE:
        store.upsert_balance(table.frame, table.fields, table.origin)
    elif table.kind in (EXPRESS, FORECAST):
        store.save_dated("express" if table.kind == EXPRESS else "forecast", table.frame, table.origin)
    elif table.kind == CHANGES:
        store.save_index_changes(table.index, table.frame)
    else:
        store.replace_snapshots(table.index, table.frame)


def summarise(table: TableFile) -> TableReport:
    frame = table.frame
    days = frame["day"] if table.kind in (CHANGES, SNAPSHOT) else frame["period_end"]
    report = TableReport(table.source, table.kind, table.label, table.index or "fundamentals", len(frame),
                         int((frame["symbol"] + "." + frame["exchange"]).nunique()),
                         days.min().date(), days.max().date())
    if table.kind == CHANGES:
        report.taken_in, report.dropped = int((frame["change"] > 0).sum()), int((frame["change"] < 0).sum())
    return report
