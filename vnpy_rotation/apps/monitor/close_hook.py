"""The monitor's end of day after the rotation app's close: :meth:`MonitorEngine.close_day` (open minute bars
closed and saved, each symbol's daily bar from ticks stored as provisional), once per trading day.

A ``day_closed`` callback of the rotation engine, like the daemon's KPI snapshot. The monitor app registers it
itself when it starts in a MainEngine that also runs the rotation app — the GUI, or the live daemon's stack with
the monitor app added — so there is one registration path and the daemon needs no code of its own. It does
nothing once the monitor app is not watching anything. A failure is logged and sent as a ``failure`` notification; trading
goes on.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable

MONITOR_APP = "RotationMonitor"  # engine.APP_NAME (not imported: the daemon loads this without Qt or the app)


class MonitorCloseDay:
    """``callback(strategy, progress, summary)``: the monitor's ``close_day`` for ``summary["day"]``, once."""

    def __init__(self, main_engine: Any, notify: Callable[[str, str, str], object],
                 log: Callable[[str], None]) -> None:
        self.main_engine = main_engine
        self.notify = notify
        self.log = log

    def __call__(self, strategy: str, progress: Any, summary: dict[str, Any]) -> None:
        day = date.fromisoformat(summary["day"])
        engines = getattr(self.main_engine, "engines", {})
        monitor = engines.get(MONITOR_APP)
        # once a day, on the engine: several strategies close the same day and both the daemon and the
        # monitor app itself may have registered a hook
        if monitor is None or not monitor.watchlist or monitor.closed_day == day:
            return
        monitor.closed_day = day
        try:
            written = monitor.close_day()
        except Exception as exc:  # the monitor is an observer: its failure must not stop trading
            message = f"market monitor end of day {day} failed: {type(exc).__name__}: {exc}"
            self.log(message)
            self.notify("failure", f"market monitor close {day} failed", message)
            return
        self.log(f"行情监控收盘: {sum(len(days) for days in written.values())} 根临时日线 ({day})")
