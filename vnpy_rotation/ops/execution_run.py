"""Execution statistics of a daemon's output folder: the journal, the session log and the bar store together.

:func:`benchmarks` takes the decision prices (the previous session's close, put on the session's share basis
by the adjustment factors, so a split between decision and fill is not slippage) and the session's open and
VWAP (turnover / volume) from the daily panels; :func:`session_starts` the time each session's ``open``
phase started from ``sessions.csv``; :func:`run_stats` puts them through
:func:`~vnpy_rotation.live.execution_inputs.from_journal` and
:func:`~vnpy_rotation.attribution.execution.execution_stats`.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable
from dataclasses import MISSING, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.execution import ExecutionStats, MarketPrice, execution_stats
from ..data.panels import Panels, load_panels
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..live.execution_inputs import from_journal
from ..live.plan import FillRecord, LegRecord, OrderRecord
from ..live.session_log import SESSIONS_FILE, read_rows
from ..risk.events import RiskDenial

JOURNAL = "journal"  # the daemon's folder of one JSON record per closed session (apps/rotation/journal.py)


def read_journal(out: Path) -> list[dict[str, Any]]:
    """The daemon's journal records, by session; a damaged or foreign file is refused naming itself and the
    line (bad JSON; a misplaced field too when the file has the daemon's layout) and field at fault."""
    return [_journal_record(p) for p in sorted((Path(out) / JOURNAL).glob("*.json"))]


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "float": (int, float), "int": (int,), "bool": (bool,),
                                       "list[str]": (list,), "dict[str, float]": (dict,)}


def _journal_record(path: Path) -> dict[str, Any]:
    """One journal file, checked for what the statistics read (see :func:`read_journal`)."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InputRejected(Problem(str(path), None, f"not a journal record: not UTF-8 text ({exc.reason})")) from None
    except json.JSONDecodeError as exc:
        raise InputRejected(Problem(str(path), exc.lineno,
                                    f"not a journal record: invalid JSON ({exc.msg}, column {exc.colno})")) from None
    problem = _record_problem(raw)
    if problem is not None:
        where, why = problem
        raise InputRejected(Problem(str(path), _line_of(raw, text, where), f"{'.'.join(map(str, where))}: {why}"))
    return raw


def _record_problem(raw: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The first field of a journal record the statistics cannot read, and why (None: readable)."""
    if not isinstance(raw, dict):
        return (), "not a JSON object"
    if not isinstance(raw.get("strategy"), str) or not raw["strategy"]:
        return ("strategy",), "missing or not a strategy name"
    summary = raw.get("summary")
    if not isinstance(summary, dict):
        return ("summary",), "missing or not an object"
    if _day_problem(summary.get("day")):
        return ("summary", "day"), _day_problem(summary.get("day"))
    progress = raw.get("progress")
    if progress is None:
        return None
    if not isinstance(progress, dict):
        return ("progress",), "not an object (or null)"
    if _day_problem(progress.get("day")):
        return ("progress", "day"), _day_problem(progress.get("day"))
    for part, kind in (("legs", LegRecord), ("orders", OrderRecord), ("fills", FillRecord)):
        rows = progress.get(part, [])
        if not isinstance(rows, list):
            return ("progress", part), "not a list"
        for k, row in enumerate(rows):
            if not isinstance(row, dict):
                return ("progress", part, k), "not an object"
            for f in fields(kind):
                required = f.default is MISSING and f.default_factory is MISSING
                if f.name not in row:
                    if required:
                        return ("progress", part, k), f"{f.name} is missing"
                    continue
                value, types = row[f.name], _TYPES.get(str(f.type))
                if types is not None and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
                    return ("progress", part, k, f.name), f"{value!r} is not a {f.type}"
    return None


def _day_problem(value: Any) -> str:
    """Why ``value`` is not an ISO date ("" when it is one)."""
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a date (YYYY-MM-DD)"
    return ""


def _line_of(raw: Any, text: str, where: tuple[str | int, ...]) -> int | None:
    """The line of the field at ``where`` when the file has the daemon's layout (``json.dump`` with
    ``indent=1``, as :func:`~vnpy_rotation.live.state_file.write_atomic` writes it); None otherwise."""
    if not where or json.dumps(raw, ensure_ascii=False, indent=1) != text.rstrip("\n"):
        return None
    marker = "\u0000field\u0000"
    node = copy.deepcopy(raw)
    parent = node
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = marker
    dumped = json.dumps(node, ensure_ascii=False, indent=1)
    return dumped[:dumped.index(json.dumps(marker))].count("\n") + 1


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
    path = Path(out) / SESSIONS_FILE
    try:
        rows = read_rows(path)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
        raise InputRejected(Problem(str(path), None, f"not a session log: {exc}")) from None
    starts: dict[date, datetime] = {}
    for k, row in rows[(rows["phase"] == "open") & (rows["started_at"] != "")].iterrows():
        try:
            day, at = date.fromisoformat(row["date"]), datetime.fromisoformat(row["started_at"])
        except ValueError:
            raise InputRejected(Problem(str(path), int(k) + 2, f"date {row['date']!r} / started_at "
                                        f"{row['started_at']!r}: not an ISO date / time")) from None
        starts[day] = min(starts.get(day, at), at)
    return starts


def read_denials(path: Path | None) -> list[RiskDenial]:
    """The risk engine's denial log (one JSON object per line); an absent file: none."""
    if path is None or not Path(path).exists():
        return []
    denials = []
    for k, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if line.strip():
            try:
                denials.append(RiskDenial.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
                why = f"field {exc} missing" if isinstance(exc, KeyError) else str(exc)
                raise InputRejected(Problem(str(path), k, f"not a risk denial: {why}")) from None
    return denials


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
