"""Puts the session phases on the event queue: live at the exchange's times, or replay sessions on demand.

The daemon and the GUI share it. A replay session waits for the queue to drain after each step, because
each phase's orders and fills (events themselves) must be handled before the next phase begins.
"""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Callable

import pandas as pd
from vnpy.event import Event, EventEngine

from ...live.schedule import SHANGHAI, SessionTimes, next_phase
from ...market.calendar import default_calendar

EVENT_ROTATION_PHASE = "eRotationPhase"
EVENT_BARRIER = "eRotationBarrier"
SESSION = ("open", "retry", "deadline")


class Phase:
    """A clock tick: the phase of the session ``day`` that has begun."""

    __slots__ = ("name", "day")

    def __init__(self, name: str, day: date) -> None:
        self.name, self.day = name, day


class SessionClock:
    def __init__(self, event_engine: EventEngine) -> None:
        self.event_engine = event_engine
        self.event_engine.register(EVENT_BARRIER, lambda event: event.data.set())
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self, timeout: float = 120.0) -> None:
        """Return once every event put so far, and every event those caused, has been processed."""
        while True:
            done = threading.Event()
            self.event_engine.put(Event(EVENT_BARRIER, done))
            if not done.wait(timeout):
                raise TimeoutError("the event engine did not drain")
            if self.event_engine._queue.empty():  # noqa: SLF001 (vnpy exposes no idle signal)
                return

    def phase(self, name: str, day: date) -> None:
        self.event_engine.put(Event(EVENT_ROTATION_PHASE, Phase(name, day)))
        self.drain()

    def replay_session(self, gateway, day: pd.Timestamp,
                       around: Callable[[str, date, Callable[[], None]], None] | None = None) -> None:
        """One session of a :class:`~vnpy_rotation.gateways.replay.ReplayGateway` (or a list of them, one per
        account): open, retry, deadline on the
        opening ticks, then the close on the closing ticks. ``around`` runs each phase (the session log)."""
        run = around or (lambda name, today, step: step())
        gateways = list(gateway) if isinstance(gateway, (list, tuple)) else [gateway]  # several accounts
        for one in gateways:
            one.begin_day(day)
        self.drain()
        for name in SESSION:
            run(name, day.date(), lambda name=name: self.phase(name, day.date()))
        for one in gateways:
            one.end_day(day)
        self.drain()
        run("close", day.date(), lambda: self.phase("close", day.date()))

    def replay_next(self, gateway) -> date | None:
        """The replay gateway's next session after the one it is in (None when the span is over)."""
        current = gateway.book.state.day if gateway.book else ""
        upcoming = [d for d in gateway.sessions() if d.date().isoformat() > current]
        if not upcoming:
            return None
        self.replay_session(gateway, upcoming[0])
        return upcoming[0].date()

    def start_live(self, times: SessionTimes = SessionTimes(),
                   now: Callable[[], datetime] = lambda: datetime.now(SHANGHAI)) -> None:
        """Run the phases at the exchange's times on a background thread until :meth:`stop`."""
        if self._thread is not None:
            return

        def loop() -> None:
            done = None
            calendar = default_calendar()
            while not self.stop_event.is_set():
                due = next_phase(now(), calendar, times, done)
                wait = (due.at - now()).total_seconds()
                if wait > 0 and self.stop_event.wait(wait):
                    return
                self.event_engine.put(Event(EVENT_ROTATION_PHASE, Phase(due.phase, due.day)))
                done = (due.day, due.index)

        self._thread = threading.Thread(target=loop, name="rotation-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
