"""The daemon's daily KPI snapshot: after each session's journal, ``run.py kpi snapshot`` for that day.

A failure here never stops trading: it is logged and sent as a ``failure`` notification.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable

from ...live.plan import DayProgress
from ...ops.kpi_config import KpiThresholds
from ...ops.kpi_daily import daily_kpis


class SessionKpis:
    """A ``day_closed`` callback (after :class:`~.journal.DayJournal`, whose tables it reads)."""

    def __init__(self, out: Path, notify: Callable[[str, str, str], object], log: Callable[[str], None],
                 thresholds: KpiThresholds | None = None) -> None:
        self.out = Path(out)
        self.thresholds = thresholds
        self.notify = notify
        self.log = log

    def __call__(self, strategy: str, progress: DayProgress | None, summary: dict[str, Any]) -> None:
        day = date.fromisoformat(summary["day"])
        try:
            done = daily_kpis(self.out, day, self.thresholds, notify=self.notify)
        except Exception as exc:  # the KPIs are an observer: a bug or a conflict there must not stop trading
            message = f"KPI snapshot of {day} failed: {type(exc).__name__}: {exc}"
            self.log(message)
            self.notify("failure", f"KPI snapshot {strategy} {day} failed", message)
            return
        if done.snapshot.breaches:
            self.log(f"KPI snapshot {day}: {len(done.snapshot.breaches)} breaches ({done.files[0]})")
