"""``run.py import``: validate bar files, then write each one whole or not at all.

Fundamentals and index-membership files are told by their header and handed to
:mod:`vnpy_rotation.fundamentals.importer` (same rules: validated whole, one transaction, import log).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import InputRejected, Problem, UnknownInstrument
from ..fundamentals.importer import TableReport, import_table_file, is_table_file
from ..market.calendar import TradingCalendar, default_calendar
from ..market.instruments import Instrument, default_registry
from .corporate_actions import (
    MIN_EFFECT,
    AdjustmentEvent,
    Jump,
    find_jumps,
    from_preclose,
    from_qfq_pair,
    infer_from_jumps,
)
from .formats import ParsedFile, parse, parse_symbol
from .readers import read_bytes
from .store import BarStore
from .validate import bar_text, check_bars, missing_days, same_bars, same_prices

BAR_SUFFIXES = (".csv", ".csv.gz", ".txt", ".gz", ".xlsx")
@dataclass(frozen=True)
class ImportOptions:
    fmt: str = "auto"
    symbol: str | None = None
    adjustment: str | None = None  # None: detect (qfq in path or Baostock adjustflag 2)
    start: date | None = None
    end: date | None = None
    replace: bool = False  # overwrite stored bars that differ (each replaced day is reported)


@dataclass(frozen=True)
class ReplacedBar:
    """A stored day an import overwrote with different values."""

    day: date
    stored: str  # O/H/L/C/V (a close alone for forward-adjusted closes)
    file: str
    why: str  # "replace" (--replace over a conflict) | "provisional" (a bar the project built itself)


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
    skipped: bool = False  # unchanged since its last import: validated and compared, nothing written
    new: int = 0  # traded rows (bars, or qfq closes where unadjusted bars are kept) not stored before
    unchanged: int = 0  # rows equal to what was stored (see validate.same_bars)
    replaced: list[ReplacedBar] = field(default_factory=list)  # stored days overwritten with other values
    standins: int = 0  # forward-adjusted stand-in bars replaced by this file's unadjusted ones
    gaps: list[date] = field(default_factory=list)  # trading days missing inside the series, no suspension


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


def _digest(data: bytes, parsed: ParsedFile, instrument: Instrument, options: ImportOptions) -> str:
    """The import-log key: the file's bytes and everything that decides what they mean once stored."""
    h = hashlib.sha256(data)
    h.update(repr((instrument.vt_symbol, parsed.layout.name, parsed.adjustment, options.start, options.end)).encode())
    return h.hexdigest()


def _file_key(data: bytes, path: Path, options: ImportOptions) -> str:
    """What the parser and validator are given, known before parsing: the bytes, the path (the symbol and
    the qfq basis may come from the file name) and every import option."""
    h = hashlib.sha256(data)
    h.update(repr((str(path), options.fmt, options.symbol, options.adjustment, options.start, options.end,
                   options.replace)).encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, the source of the parsers, validators and market rules, and the versions of
    pandas and numpy that parse: a code change (even one nobody remembered to version) invalidates every
    recorded skip."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"{__version__}/{pd.__version__}/{np.__version__}".encode())
    for module in sorted([*(root / "data").glob("*.py"), *(root / "market").glob("*.py"), root / "errors.py"]):
        h.update(module.name.encode() + b"\0" + module.read_bytes())
    return h.hexdigest()


def _calendar_print(calendar: TradingCalendar) -> str:
    return hashlib.sha256(calendar.days.values.astype("datetime64[D]").tobytes()).hexdigest()


def validation_inputs(store: BarStore, instrument: Instrument, calendar: TradingCalendar) -> str:
    """Everything but the file and the options that validating and comparing it depends on: what is stored
    for its series (:meth:`BarStore.series_signature`), the instrument as the registry resolves it now
    (shipped table, fund master and user file: kind, rules, tick, price limits, verified), the trading
    calendar and the code."""
    h = hashlib.sha256()
    for part in (store.series_signature(instrument.code, instrument.exchange), repr(instrument),
                 _calendar_print(calendar), code_version()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _remembered(report: FileReport) -> str:
    """The parts of a skip's report that a later skip repeats (JSON)."""
    fields = ("vt_symbol", "fmt", "basis", "rows", "first", "last", "suspended", "unchanged", "gaps", "warnings")
    return json.dumps({k: v for k, v in asdict(report).items() if k in fields}, default=str)


def _recalled(text: str, source: str) -> FileReport:
    data = json.loads(text)
    day = lambda v: date.fromisoformat(v) if v else None  # noqa: E731
    return FileReport(source, data["vt_symbol"], data["fmt"], data["basis"], data["rows"], day(data["first"]),
                      day(data["last"]), data["suspended"], warnings=data["warnings"], skipped=True,
                      unchanged=data["unchanged"], gaps=[day(d) for d in data["gaps"]])


def _fast_skip(store: BarStore, key: str, source: str, calendar: TradingCalendar) -> FileReport | None:
    """The recorded report when this key imported successfully and none of its inputs changed since."""
    known = store.import_key(key)
    if known is None:
        return None
    code, exchange, inputs, report = known
    instrument = default_registry().find(code, exchange)
    if instrument is None or validation_inputs(store, instrument, calendar) != inputs:
        return None
    return _recalled(report, source)


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
        if instrument.kind.is_fund else []
    store.replace_events(code, exchange, ("qfq_pair", "inferred"), derived + inferred)
    return store.events(code, exchange), jumps


def _days(values) -> np.ndarray:
    """Dates (a datetime Series or index) as ``datetime64[D]``: compared and searched without Python objects."""
    return np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")


def _as_dates(days: np.ndarray) -> list[date]:
    return days.astype("datetime64[D]").astype(object).tolist()


@dataclass
class SeriesPlan:
    """How one validated file relates to what is stored for its series (read inside the transaction)."""

    new: np.ndarray = field(default_factory=lambda: np.array([], dtype="datetime64[D]"))
    unchanged: int = 0
    replaced: list[ReplacedBar] = field(default_factory=list)
    conflicts: list[Problem] = field(default_factory=list)
    drop_bars: list[date] = field(default_factory=list)  # stored bars on days the file says were suspended
    provisional: list[date] = field(default_factory=list)  # marks to clear
    standins: int = 0
    gaps: list[date] = field(default_factory=list)
    filled: list[date] = field(default_factory=list)  # days the file gives (a bar or a suspension)

    @property
    def writes_nothing(self) -> bool:
        return not (len(self.new) or self.replaced or self.drop_bars or self.provisional or self.standins)

    def changed(self) -> np.ndarray:
        """Days whose bar this file writes (new, replaced, or provisional: the official values win even
        where they differ only within the tolerance), as ``datetime64[D]``."""
        return np.concatenate([self.new, np.array([r.day for r in self.replaced] + self.provisional,
                                                  dtype="datetime64[D]")])


def plan_series(store: BarStore, instrument: Instrument, frame: pd.DataFrame, adjustment: str, source: str,
                calendar: TradingCalendar) -> SeriesPlan:
    """Compare a validated file with the stored series: new, unchanged, replaced and conflicting days, gaps.

    The stored counterpart of a file row: the bar on that day (unadjusted file, or a qfq file over a
    series whose bars are qfq stand-ins), or the stored forward-adjusted close (a qfq file over a series
    with unadjusted bars: such a file only feeds factors). A qfq file never conflicts with unadjusted
    bars, and unadjusted bars replace qfq stand-ins deliberately. A provisional bar is replaced freely.
    """
    code, exchange = instrument.code, instrument.exchange
    tick = instrument.rules.tick
    plan = SeriesPlan()
    basis = store.basis(code, exchange)
    stored = store.stored_bars(code, exchange)
    held = _days(stored.index)
    provisional = store.provisional_days(code, exchange)
    marked = np.array(list(provisional), dtype="datetime64[D]")
    halted_rows = frame["suspended"].to_numpy()
    traded = frame[~halted_rows]
    days = _days(traded["date"])
    lines = traded["line"].to_numpy()

    if adjustment == "qfq" and basis == "unadjusted":
        qfq = store.qfq_close(code, exchange)
        known = np.isin(days, _days(qfq.index))
        plan.new = days[~known]
        old = qfq.reindex(traded["date"][known]).to_numpy()
        now = traded["close"].to_numpy()[known]
        same = same_prices(now, old, tick)
        plan.unchanged = int(same.sum())
        for day, line, was, value in zip(_as_dates(days[known][~same]), lines[known][~same], old[~same], now[~same]):
            plan.conflicts.append(Problem(source, int(line), f"{day} conflicts with the stored forward-adjusted "
                                          f"close (stored {was:.12g}, file {value:.12g})"))
            plan.replaced.append(ReplacedBar(day, f"{was:.12g}", f"{value:.12g}", "replace"))
    elif adjustment != "qfq" and basis == "qfq":
        known = np.isin(days, held)
        plan.new, plan.standins = days[~known], int(known.sum())
    else:
        known = np.isin(days, held)
        plan.new = days[~known]
        ours = traded[known]
        theirs = stored.reindex(ours["date"])
        same = same_bars(ours, theirs, tick)
        was_provisional = np.isin(days[known], marked)
        plan.unchanged = int(same.sum())
        plan.provisional = _as_dates(days[known][was_provisional])
        for k in np.flatnonzero(~same):
            day, line = _as_dates(days[known][k:k + 1])[0], int(lines[known][k])
            was, now = bar_text(theirs.iloc[k]), bar_text(ours.iloc[k])
            plan.replaced.append(ReplacedBar(day, was, now, "provisional" if was_provisional[k] else "replace"))
            if not was_provisional[k]:
                plan.conflicts.append(Problem(source, line, f"{day} conflicts with the stored bar "
                                              f"(stored O/H/L/C/V {was}, file {now})"))
        halted = frame[halted_rows]
        clash = np.isin(_days(halted["date"]), held)
        for day, line in zip(_as_dates(_days(halted["date"])[clash]), halted["line"].to_numpy()[clash]):
            plan.drop_bars.append(day)
            if day in provisional:
                plan.provisional.append(day)
            else:
                plan.conflicts.append(Problem(source, int(line), f"{day} is a suspended day (no volume) in the file "
                                              f"but a bar is stored (O/H/L/C/V {bar_text(stored.loc[pd.Timestamp(day)])})"))
    plan.gaps, plan.filled = series_gaps(store, instrument, frame, held, calendar)
    return plan


def series_gaps(store: BarStore, instrument: Instrument, frame: pd.DataFrame, held: np.ndarray,
                calendar: TradingCalendar) -> tuple[list[date], list[date]]:
    """Trading days missing inside the file's span, or between it and the stored bars (``held``), with no
    suspension record. Returns the gaps and the days the file itself gives (which fill a recorded gap).
    """
    given = _days(frame["date"])
    present = np.concatenate([given, held, store.suspended_days(instrument.code, instrument.exchange)])
    lo, hi = given.min(), given.max()
    if len(held):
        before, after = held[held < lo], held[held > hi]
        lo = before.max() if len(before) else lo
        hi = after.min() if len(after) else hi
    return missing_days(present, lo, hi, calendar), _as_dates(given)


def import_file(path: Path, store: BarStore, options: ImportOptions = ImportOptions(),
                calendar: TradingCalendar | None = None) -> FileReport:
    """Validate ``path`` fully, compare it with what is stored, then write it in one transaction.

    Raises :class:`InputRejected` for a bad file or for rows that conflict with stored bars (unless
    ``options.replace``). A file already imported with the same meaning whose rows all equal the stored
    ones is reported ``skipped`` and nothing is written. It is validated and compared again unless the
    same bytes, path and options imported successfully before and every other input of that check
    (:func:`validation_inputs`) is unchanged since: then its outcome is known and it is not parsed.
    """
    calendar = calendar or default_calendar()
    data = read_bytes(path)  # an unreadable file is refused with its name, never a traceback
    key = _file_key(data, path, options)
    fast = _fast_skip(store, key, str(path), calendar)
    if fast is not None:
        return fast
    parsed, instrument = read_and_validate(path, options, calendar)
    digest = _digest(data, parsed, instrument, options)
    frame = parsed.frame
    report = FileReport(str(path), instrument.vt_symbol, parsed.layout.name, parsed.adjustment, len(frame),
                        frame["date"].min().date(), frame["date"].max().date(), int(frame["suspended"].sum()))
    with store.transaction():
        plan = plan_series(store, instrument, frame, parsed.adjustment, parsed.source, calendar)
        if plan.conflicts and not options.replace:
            raise InputRejected(plan.conflicts + [Problem(parsed.source, None, "pass --replace to overwrite the "
                                                                               "stored values (each replaced day is reported)")])
        report.new, report.unchanged, report.standins = len(plan.new), plan.unchanged, plan.standins
        report.replaced, report.gaps = plan.replaced, plan.gaps
        report.warnings += plan_warnings(plan, instrument)
        if plan.writes_nothing and store.already_imported(digest):
            report.skipped = True
            store.record_import_key(key, digest, instrument.code, instrument.exchange,
                                    validation_inputs(store, instrument, calendar), _remembered(report))
            return report
        warnings, report.events, report.jumps = store_series(store, instrument, frame, parsed.adjustment, plan)
        report.warnings += warnings
        store.save_gaps(instrument.code, instrument.exchange, plan.gaps, plan.filled)
        store.log_import(digest, str(path))
        # What the same file would meet next time, checked rather than assumed: only an import that leaves
        # the series equal to the file (nothing left to write, no conflict) is remembered as skippable.
        again = plan_series(store, instrument, frame, parsed.adjustment, parsed.source, calendar)
        if again.writes_nothing and not again.conflicts:
            skip = replace(report, new=0, unchanged=again.unchanged, replaced=[], standins=0, gaps=again.gaps,
                           events=[], jumps=[], skipped=True, warnings=plan_warnings(again, instrument))
            store.record_import_key(key, digest, instrument.code, instrument.exchange,
                                    validation_inputs(store, instrument, calendar), _remembered(skip))
    return report


def plan_warnings(plan: SeriesPlan, instrument: Instrument) -> list[str]:
    """The warnings a file's comparison with the stored series gives (gaps, stand-ins, an unverified kind)."""
    warnings: list[str] = []
    if plan.gaps:
        shown = ", ".join(map(str, plan.gaps[:10])) + (" …" if len(plan.gaps) > 10 else "")
        warnings.append(f"{len(plan.gaps)} trading day(s) missing with no suspension record "
                        f"(not bridged; a backtest holds the position, no fill): {shown}")
    if plan.standins:
        warnings.append(f"{plan.standins} forward-adjusted stand-in bar(s) replaced by unadjusted bars")
    if not instrument.verified:
        warnings.append(f"kind {instrument.kind.value} of {instrument.vt_symbol} is unverified ({instrument.source}); "
                        f"check it: python run.py instruments show {instrument.vt_symbol}")
    return warnings


def store_series(store: BarStore, instrument: Instrument, frame: pd.DataFrame,
                 adjustment: str, plan: SeriesPlan | None = None) -> tuple[list[str], list[AdjustmentEvent], list[Jump]]:
    """Write one validated series (inside the caller's transaction); return warnings, events, jumps.

    Unadjusted bars always win the bar table; a forward-adjusted (qfq) series only stands in for
    them while no unadjusted bars exist, and always feeds the factor derivation. With a ``plan``
    (:func:`plan_series`) only new and replaced rows are written; without one every row is upserted.
    Preclose events whose previous close changed are restated from the new close, and the derived
    factors (qfq_pair, inferred) are recomputed from everything now stored.
    """
    code, exchange = instrument.code, instrument.exchange
    warnings: list[str] = []
    traded = frame[~frame["suspended"].to_numpy()]
    before = store.bar_frame(code, exchange)["close"]
    if plan is not None:
        if plan.standins == 0:
            traded = traded[np.isin(_days(traded["date"]), plan.changed())]
        store.delete_bar_days(code, exchange, plan.drop_bars)
        store.clear_provisional(code, exchange, plan.provisional)
    basis = store.basis(code, exchange)
    if adjustment == "qfq":
        store.save_qfq(code, exchange, frame["date"], frame["close"].to_numpy())
        if basis in (None, "qfq"):
            store.save_bars(code, exchange, traded)
            restate_preclose(store, code, exchange, before)
            store.set_basis(code, exchange, "qfq")
            warnings.append("only forward-adjusted (qfq) prices are stored for this fund: fills before "
                            "its last distribution are not at real traded prices")
        else:
            warnings.append("unadjusted bars already stored are kept; the qfq closes derive adjustment factors")
    else:
        if basis == "qfq":
            store.delete_bars(code, exchange)  # real prices replace the adjusted stand-ins
        store.save_bars(code, exchange, traded)
        restate_preclose(store, code, exchange, before)
        store.set_basis(code, exchange, "unadjusted")
        if frame["preclose"].notna().any():
            # The file's reference prices decide every ex-date inside its span; older events elsewhere stay.
            first, last = frame["date"].iloc[0].date(), frame["date"].iloc[-1].date()
            kept = [e for e in store.events(code, exchange, ("preclose",)) if not first < e.ex_date <= last]
            store.replace_events(code, exchange, ("preclose",),
                                 merge_events(kept, from_preclose(frame["date"], frame["close"].to_numpy(),
                                                                  frame["preclose"].to_numpy())))
    store.save_flags(code, exchange, frame["date"], frame["suspended"].to_numpy(), frame["is_st"].to_numpy())
    store.rebuild_block(code, exchange)
    events, jumps = refresh_adjustments(store, instrument)
    return warnings, events, jumps


def restate_preclose(store: BarStore, code: str, exchange: str, before: pd.Series) -> None:
    """Preclose events use the previous day's close: where that close changed, restate the factor.

    An event's reference price is ``old close / old factor``; the new factor is ``new close /
    reference`` (dropped when it no longer moves the price by more than quote rounding).
    """
    events = store.events(code, exchange, ("preclose",))
    if not events or before.empty:
        return
    after = store.bar_frame(code, exchange)["close"]
    restated: list[AdjustmentEvent] = []
    for event in events:
        prior_old = before[before.index < pd.Timestamp(event.ex_date)]
        prior_new = after[after.index < pd.Timestamp(event.ex_date)]
        if prior_old.empty or prior_new.empty or (prior_old.index[-1] == prior_new.index[-1]
                                                  and prior_old.iloc[-1] == prior_new.iloc[-1]):
            restated.append(event)
            continue
        reference = prior_old.iloc[-1] / event.factor
        factor = float(prior_new.iloc[-1] / reference)
        if abs(factor - 1) > MIN_EFFECT:
            restated.append(AdjustmentEvent(event.ex_date, factor, "preclose",
                                            f"close {prior_new.iloc[-1]:g} → reference {reference:g}"))
    if restated != events:
        store.replace_events(code, exchange, ("preclose",), restated)


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
