"""Execution statistics of a several-strategy trade run (``run.py trade`` with ``accounts:``/``strategies:``):
every strategy's journal in ``OUT/<strategy>/journal/``, the run's session log and denial log, per strategy and
per account (the account's figures over all its strategies' orders).

The pieces are :mod:`vnpy_rotation.ops.execution_run`'s (journal, benchmarks, session starts, denials); only the
gathering over several journal folders and accounts is here.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..attribution.execution import ExecutionInputs, ExecutionStats, execution_stats
from ..data.panels import Panels, load_panels
from ..data.store import BarStore
from ..live.execution_inputs import from_journal
from .execution_run import benchmarks, read_denials, read_journal, session_starts


def strategies_of(parameters: dict[str, Any]) -> dict[str, str]:
    """strategy -> the gateway of its account, from a several-strategy run's stored parameters (``run``)."""
    run = parameters.get("run") or {}
    gateways = {a["id"]: a["gateway"] for a in run.get("accounts") or []}
    return {s["name"]: gateways.get(s["account"], s["account"]) for s in run.get("strategies") or []}


def several_stats(out: Path, strategies: dict[str, str], day: date | None = None, *, panels: Panels | None = None,
                  store: BarStore | None = None, denial_log: Path | None = None) -> tuple[ExecutionStats, ...]:
    """Statistics of the run in ``out`` (``strategies``: name -> account gateway) for ``day`` (default: the last
    session any strategy journaled) and cumulated, one row per strategy and per account and period."""
    journals = {name: read_journal(Path(out) / name) for name in strategies}
    sessions = [date.fromisoformat(r["summary"]["day"]) for records in journals.values() for r in records]
    if not sessions:
        return ()
    keys = {(date.fromisoformat(r["progress"]["day"]), x["symbol"]) for records in journals.values() for r in records
            if r.get("progress") for part in ("orders", "legs") for x in r["progress"].get(part, [])}
    if panels is None and keys:
        # a fortnight before the first session covers its previous close across a holiday
        panels = load_panels(sorted({s for _, s in keys}), min(sessions) - timedelta(days=15), max(sessions), store=store)
    decision, market = benchmarks(panels, keys) if panels is not None else ({}, {})
    sent, denials = session_starts(out), read_denials(denial_log)
    orders, fills, refusals = [], [], []
    for account in dict.fromkeys(strategies.values()):
        records = [r for name, gateway in strategies.items() if gateway == account for r in journals[name]]
        inputs = from_journal(records, account, decision_prices=decision, market=market, sent=sent, denials=denials)
        orders += inputs.orders
        fills += inputs.fills
        refusals += inputs.refusals
    merged = ExecutionInputs(tuple(orders), tuple(fills), tuple(refusals), market)
    return execution_stats(merged, day or max(sessions))
