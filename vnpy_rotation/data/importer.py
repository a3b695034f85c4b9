"""``run.py import``: validate bar files, then write each one whole or not at all.

Fundamentals and index-membership files are told by their header and handed to
:mod:`vnpy_rotation.fundamentals.importer` (same rules: validated whole, one transaction, import log).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..errors import InputRejected, Problem, UnknownInstrument
from ..fundamentals.importer import TableReport, import_table_file, is_table_file
from ..market.calendar import TradingCalendar, default_calendar
from ..market.instruments import Instrument, InstrumentKind, default_registry
from .corporate_actions import AdjustmentEvent, Jump, find_jumps, from_preclose, from_qfq_pair, infer_from_jumps
from .formats import ParsedFile, parse, parse_symbol
from .store import BarStore
from .validate import check_bars

BAR_SUFFIXES = (".csv", ".csv.gz", ".txt", ".gz", ".xlsx")
FUND_KINDS = {InstrumentKind.EQUITY_ETF, InstrumentKind.CROSS_BORDER_ETF, InstrumentKind.BOND_ETF,
              InstrumentKind.GOLD_ETF, InstrumentKind.MONEY_MARKET_ETF, InstrumentKind.LOF}


@dataclass(frozen=True)
class ImportOptions:
    fmt: str = "auto"
    symbol: str | None = None
    adjustment: str | None = None  # None: detect (qfq in path or Baostock adjustflag 2)
    start: date | None = None
    end: date | None = None


@dataclass
class FileReport:
    source: str
    vt_symbol: str
    fmt: str
    basis: str
    rows: int
    first: date | None
    last: date | None
    suspended: int
    events: list[AdjustmentEvent] = field(default_factory=list)
    jumps: list[Jump] = field(default_factory=list)  # unexplained (stocks) or inferred (funds)
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly plus bar-like files inside named folders (sorted, recursive)."""
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.is_file() and p.name.lower().endswith(BAR_SUFFIXES)))
        elif item.is_file():
            files.append(item)
        else:
            raise InputRejected(Problem(str(item), None, "no such file or folder"))
    return files


def _digest(path: Path, options: ImportOptions) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(repr((options.fmt, options.symbol, options.adjustment, options.start, options.end)).encode())
    return h.hexdigest()


def read_and_validate(path: Path, options: ImportOptions, calendar: TradingCalendar) -> tuple[ParsedFile, Instrument]:
    """Parse and check one file; raise :class:`InputRejected` listing every problem."""
    parsed = parse(path, options.fmt, options.adjustment)
    if options.symbol:
        parsed.code, parsed.exchange = parse_symbol(options.symbol)
    if not parsed.code:
        raise InputRejected(Problem(str(path), None, "cannot tell the symbol from the file name or content; pass --symbol"))
    try:
        instrument = default_registry().lookup(parsed.code, parsed.exchange)
    except UnknownInstrument as exc:
        raise InputRejected(Problem(str(path), None, str(exc))) from None
    frame = parsed.frame
    if options.start or options.end:
        keep = frame["date"].isna()
        lo = pd.Timestamp(options.start) if options.start else frame["date"].min()
        hi = pd.Timestamp(options.end) if options.end else frame["date"].max()
        parsed.frame = frame = frame[keep | ((frame["date"] >= lo) & (frame["date"] <= hi))].reset_index(drop=True)
        parsed.problems = [p for p in parsed.problems if p.line in set(frame["line"])]
    problems = parsed.problems + check_bars(frame, parsed.source, calendar)
    if parsed.close_only and instrument.rules.tradable:
        problems.append(Problem(parsed.source, None, f"{instrument.vt_symbol} is tradable: a close-only file cannot give its bars"))
    if problems:
        raise InputRejected(sorted(problems, key=lambda p: (p.line or 0)))
    return parsed, instrument


def refresh_adjustments(store: BarStore, instrument: Instrument) -> tuple[list[AdjustmentEvent], list[Jump]]:
    """Re-derive qfq-pair and inferred factors for a symbol from everything stored for it."""
    code, exchange = instrument.code, instrument.exchange
    bars = store.bar_frame(code, exchange)
    known = store.events(code, exchange, ("preclose",))
    derived: list[AdjustmentEvent] = []
    if store.basis(code, exchange) == "unadjusted":
        qfq = store.qfq_close(code, exchange)
        if len(qfq) and len(bars):
            limit = instrument.price_limit(bars.index[-1].date()) or 0.10
            preclose_days = {e.ex_date for e in known}
            derived = [e for e in from_qfq_pair(bars["close"], qfq, limit) if e.ex_date not in preclose_days]
    flags = store.flags(code, exchange)
    st_days = set(flags.index[flags["is_st"]].date) if len(flags) else set()
    jumps = find_jumps(bars.index, bars["close"].to_numpy(), known + derived,
                       lambda d: instrument.price_limit(d, d in st_days))
    inferred = infer_from_jumps(jumps, bars.index, bars["close"].to_numpy(), bars["open"].to_numpy()) \
        if instrument.kind in FUND_KINDS else []
    store.replace_events(code, exchange, ("qfq_pair", "inferred"), derived + inferred)
    return store.events(code, exchange), jumps


def import_file(path: Path, store: BarStore, options: ImportOptions = ImportOptions(),
                calendar: TradingCalendar | None = None) -> FileReport:
    """Validate ``path`` fully, then write it in one transaction. Raises :class:`InputRejected`."""
    digest = _digest(path, options)
    if store.already_imported(digest):  # same bytes, same options: nothing to do
        return FileReport(str(path), "", options.fmt, "", 0, None, None, 0, skipped=True)
    parsed, instrument = read_and_validate(path, options, calendar or default_calendar())
    frame = parsed.frame
    report = FileReport(str(path), instrument.vt_symbol, parsed.layout.name, parsed.adjustment, len(frame),
                        frame["date"].min().date(), frame["date"].max().date(), int(frame["suspended"].sum()))

    with store.transaction():
        report.warnings, report.events, report.jumps = store_series(store, instrument, frame, parsed.adjustment)
        store.log_import(digest, str(path))
    return report


def store_series(store: BarStore, instrument: Instrument, frame: pd.DataFrame,
                 adjustment: str) -> tuple[list[str], list[AdjustmentEvent], list[Jump]]:
    """Write one validated series (inside the caller's transaction); return warnings, events, jumps.

    Unadjusted bars always win the bar table; a forward-adjusted (qfq) series only stands in for
    them while no unadjusted bars exist, and always feeds the factor derivation.
    """
    code, exchange = instrument.code, instrument.exchange
    warnings: list[str] = []
    traded = frame[~frame["suspended"]]
    basis = store.basis(code, exchange)
    if adjustment == "qfq":
        store.save_qfq(code, exchange, frame["date"], frame["close"].to_numpy())
        if basis in (None, "qfq"):
            store.save_bars(code, exchange, traded)
            store.set_basis(code, exchange, "qfq")
            warnings.append("only forward-adjusted (qfq) prices are stored for this fund: fills before "
                            "its last distribution are not at real traded prices")
        else:
            warnings.append("unadjusted bars already stored are kept; the qfq closes derive adjustment factors")
    else:
        if basis == "qfq":
            store.delete_bars(code, exchange)  # real prices replace the adjusted stand-ins
        store.save_bars(code, exchange, traded)
        store.set_basis(code, exchange, "unadjusted")
        if frame["preclose"].notna().any():
            store.replace_events(code, exchange, ("preclose",),
                                 merge_events(store.events(code, exchange, ("preclose",)),
                                              from_preclose(frame["date"], frame["close"].to_numpy(),
                                                            frame["preclose"].to_numpy())))
    store.save_flags(code, exchange, frame["date"], frame["suspended"].to_numpy(), frame["is_st"].to_numpy())
    store.rebuild_block(code, exchange)
    events, jumps = refresh_adjustments(store, instrument)
    return warnings, events, jumps


def merge_events(old: list[AdjustmentEvent], new: list[AdjustmentEvent]) -> list[AdjustmentEvent]:
    by_day = {e.ex_date: e for e in old}
    by_day.update({e.ex_date: e for e in new})
    return sorted(by_day.values(), key=lambda e: e.ex_date)


@dataclass
class ImportResult:
    reports: list[FileReport] = field(default_factory=list)
    tables: list[TableReport] = field(default_factory=list)  # fundamentals / index-membership files
    failures: list[tuple[str, list[Problem]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def import_paths(paths: Iterable[str | Path], store: BarStore, options: ImportOptions = ImportOptions(),
                 progress: bool = True) -> ImportResult:
    """Import every file; a bad file is reported and skipped, the others are written.

    Fundamentals and membership files are recognised by their header before the bar parser is tried.
    """
    files = collect_files(paths)
    result = ImportResult()
    iterator: Iterable[Path] = files
    if progress and len(files) > 1:
        from tqdm import tqdm

        iterator = tqdm(files, desc="导入 import", unit="file", file=sys.stderr)
    for path in iterator:
        try:
            if is_table_file(path):
                result.tables.append(import_table_file(path, store))
            else:
                result.reports.append(import_file(path, store, options))
        except InputRejected as exc:
            result.failures.append((str(path), exc.problems))
    return result
