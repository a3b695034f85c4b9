"""A scripted tick file and its replay through :class:`~vnpy_rotation.monitor.core.MonitorCore`.

The file is CSV with a header; ``datetime, vt_symbol, last, pre_close`` are required, the other
:class:`~vnpy_rotation.monitor.records.Quote` fields are optional columns (``volume`` cumulative shares,
``turnover`` cumulative CNY, ``open, high, low, limit_up, limit_down, bid1, ask1, bid1_volume, ask1_volume``,
``suspended`` 0/1), plus ``avg_volume_5d`` (shares a day, the 量比 reference; the first non-empty value per
symbol is used). Times are China wall time, in file order (a replay cannot go back in time).
"""

from __future__ import annotations

import csv
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence, TextIO

from ..errors import InputRejected, Problem
from ..monitor.core import MonitorCore, Reference
from ..monitor.records import Alert, Quote
from ..monitor.session import wall
from ..monitor.view import MonitorView
from ..monitor.watchlist import VT_SYMBOL

REQUIRED = ("datetime", "vt_symbol", "last", "pre_close")
PRICES = ("open", "high", "low", "limit_up", "limit_down", "bid1", "ask1")
AMOUNTS = ("volume", "turnover", "bid1_volume", "ask1_volume")
OPTIONAL = (*AMOUNTS, *PRICES, "suspended", "avg_volume_5d")
FLAGS = {"": None, "0": False, "1": True, "false": False, "true": True}
MAX_PROBLEMS = 20  # a wholly wrong file is reported by its first problems, not thousands of lines


@dataclass(frozen=True)
class TickFile:
    """The quotes of a tick file in file order, and each symbol's 5-day average volume where given."""

    quotes: tuple[Quote, ...]
    references: tuple[Reference, ...]

    def symbols(self) -> list[str]:
        """The symbols in order of first appearance."""
        return list(dict.fromkeys(q.vt_symbol for q in self.quotes))


def _number(text: str, field: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{field}: {text!r} must be {'positive' if positive else 'zero or positive'}")
    return value


def _quote(row: dict[str, str], previous: datetime | None) -> tuple[Quote, float | None]:
    text = row["datetime"].strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"datetime: {text!r} is not an ISO date-time (2026-12-03 09:30:03)") from None
    if previous is not None and wall(moment) < previous:
        raise ValueError(f"datetime: {text} is earlier than the line before (a replay runs in file order)")
    vt_symbol = row["vt_symbol"].strip()
    if not VT_SYMBOL.match(vt_symbol):
        raise ValueError(f"vt_symbol: {vt_symbol!r} is not CODE.SSE, CODE.SZSE or CODE.BSE")
    suspended_text = (row.get("suspended") or "").strip().lower()
    if suspended_text not in FLAGS:
        raise ValueError(f"suspended: {suspended_text!r} is not 0 or 1")
    suspended = FLAGS[suspended_text]
    values = {f: _number(row[f].strip(), f, positive=not suspended) for f in ("last", "pre_close")}
    for field in (*AMOUNTS, *PRICES):
        cell = (row.get(field) or "").strip()
        values[field] = _number(cell, field, positive=False) if cell else 0.0
    average_text = (row.get("avg_volume_5d") or "").strip()
    average = _number(average_text, "avg_volume_5d", positive=True) if average_text else None
    return Quote(vt_symbol, moment, suspended=suspended, **values), average


def read_ticks(path: Path) -> TickFile:
    """The validated tick file; every problem is reported as ``file:line: field: reason`` (nothing replayed)."""
    source = str(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputRejected(Problem(source, None, f"cannot read the tick file: {exc.strerror}")) from None
    problems: list[Problem] = []
    quotes: list[Quote] = []
    averages: dict[str, float] = {}
    try:
        with handle:
            _read_rows(handle, source, problems, quotes, averages)
    except UnicodeDecodeError:
        raise InputRejected(Problem(source, None, "not UTF-8 text")) from None
    if not problems and not quotes:
        problems.append(Problem(source, None, "no ticks (a header and at least one row are needed)"))
    if problems:
        raise InputRejected(problems)
    return TickFile(tuple(quotes), tuple(Reference(s, avg_volume_5d=a) for s, a in averages.items()))


def _read_rows(handle: TextIO, source: str, problems: list[Problem], quotes: list[Quote],
               averages: dict[str, float]) -> None:
    """Check the header (refused at line 1) and read each row into ``quotes`` or ``problems``."""
    reader = csv.DictReader(handle)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if missing or unknown or repeated:
        reason = "; ".join(filter(None, (missing and f"missing columns {', '.join(missing)}",
                                         unknown and f"unknown columns {', '.join(unknown)}",
                                         repeated and f"repeated columns {', '.join(repeated)}")))
        raise InputRejected(Problem(source, 1, f"{reason} (columns: {', '.join(REQUIRED + OPTIONAL)})"))
    reader.fieldnames = header
    previous: datetime | None = None
    for row in reader:
        if None in row or any(row.get(name) is None for name in header):
            problems.append(Problem(source, reader.line_num, f"{len(header)} cells expected"))
        else:
            try:
                quote, average = _quote(row, previous)
            except ValueError as exc:
                problems.append(Problem(source, reader.line_num, str(exc)))
            else:
                previous = wall(quote.datetime)
                quotes.append(quote)
                if average is not None:
                    averages.setdefault(quote.vt_symbol, average)
        if len(problems) >= MAX_PROBLEMS:
            break


class ReplayFeed:
    """A :class:`~vnpy_rotation.monitor.view.MonitorFeed` replaying a tick file over a :class:`MonitorCore`.

    The replay clock starts at the first tick at the first :meth:`poll` and runs ``speed`` times the wall
    clock (``speed`` 0: everything at once). It stops at the last tick: a finished file is not a stale feed.
    The core's timer runs at most once per replayed second, at quote times and at each poll.
    """

    def __init__(self, ticks: TickFile, watchlist: Sequence[str] = (), *, speed: float = 1.0,
                 core: MonitorCore | None = None, keep_alerts: int = 200) -> None:
        self.watchlist = tuple(watchlist) or tuple(ticks.symbols())
        watched = set(self.watchlist)
        self._quotes = [q for q in ticks.quotes if q.vt_symbol in watched]
        self.core = core or MonitorCore(references=[r for r in ticks.references if r.vt_symbol in watched])
        self.speed = speed
        self._start = wall(ticks.quotes[0].datetime)
        self._end = max(self._start, *(wall(q.datetime) for q in self._quotes)) if self._quotes else self._start
        self._next = 0
        self._wall0: datetime | None = None
        self._clock = self._start
        self._timer_second: datetime | None = None
        self._alerts: deque[Alert] = deque(maxlen=keep_alerts)
        self.core.watch(self.watchlist, self._start)

    @property
    def finished(self) -> bool:
        """Every tick of the file has been replayed."""
        return self._next >= len(self._quotes)

    def poll(self, now: datetime) -> MonitorView:
        if self._wall0 is None:
            self._wall0 = now
        target = self._end if self.speed == 0 else self._start + (now - self._wall0) * self.speed
        target = min(target, self._end)
        while self._next < len(self._quotes) and wall(self._quotes[self._next].datetime) <= target:
            quote = self._quotes[self._next]
            self._next += 1
            self._timer(wall(quote.datetime))
            self._alerts.extend(self.core.on_quote(quote))
        self._clock = max(self._clock, target)
        self._timer(self._clock)
        return self.view()

    def view(self) -> MonitorView:
        """What the replay shows now (no advance)."""
        snapshot = self.core.snapshot()
        return MonitorView(self._clock, tuple((s, snapshot.get(s)) for s in self.watchlist), tuple(self._alerts))

    def close(self) -> None:
        """Nothing to release: the replay holds no connection."""

    def _timer(self, moment: datetime) -> None:
        second = moment.replace(microsecond=0)
        if self._timer_second is None or second > self._timer_second:
            self._timer_second = second
            self._alerts.extend(self.core.on_timer(moment))


def replay_all(feed: ReplayFeed, now: datetime) -> MonitorView:
    """Replay the whole file at once (``--once``): the view after the last tick."""
    feed.speed = 0
    return feed.poll(now)

