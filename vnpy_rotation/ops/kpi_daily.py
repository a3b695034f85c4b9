"""The daily KPI routine of a run folder: snapshot, the one-page files, the history rows, one alert per breach.

``run.py kpi snapshot`` and the trading daemon's session close both call :func:`daily_kpis`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .kpi import KpiSnapshot, alert_text, snapshot_run, write_snapshot
from .kpi_config import KpiThresholds
from .kpi_store import record, run_key

KPI_BREACH = "kpi_breach"  # the notifier's kind (vnpy_rotation.notify.NotifyKind.KPI_BREACH)

Notify = Callable[[str, str, str], object]  # (kind, subject, content), as Notifier.notify


@dataclass(frozen=True)
class DailyKpis:
    snapshot: KpiSnapshot
    files: tuple[Path, Path]  # the markdown page and its JSON
    recorded: int  # history rows inserted (0: the same values were recorded before)
    alerts: int  # breach alerts sent


def alert_breaches(snapshot: KpiSnapshot, notify: Notify) -> int:
    """One ``kpi_breach`` message per breached KPI; returns how many were sent."""
    for row in snapshot.breaches:
        notify(KPI_BREACH, *alert_text(row))
    return len(snapshot.breaches)


def daily_kpis(run: Path, day: date | None = None, thresholds: KpiThresholds | None = None, *,
               replace: bool = False, notify: Notify | None = None) -> DailyKpis:
    """Snapshot ``run`` at ``day``, write ``OUT/kpi/kpi_<day>.md|json``, record the history (refused when other
    values were recorded for that day, unless ``replace``), then alert each breach through ``notify``."""
    snapshot = snapshot_run(run, day, thresholds)
    recorded = record(snapshot.rows, run_key(run), replace=replace)
    files = write_snapshot(snapshot)
    alerts = alert_breaches(snapshot, notify) if notify is not None else 0
    return DailyKpis(snapshot, files, recorded, alerts)
