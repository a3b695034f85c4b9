"""Availability of the trading daemon from its session log (``OUT/sessions.csv``, :mod:`vnpy_rotation.live.session_log`).

Availability over a window = slots completed ``ok`` on time / slots scheduled. The slots come from the
schedule, not from the log, so a day the log has no row for (the daemon was down and has not restarted
since, or rows were lost) counts against it. A slot counts as available when one of its rows ran
(``ok`` or ``late``) and started at most ``tolerance`` after its time; a replay's rows start on time by
construction (its clock is simulated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from ..errors import InputRejected, Problem
from ..live.schedule import SessionTimes
from ..live.session_log import (
    COLUMNS,
    LATE_AFTER,
    OUTCOMES,
    SESSIONS_FILE,
    Slot,
    live_phases,
    read_rows,
    replay_phases,
    slots,
    stamp,
)
from ..live.state_file import read_json
from ..market.calendar import default_calendar

ABSENT = "absent"  # a scheduled slot without any row


@dataclass(frozen=True)
class Availability:
    """Counts over the scheduled slots of a window; each slot is classed by its best row."""

    scheduled: int
    available: int  # ran ok and on time within the tolerance
    late: int  # ran, started after the tolerance
    failed: int
    missed: int  # a ``missed`` row
    absent: int  # no row at all
    slots: pd.DataFrame  # date, phase, scheduled_at, outcome (best row or ``absent``), available

    @property
    def value(self) -> float | None:
        """available / scheduled, None when nothing was scheduled."""
        return self.available / self.scheduled if self.scheduled else None


def read_log(path: Path) -> pd.DataFrame:
    """``sessions.csv`` checked row by row: a bad outcome or time is refused as ``file:line: reason``."""
    rows = read_rows(path)
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise InputRejected(Problem(str(path), 1, f"no column {missing[0]!r}"))
    bad = rows.index[~rows["outcome"].isin(OUTCOMES)]
    if len(bad):
        raise InputRejected(Problem(str(path), int(bad[0]) + 2, f"outcome {rows['outcome'].iloc[bad[0]]!r} is not "
                                    f"one of {', '.join(OUTCOMES)}"))
    for column in ("scheduled_at", "started_at"):
        parsed = pd.to_datetime(rows[column].replace("", None), utc=True, format="ISO8601", errors="coerce")
        bad = rows.index[parsed.isna() & (rows[column] != "" if column == "started_at" else True)]
        if len(bad):
            raise InputRejected(Problem(str(path), int(bad[0]) + 2, f"{column}: not a time "
                                        f"({rows[column].iloc[bad[0]]!r})"))
    return rows


def availability(log: pd.DataFrame, schedule: Sequence[Slot], tolerance: timedelta = LATE_AFTER) -> Availability:
    """Class every slot of ``schedule`` by the best of its rows in ``log`` (:data:`COLUMNS`, as strings)."""
    wanted = pd.DataFrame({"date": [s.day.isoformat() for s in schedule], "phase": [s.phase for s in schedule],
                           "scheduled_at": [stamp(s.at) for s in schedule],
                           "at": pd.to_datetime([s.at for s in schedule], utc=True)})
    rows = log.loc[:, list(COLUMNS)].copy()
    due = pd.to_datetime(rows["scheduled_at"], utc=True, format="ISO8601")
    started = pd.to_datetime(rows["started_at"].replace("", None), utc=True, format="ISO8601")
    ran = rows["outcome"].isin(("ok", "late"))
    # a row without a start time is a close done before a restart (its row was lost): it ran, time unknown
    rows["on_time"] = ran & (started.isna() | (started - due <= pd.Timedelta(tolerance)))
    rows["rank"] = rows["outcome"].map({o: i for i, o in enumerate(OUTCOMES)})
    rows["at"] = due  # matched as instants: a hand-edited row may write the time another way
    best = rows.sort_values(["on_time", "rank"], ascending=[False, True]).drop_duplicates(["date", "phase", "at"])
    merged = wanted.merge(best[["date", "phase", "at", "outcome", "on_time"]], how="left",
                          on=["date", "phase", "at"]).drop(columns="at")
    merged["outcome"] = merged["outcome"].fillna(ABSENT)
    merged["available"] = merged["on_time"].fillna(False).astype(bool)
    counts = merged["outcome"].value_counts()
    late = int((merged["outcome"].isin(("ok", "late")) & ~merged["available"]).sum())
    return Availability(scheduled=len(merged), available=int(merged["available"].sum()), late=late,
                        failed=int(counts.get("failed", 0)), missed=int(counts.get("missed", 0)),
                        absent=int(counts.get(ABSENT, 0)), slots=merged.drop(columns="on_time"))


def run_schedule(run: Path, start: date, end: date, as_of: datetime | None = None,
                 times: SessionTimes = SessionTimes()) -> list[Slot]:
    """The slots a run's daemon had to run from ``start`` to ``end``: a replay's are its sessions (the days in
    ``daily_summary.csv``) with the replay's phases; a live run's are the trading days from its first logged
    day with every live phase, up to ``as_of``."""
    parameters = (read_json(run / "state" / "run_parameters.json") or {}).get("parameters") or {}
    if parameters.get("gateway") == "replay":
        summary = run / "daily_summary.csv"
        days = pd.to_datetime(pd.read_csv(summary, usecols=["date"])["date"]) if summary.exists() else pd.Series([])
        chosen = [d.date() for d in days if start <= d.date() <= end]
        return slots(chosen, replay_phases(times))
    logged = read_rows(run / SESSIONS_FILE)["date"]
    if not len(logged):
        return []
    first = max(start, date.fromisoformat(min(logged)))
    schedule = slots([d.date() for d in default_calendar().between(first, end)], live_phases(times))
    return [s for s in schedule if as_of is None or s.at <= as_of]
