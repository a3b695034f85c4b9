"""Execution statistics of a daemon's output folder: the journal, the session log and the bar store together.

:func:`benchmarks` takes the decision prices (the previous session's close, put on the session's share basis
by the adjustment factors, so a split between decision and fill is not slippage) and the session's open and
VWAP (turnover / volume) from the daily panels; :func:`session_starts` the time each session's ``open``
phase started from ``sessions.csv``; :func:`run_stats` puts them through
:func:`~vnpy_rotation.live.execution_inputs.from_journal` and
:func:`~vnpy_rotation.attribution.execution.execution_stats`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.execution import ExecutionStats, MarketPrice, execution_stats
from ..data.panels import Panels, load_panels
from ..data.store import BarStore
from ..live.execution_inputs import from_journal
from ..live.session_log import SESSIONS_FILE, read_rows
from ..risk.events import RiskDenial

JOURNAL = "journal"  # the daemon's folder of one JSON record per closed session (apps/rotation/journal.py)


def read_journal(out: Path) -> list[dict[str, Any]]:
    """The daemon's journal records, by session."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((Path(out) / JOURNAL).glob("*.json"))]


def benchmarks(panels: Panels, keys: Iterable[tuple[date, str]],
               ) -> tuple[dict[tuple[date, str], float], dict[tuple[date, str], MarketPrice]]:
    """(decision price, open/VWAP) per (session, symbol) in ``keys`` found in ``panels``: the decision price is
    the close of the panels' previous day × its adjustment factor / the session's (NaN: no earlier close)."""
    days = pd.DatetimeIndex(panels.days)
    decision: dict[tuple[date, str], float] = {}
    market: dict[tuple[date, str], MarketPrice] = {}
    for day, symbol in keys:
        if symbol not in panels.close.columns:
            continue
        i = days.searchsorted(pd.Timestamp(day))
        if i >= len(days) or days[i].date() != day:
            continue
        opened = float(panels.open[symbol].iloc[i])
        volume = float(panels.volume[symbol].iloc[i])
        vwap = float(panels.turnover[symbol].iloc[i]) / volume if volume > 0 else math.nan
        market[(day, symbol)] = MarketPrice(opened, vwap)
        if i > 0:
            factor = panels.factor[symbol]
            before, now = float(factor.iloc[i - 1]), float(factor.iloc[i])
            scale = before / now if np.isfinite(before) and np.isfinite(now) and now > 0 else 1.0
            decision[(day, symbol)] = float(panels.close[symbol].iloc[i - 1]) * scale
    return decision, market


def session_starts(out: Path) -> dict[date, datetime]:
    """When each session's ``open`` phase started (the earliest row: a restart's rerun is later)."""
    rows = read_rows(Path(out) / SESSIONS_FILE)
    starts: dict[date, datetime] = {}
    for _, row in rows[(rows["phase"] == "open") & (rows["started_at"] != "")].iterrows():
        day, at = date.fromisoformat(row["date"]), datetime.fromisoformat(row["started_at"])
        starts[day] = min(starts.get(day, at), at)
    return starts


def read_denials(path: Path | None) -> list[RiskDenial]:
    """The risk engine's denial log (one JSON object per line); an absent file: none."""
    if path is None or not Path(path).exists():
        return []
    return [RiskDenial.from_json(json.loads(line)) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def run_stats(out: Path, account: str, day: date | None = None, *, panels: Panels | None = None,
              store: BarStore | None = None, denial_log: Path | None = None) -> tuple[ExecutionStats, ...]:
    """Statistics of the daemon's output folder ``out`` (one strategy trading ``account``) for ``day`` (default:
    the last session journaled) and cumulated. ``panels`` default: read from ``store`` for the symbols traded."""
    records = read_journal(out)
    sessions = [date.fromisoformat(r["summary"]["day"]) for r in records]
    if not sessions:
        return ()
    keys = {(date.fromisoformat(r["progress"]["day"]), x["symbol"]) for r in records if r.get("progress")
            for part in ("orders", "legs") for x in r["progress"].get(part, [])}
    if panels is None and keys:
        # a fortnight before the first session covers its previous close across a holiday
        panels = load_panels(sorted({s for _, s in keys}), min(sessions) - timedelta(days=15), max(sessions), store=store)
    decision, market = benchmarks(panels, keys) if panels is not None else ({}, {})
    inputs = from_journal(records, account, decision_prices=decision, market=market, sent=session_starts(out),
                          denials=read_denials(denial_log))
    return execution_stats(inputs, day or max(sessions))
