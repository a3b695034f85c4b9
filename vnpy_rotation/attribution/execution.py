"""Execution statistics per strategy and per account, for one session and cumulated: how much of what was
ordered filled, how fast, at what price against three benchmarks, what was refused and why, and what the
fees cost per CNY traded. Every definition is in ``docs/execution_stats.md``; in short:

- fill rate by volume = Σ min(filled, ordered) / Σ ordered; by orders = fully filled orders / orders;
- time to fill = last fill − order sent, seconds, over fully filled orders whose times are known (median and
  90th percentile, linear interpolation between order statistics);
- slippage (bp) against a benchmark price P = Σ s·(fill − P)·q / Σ P·q × 10,000 with s = +1 for a buy and
  −1 for a sell, so a positive figure is a cost on either side; P is the decision price (the close the
  target was decided on), the session's open, or its VWAP (turnover / volume); fills without P are left out;
- refusals by reason: count and CNY value (volume × the price the order was sized at);
- fees per CNY traded = (commission + stamp duty + transfer fee) / Σ fill price × volume.

Inputs are typed rows (:class:`OrderRow`, :class:`FillRow`, :class:`RefusalRow`, :class:`MarketPrice`),
built from the daemon's journal by :mod:`vnpy_rotation.live.execution_inputs`. Pure: no vnpy, no files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

BP = 1e4
NAN = float("nan")
SCOPES = ("strategy", "account")
PERIODS = ("day", "cumulative")


@dataclass(frozen=True)
class OrderRow:
    """One order sent to the broker. ``decision_price``: the price when the target was decided (NaN: unknown);
    ``sent_at``: when it was sent (None: unknown; time to fill then not measured)."""

    day: date
    strategy: str
    account: str
    reference: str
    symbol: str
    buy: bool
    volume: float
    decision_price: float = NAN
    sent_at: datetime | None = None


@dataclass(frozen=True)
class FillRow:
    """One fill of the order ``reference`` (of ``strategy``); ``fees`` = commission + stamp duty + transfer fee."""

    day: date
    strategy: str
    account: str
    reference: str
    symbol: str
    buy: bool
    price: float
    volume: float
    fees: float
    at: datetime | None = None


@dataclass(frozen=True)
class RefusalRow:
    """Volume refused for ``reason`` (a sizing cut, a risk denial, a broker rejection) and its CNY value."""

    day: date
    strategy: str
    account: str
    symbol: str
    buy: bool
    reason: str
    volume: float
    value: float


@dataclass(frozen=True)
class MarketPrice:
    """A symbol's session benchmarks: the opening price and the VWAP (turnover / volume)."""

    open: float
    vwap: float


@dataclass(frozen=True)
class ExecutionInputs:
    orders: tuple[OrderRow, ...] = ()
    fills: tuple[FillRow, ...] = ()
    refusals: tuple[RefusalRow, ...] = ()
    market: Mapping[tuple[date, str], MarketPrice] = field(default_factory=dict)


@dataclass(frozen=True)
class RefusalCount:
    reason: str
    count: int
    value: float


@dataclass(frozen=True)
class ExecutionStats:
    """One scope (``scope`` ``strategy`` or ``account``, named ``name``) over ``period``: the session ``day``
    (``day``) or every session up to and including it (``cumulative``). NaN: nothing to measure."""

    scope: str
    name: str
    period: str
    day: date
    orders: int
    filled_orders: int
    ordered_volume: float
    filled_volume: float
    fill_rate_volume: float
    fill_rate_orders: float
    timed_orders: int
    time_to_fill_median: float
    time_to_fill_p90: float
    traded_value: float
    fees: float
    fees_per_cny: float
    slippage_decision_bp: float
    slippage_open_bp: float
    slippage_vwap_bp: float
    refusals: tuple[RefusalCount, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, date):
                out[name] = value.isoformat()
            elif isinstance(value, float):
                out[name] = None if value != value else value
            elif name == "refusals":
                out[name] = [{"reason": r.reason, "count": r.count, "value": r.value} for r in value]
            else:
                out[name] = value
        return out


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation between order statistics (position q·(n−1), numpy's
    default): NaN for no values."""
    xs = sorted(values)
    if not xs:
        return NAN
    pos = q * (len(xs) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(xs) - 1)
    return xs[low] + (xs[high] - xs[low]) * (pos - low)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else NAN


def _slippage_bp(fills: Iterable[tuple[FillRow, float]]) -> float:
    """Σ s·(fill − P)·q / Σ P·q in bp over the fills with a benchmark P > 0 (s = +1 buy, −1 sell)."""
    cost = base = 0.0
    for f, p in fills:
        if p == p and p > 0:
            cost += (1.0 if f.buy else -1.0) * (f.price - p) * f.volume
            base += p * f.volume
    return cost / base * BP if base > 0 else NAN


def _stats(scope: str, name: str, period: str, day: date, orders: Sequence[OrderRow], fills: Sequence[FillRow],
           refusals: Sequence[RefusalRow], market: Mapping[tuple[date, str], MarketPrice]) -> ExecutionStats:
    by_order: dict[tuple[str, str], list[FillRow]] = {}
    for f in fills:
        by_order.setdefault((f.strategy, f.reference), []).append(f)
    filled_volume = ordered = 0.0
    full = 0
    waits: list[float] = []
    decision: dict[tuple[str, str], float] = {}
    for o in orders:
        mine = by_order.get((o.strategy, o.reference), [])
        done = sum(f.volume for f in mine)
        ordered += o.volume
        filled_volume += min(done, o.volume)
        decision[(o.strategy, o.reference)] = o.decision_price
        if done >= o.volume - 1e-9 and mine:
            full += 1
            times = [f.at for f in mine]
            if o.sent_at is not None and all(t is not None for t in times):
                last = max(t for t in times if t is not None)
                waits.append((last - o.sent_at).total_seconds())
    value = sum(f.price * f.volume for f in fills)
    fees = sum(f.fees for f in fills)
    reasons: dict[str, tuple[int, float]] = {}
    for r in refusals:
        count, worth = reasons.get(r.reason, (0, 0.0))
        reasons[r.reason] = (count + 1, worth + r.value)

    def bench(pick: Callable[[MarketPrice], float]) -> float:
        return _slippage_bp((f, pick(market[(f.day, f.symbol)]) if (f.day, f.symbol) in market else NAN)
                            for f in fills)

    return ExecutionStats(
        scope, name, period, day, len(orders), full, ordered, filled_volume, _ratio(filled_volume, ordered),
        _ratio(full, len(orders)), len(waits), quantile(waits, 0.5), quantile(waits, 0.9), value, fees,
        _ratio(fees, value), _slippage_bp((f, decision.get((f.strategy, f.reference), NAN)) for f in fills),
        bench(lambda m: m.open), bench(lambda m: m.vwap),
        tuple(RefusalCount(k, c, v) for k, (c, v) in sorted(reasons.items())))


def _key(row: OrderRow | FillRow | RefusalRow, scope: str) -> str:
    return row.strategy if scope == "strategy" else row.account


def execution_stats(inputs: ExecutionInputs, day: date) -> tuple[ExecutionStats, ...]:
    """For every strategy, then every account, that has a row on or before ``day``: the session ``day``'s
    figures, then the cumulative ones (every session up to and including ``day``)."""
    out: list[ExecutionStats] = []
    for scope in SCOPES:
        names = sorted({_key(r, scope) for part in (inputs.orders, inputs.fills, inputs.refusals) for r in part
                        if r.day <= day})
        for name in names:
            for period in PERIODS:
                def keep(row: OrderRow | FillRow | RefusalRow, scope: str = scope, name: str = name,
                         period: str = period) -> bool:
                    return _key(row, scope) == name and (row.day == day if period == "day" else row.day <= day)

                out.append(_stats(scope, name, period, day, [o for o in inputs.orders if keep(o)],
                                  [f for f in inputs.fills if keep(f)], [r for r in inputs.refusals if keep(r)],
                                  inputs.market))
    return tuple(out)


def _fmt(value: float, digits: int = 1, scale: float = 1.0, suffix: str = "") -> str:
    return "–" if value != value else f"{value * scale:,.{digits}f}{suffix}"


def render_markdown(stats: Sequence[ExecutionStats]) -> str:
    """The daily summary's execution section: one table row per scope and period, then the refusals."""
    lines = ["| scope | name | period | orders | filled orders | fill rate (volume) | fill rate (orders) | "
             "time to fill median / p90 (s) | slippage vs decision / open / VWAP (bp) | traded (CNY) | "
             "fees per CNY traded (bp) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in stats:
        lines.append(
            f"| {s.scope} | {s.name} | {s.period} | {s.orders} | {s.filled_orders} | "
            f"{_fmt(s.fill_rate_volume, 1, 100, ' %')} | {_fmt(s.fill_rate_orders, 1, 100, ' %')} | "
            f"{_fmt(s.time_to_fill_median)} / {_fmt(s.time_to_fill_p90)} | "
            f"{_fmt(s.slippage_decision_bp)} / {_fmt(s.slippage_open_bp)} / {_fmt(s.slippage_vwap_bp)} | "
            f"{_fmt(s.traded_value, 2)} | {_fmt(s.fees_per_cny, 2, BP)} |")
    refused = [(s, r) for s in stats for r in s.refusals]
    if refused:
        lines += ["", "| scope | name | period | refusal | count | value (CNY) |", "|---|---|---|---|---:|---:|"]
        lines += [f"| {s.scope} | {s.name} | {s.period} | {r.reason} | {r.count} | {r.value:,.2f} |"
                  for s, r in refused]
    return "\n".join(lines) + "\n"


def render_json(stats: Sequence[ExecutionStats]) -> str:
    """The same figures as JSON (NaN as null), one object per scope and period."""
    return json.dumps([s.to_json() for s in stats], ensure_ascii=False, indent=2, sort_keys=True)
