"""Scripted quotes for the monitor tests: ``quote("10:00:03", 10.9, ...)`` on a fixed trading day."""

from __future__ import annotations

from datetime import date, datetime

from vnpy_rotation.monitor.records import Quote

DAY = date(2024, 3, 1)  # a Friday, a trading day


def at(hms: str, day: date = DAY) -> datetime:
    """A wall time on ``day`` from ``HH:MM`` or ``HH:MM:SS``."""
    parts = [int(p) for p in hms.split(":")] + [0]
    return datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2])


def quote(hms: str, last: float, volume: float = 0.0, turnover: float = 0.0, *, vt_symbol: str = "600000.SSE",
          pre_close: float = 10.0, open: float | None = None, day: date = DAY, **fields: float | bool | None) -> Quote:
    """A quote; ``open`` defaults to the previous close (no gap) once there is a price."""
    opened = (pre_close if last > 0 else 0.0) if open is None else open
    return Quote(vt_symbol, at(hms, day), last, pre_close, volume, turnover, opened, **fields)  # type: ignore[arg-type]
