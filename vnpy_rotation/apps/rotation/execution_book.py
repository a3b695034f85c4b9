"""The engine's execution records: every closed session of every strategy, so the daily summary and the
window show the execution statistics (docs/execution_stats.md) of each strategy and of each account (every
strategy trading it), for the session and cumulated since the run began.

``execution_sessions.json`` in the engine's state folder holds one record per (strategy, session): the
strategy, its account, the session's :class:`~vnpy_rotation.live.plan.DayProgress` and the session's
benchmark prices per symbol, taken from the gateway's last tick of the day: the decision price (the tick's
previous close: the close the target was decided on, on the session's share basis as the exchange adjusts it
for an ex-date), the open and the VWAP (turnover / volume in shares: XT sends its volumes in lots).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from vnpy.trader.object import TickData

from ...attribution.execution import ExecutionInputs, ExecutionStats, MarketPrice, execution_stats
from ...errors import InputRejected
from ...live.execution_inputs import from_journal
from ...live.state_file import read_json, write_atomic
from ..monitor.engine import tick_lot

SESSIONS_FILE = "execution_sessions.json"


def _price(value: float | None) -> float:
    return float(value) if value is not None and value > 0 else math.nan


def session_benchmarks(ticks: Iterable[TickData], day: date) -> dict[str, list[float]]:
    """Per symbol with a tick of ``day``: [decision price, open, VWAP] (NaN where the tick does not say)."""
    out = {}
    for tick in ticks:
        if tick.datetime is None or tick.datetime.date() != day:
            continue
        shares = (tick.volume or 0.0) * tick_lot(tick)
        vwap = tick.turnover / shares if shares > 0 and (tick.turnover or 0.0) > 0 else math.nan
        out[tick.vt_symbol] = [_price(tick.pre_close), _price(tick.open_price), vwap]
    return out


class ExecutionBook:
    """The closed sessions' execution records of the engine's strategies (see the module docstring)."""

    def __init__(self, folder: Path, log: Callable[[str], None] = lambda _: None) -> None:
        self.path = Path(folder) / SESSIONS_FILE
        try:
            self.records: list[dict[str, Any]] = list(read_json(self.path, []) or [])
        except InputRejected as exc:  # statistics must not stop trading: the damaged file is kept aside
            aside = self.path.with_name(self.path.name + ".damaged")
            self.path.replace(aside)
            log(f"{exc}; kept as {aside}, the execution statistics start afresh")
            self.records = []

    def add(self, strategy: str, account: str, day: date, progress: dict | None,
            benchmarks: dict[str, list[float]]) -> None:
        """Record ``strategy``'s session ``day`` (a repeated close replaces its record)."""
        self.records = [r for r in self.records if (r["strategy"], r["day"]) != (strategy, day.isoformat())]
        self.records.append({"strategy": strategy, "account": account, "day": day.isoformat(), "progress": progress,
                             "benchmarks": benchmarks})
        write_atomic(self.path, self.records)

    def stats(self, day: date) -> tuple[ExecutionStats, ...]:
        """Every strategy's and every account's statistics of session ``day`` and cumulated up to it."""
        orders, fills, refusals = [], [], []
        market: dict[tuple[date, str], MarketPrice] = {}
        for record in self.records:
            session = date.fromisoformat(record["day"])
            prices = {(session, s): p for s, p in record["benchmarks"].items()}
            rows = from_journal([record], record["account"],
                                decision_prices={k: p[0] for k, p in prices.items()},
                                market={k: MarketPrice(p[1], p[2]) for k, p in prices.items()})
            orders += rows.orders
            fills += rows.fills
            refusals += rows.refusals
            market.update(rows.market)
        return execution_stats(ExecutionInputs(tuple(orders), tuple(fills), tuple(refusals), market), day)

    @staticmethod
    def of(stats: Iterable[ExecutionStats], strategy: str, account: str) -> tuple[ExecutionStats, ...]:
        """The rows of ``strategy`` and of its ``account`` (each: the session, then cumulated)."""
        return tuple(s for s in stats if (s.scope, s.name) in (("strategy", strategy), ("account", account)))
