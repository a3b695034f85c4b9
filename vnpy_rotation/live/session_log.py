"""The daemon's session log: one row per scheduled phase in ``OUT/sessions.csv``, for availability.

Columns: :data:`COLUMNS`. ``outcome`` is ``ok`` (ran, the strategy still trading, started within
:data:`LATE_AFTER` of its time), ``late`` (ran, started later), ``failed`` (the phase raised or stopped the
strategy; ``detail`` says why) or ``missed`` (the schedule had it and the daemon did not run it).

The file is appended to, one flushed and fsynced row at a time, never rewritten: a crash loses at most the row
of the phase it interrupted. A phase without a row is found when the daemon next runs a phase: every slot of
the schedule after the latest one logged and before the one about to run is written as ``missed`` (the first
start of a daemon writes none: there is no "before"). A restart after a crash re-runs the day's phases whose
window is still open; they get rows of their own (usually ``late``) beside the on-time rows written before
the crash, so one slot may have several rows: availability counts a slot once, by its best row.

Times are ISO 8601 with the offset. Live, they are the daemon's clock. A replay has no wall-clock schedule: its
clock is simulated, each phase starts at its scheduled time and finishes after the wall time it took.
"""

from __future__ import annotations

import csv
import os
import time as wall
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pandas as pd

from ..market.calendar import TradingCalendar
from .schedule import SHANGHAI, SessionTimes

SESSIONS_FILE = "sessions.csv"
COLUMNS = ("date", "phase", "scheduled_at", "started_at", "finished_at", "outcome", "detail")
OUTCOMES = ("ok", "late", "failed", "missed")  # best first: a slot with several rows counts by its best
LATE_AFTER = timedelta(minutes=5)  # a phase started later than this after its time is late
NOT_RUNNING = "not run: the daemon was down (or busy) through the phase's window"
STRATEGY_STOPPED = "the strategy stopped"


@dataclass(frozen=True)
class Slot:
    """One scheduled phase: ``phase`` of session ``day`` due at ``at`` (timezone-aware)."""

    day: date
    phase: str
    at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return self.day.isoformat(), self.phase, stamp(self.at)


def stamp(moment: datetime | None) -> str:
    """A log time: ISO 8601 in Asia/Shanghai with milliseconds ("" for none)."""
    return "" if moment is None else moment.astimezone(SHANGHAI).isoformat(timespec="milliseconds")


def live_phases(times: SessionTimes) -> list[tuple[str, time]]:
    """The live daemon's phases of a session, in order: :meth:`SessionTimes.phases` (every retry)."""
    return [(name, when) for name, when, _ in times.phases()]


def replay_phases(times: SessionTimes) -> list[tuple[str, time]]:
    """A replay's phases of a session: open, one retry, deadline and close (the replay clock's session runs
    a single retry), at the live times."""
    return [("open", times.open), ("retry", times.retries[0]), ("deadline", times.deadline), ("close", times.close)]


def slots(days: Iterable[date], phases: Sequence[tuple[str, time]]) -> list[Slot]:
    """Every phase of every day, in time order."""
    return [Slot(day, name, datetime.combine(day, when, SHANGHAI)) for day in sorted(days) for name, when in phases]


def close_slot(day: date, times: SessionTimes) -> Slot:
    """The close of session ``day``."""
    return Slot(day, "close", datetime.combine(day, times.close, SHANGHAI))


def live_schedule(calendar: TradingCalendar, times: SessionTimes, start: date, end: date) -> list[Slot]:
    """The live slots of the trading days ``start`` … ``end``."""
    return slots([d.date() for d in calendar.between(start, end)], live_phases(times))


def between(schedule: Iterable[Slot], after: datetime | None, before: datetime) -> list[Slot]:
    """The slots strictly after ``after`` and strictly before ``before`` (none when ``after`` is None)."""
    if after is None:
        return []
    return [s for s in schedule if after < s.at < before]


class SessionLog:
    """``OUT/sessions.csv``: append rows, fill the gaps before a phase, time a phase and write its row."""

    def __init__(self, out: Path, late_after: timedelta = LATE_AFTER) -> None:
        self.path = Path(out) / SESSIONS_FILE
        self.late_after = late_after
        self._repair()
        rows = read_rows(self.path)
        self.keys: set[tuple[str, str, str]] = set(zip(rows["date"], rows["phase"], rows["scheduled_at"]))
        times = pd.to_datetime(rows["scheduled_at"], utc=True, format="ISO8601")
        self.latest: datetime | None = times.max().to_pydatetime() if len(times) else None

    def _repair(self) -> None:
        """Cut a torn last line (a crash mid-write), so the next row starts on a line of its own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as log:
                log.truncate(data.rfind(b"\n") + 1)

    def write(self, slot: Slot, started: datetime | None, finished: datetime | None, outcome: str,
              detail: str = "") -> None:
        """Append one row, flushed to disk before returning."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", encoding="utf-8", newline="") as log:
            writer = csv.writer(log, lineterminator="\n")
            if new:
                writer.writerow(COLUMNS)
            writer.writerow([slot.day.isoformat(), slot.phase, stamp(slot.at), stamp(started), stamp(finished),
                             outcome, " ".join(detail.split())])
            log.flush()
            os.fsync(log.fileno())
        self.keys.add(slot.key)
        if self.latest is None or slot.at > self.latest:
            self.latest = slot.at

    def fill_missed(self, schedule: Iterable[Slot], before: datetime, detail: str = NOT_RUNNING) -> list[Slot]:
        """Write ``missed`` for every slot of ``schedule`` after the latest logged and before ``before``."""
        missed = [s for s in between(schedule, self.latest, before) if s.key not in self.keys]
        for slot in missed:
            self.write(slot, None, None, "missed", detail)
        return missed

    def note_done(self, slot: Slot, detail: str) -> None:
        """``slot`` was done before a restart (e.g. the close, per the strategy's state) but may have no row:
        write an ``ok`` row without times unless it has one."""
        if slot.key not in self.keys:
            self.write(slot, None, None, "ok", detail)

    def run(self, slot: Slot, action: Callable[[], str | None],
            now: Callable[[], datetime] | None = None) -> str:
        """Run ``action`` (it returns why the phase failed, or None) and write the slot's row; returns the
        outcome. ``now`` is the daemon's clock; None: a replay's simulated clock. An exception is written as
        ``failed`` and raised again."""
        began = wall.perf_counter()
        started = now() if now is not None else slot.at

        def finished() -> datetime:
            return now() if now is not None else slot.at + timedelta(seconds=wall.perf_counter() - began)

        try:
            error = action()
        except BaseException as exc:
            self.write(slot, started, finished(), "failed", f"{type(exc).__name__}: {exc}")
            raise
        outcome = "failed" if error else "late" if started - slot.at > self.late_after else "ok"
        self.write(slot, started, finished(), outcome, error or "")
        return outcome

    def around(self, schedule: Sequence[Slot], failure: Callable[[], str | None]
               ) -> Callable[[str, date, Callable[[], None]], None]:
        """For a replay's clock: run each phase step through :meth:`run` on its slot of ``schedule`` (one
        per day and phase), the gap before it filled first; ``failure`` says why the phase failed, or None."""
        by_phase = {(s.day, s.phase): s for s in schedule}

        def step(phase: str, day: date, action: Callable[[], None]) -> None:
            slot = by_phase[(day, phase)]
            self.fill_missed(schedule, slot.at)
            self.run(slot, lambda: action() or failure())

        return step


def read_rows(path: Path) -> pd.DataFrame:
    """The log's rows as strings (an absent file: no rows), columns :data:`COLUMNS`."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=list(COLUMNS), dtype=str)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.reindex(columns=list(COLUMNS), fill_value="")
