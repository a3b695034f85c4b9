"""The engine-free monitor: quotes and clock ticks in; indicators, alerts and closed bars out.

The VeighNa app (and the terminal monitor) own the event engine, the gateway and the database; they call
:meth:`MonitorCore.on_quote` for every tick, :meth:`MonitorCore.on_timer` about once a second, and drain
:meth:`MonitorCore.bars_closed` to save the bars. Nothing here reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from ..market.instruments import Instrument, default_registry
from .config import MonitorConfig
from .indicators import MarketClock, Reference, SymbolState
from .records import Alert, DailyBar, Indicators, MinuteBar, Quote
from .rules import CoolDown, Rule, TimerRule, default_rules
from .session import sod, wall
from .storm import SUMMARY_RULE, StormLimiter

__all__ = ["Holding", "MonitorCore", "Reference", "find_instrument"]


@dataclass(frozen=True, slots=True)
class Holding:
    """A position the monitor guards: alert when the last price is at or below ``stop``."""

    vt_symbol: str
    volume: float
    stop: float


def find_instrument(vt_symbol: str) -> Instrument | None:
    """The instrument table's entry for a vt_symbol (None: unknown; the feed's limit prices are used then)."""
    code, _, exchange = vt_symbol.partition(".")
    return default_registry().find(code, exchange)


class MonitorCore:
    """Per-symbol state, the rules, their cool-downs and the storm limiter, behind four calls."""

    def __init__(self, config: MonitorConfig | None = None, *, references: Iterable[Reference] = (),
                 holdings: Iterable[Holding] = (), pool: Iterable[str] = (),
                 rules: tuple[Rule, ...] | None = None,
                 instruments: Callable[[str], Instrument | None] = find_instrument) -> None:
        self.config = config or MonitorConfig()
        self.rules = rules if rules is not None else default_rules(self.config)
        self._quote_rules = tuple(r for r in self.rules if not isinstance(r, TimerRule))
        self._timer_rules = tuple(r for r in self.rules if isinstance(r, TimerRule))
        self._instruments = instruments
        self._references = {r.vt_symbol: r for r in references}
        self._states: dict[str, SymbolState] = {}
        self._snapshot: dict[str, Indicators] = {}
        self._closed: list[MinuteBar] = []
        self._cooldown = CoolDown()
        self._market = MarketClock()
        c = self.config
        self._storm = StormLimiter(c.storm_window_seconds, c.storm_max_global, c.storm_max_per_symbol)
        self._stops: dict[str, float] = {}
        self._pool: frozenset[str] = frozenset()
        self.set_holdings(holdings)
        self.set_pool(pool)

    # -- inputs ---------------------------------------------------------------------------------------------

    def watch(self, vt_symbols: Iterable[str], now: datetime) -> None:
        """Start watching symbols before their first quote (the stale rule then covers them from ``now``)."""
        for vt_symbol in vt_symbols:
            self._state(vt_symbol, wall(now))

    def set_reference(self, reference: Reference) -> None:
        """The 5-day average volume, float shares and ST flag of a symbol (takes effect at once)."""
        self._references[reference.vt_symbol] = reference
        state = self._states.get(reference.vt_symbol)
        if state is not None:
            state.set_reference(reference)

    def set_holdings(self, holdings: Iterable[Holding]) -> None:
        """Replace the guarded holdings and their stop levels."""
        self._stops = {h.vt_symbol: h.stop for h in holdings}
        for vt_symbol, state in self._states.items():
            state.stop = self._stops.get(vt_symbol)

    def set_pool(self, vt_symbols: Iterable[str]) -> None:
        """Replace the pool whose members' suspensions alert."""
        self._pool = frozenset(vt_symbols)
        for vt_symbol, state in self._states.items():
            state.in_pool = vt_symbol in self._pool

    def on_quote(self, quote: Quote, now: datetime | None = None) -> list[Alert]:
        """Update the symbol's bars and indicators; the alerts this quote raises (after cool-down and storm
        limiting). ``now``: the receive time (default: the quote's own time)."""
        moment = wall(quote.datetime)
        clock = wall(now) if now is not None else moment
        state = self._states.get(quote.vt_symbol) or self._state(quote.vt_symbol, moment)
        bars = state.bars
        dropped = bars.dropped
        closed = bars.update(quote)
        if bars.dropped != dropped:
            return []
        for bar in closed:
            self._record(state, bar)
        if state.day != moment.date():
            self._cooldown.new_day(quote.vt_symbol, self.rules)
        snapshot = state.update(quote, moment)
        self._snapshot[quote.vt_symbol] = snapshot
        alerts: list[tuple[Rule, Alert, datetime | None]] = []
        admit, open_events, last_alert = self._cooldown.admit, self._cooldown.state, self._cooldown.last_alert
        vt_symbol = quote.vt_symbol
        for rule in self._quote_rules:
            decision = rule.decide(snapshot, state, clock)
            if decision is None:
                if (rule.name, vt_symbol) in open_events:
                    admit(rule, vt_symbol, False, clock)  # the event is over
            else:
                before = last_alert.get((rule.name, vt_symbol))
                if admit(rule, vt_symbol, True, clock):
                    alerts.append((rule, Alert(rule.name, vt_symbol, clock, rule.severity, decision.reason,
                                               decision.values), before))
        if alerts or self._storm.start is not None:
            return self._limit(alerts, clock)
        return [alert for _, alert, _ in alerts]

    def on_timer(self, now: datetime) -> list[Alert]:
        """Clock-driven work: close bars whose minute is over, stale-quote checks, the storm summary."""
        clock = wall(now)
        midnight, seconds = clock.replace(hour=0, minute=0, second=0, microsecond=0), sod(clock)
        grace, end_grace = self.config.bar_grace_seconds, self.config.session_end_grace_seconds
        alerts: list[tuple[Rule, Alert, datetime | None]] = []
        admit, open_events, last_alert = self._cooldown.admit, self._cooldown.state, self._cooldown.last_alert
        for vt_symbol, state in self._states.items():
            if state.bars.bar is not None:
                for bar in state.bars.due_at(midnight, seconds, grace, end_grace):
                    self._record(state, bar)
            for rule in self._timer_rules:
                decision = rule.decide(state.current, state, clock)
                if decision is None:
                    if (rule.name, vt_symbol) in open_events:
                        admit(rule, vt_symbol, False, clock)
                else:
                    before = last_alert.get((rule.name, vt_symbol))
                    if admit(rule, vt_symbol, True, clock):
                        alerts.append((rule, Alert(rule.name, vt_symbol, clock, rule.severity, decision.reason,
                                                   decision.values), before))
        return self._limit(alerts, clock)

    def close_day(self) -> list[MinuteBar]:
        """Close every open bar now (end of day or shutdown); they are also queued for :meth:`bars_closed`."""
        flushed = []
        for state in self._states.values():
            for bar in state.bars.flush():
                self._record(state, bar)
                flushed.append(bar)
        return flushed

    def close_ended(self, now: datetime) -> list[MinuteBar]:
        """Close every open bar whose minute is over at ``now`` without waiting for late snapshots (shutdown:
        the 14:59 bar with the closing auction is saved when the program quits at 15:00:30)."""
        clock = wall(now)
        midnight, seconds = clock.replace(hour=0, minute=0, second=0, microsecond=0), sod(clock)
        closed = []
        for state in self._states.values():
            for bar in state.bars.due_at(midnight, seconds, 0.0, 0.0):
                self._record(state, bar)
                closed.append(bar)
        return closed

    # -- outputs --------------------------------------------------------------------------------------------

    def snapshot(self) -> Mapping[str, Indicators]:
        """vt_symbol → the latest indicators (a read-only live view)."""
        return MappingProxyType(self._snapshot)

    def bars_closed(self) -> list[MinuteBar]:
        """The minute bars closed since the last call, in the order they closed (the queue is emptied)."""
        out, self._closed = self._closed, []
        return out

    def daily_bars(self) -> dict[str, DailyBar]:
        """vt_symbol → the provisional daily bar built from today's quotes."""
        return {s: d for s, state in self._states.items() if (d := state.bars.daily) is not None}

    def dropped(self) -> dict[str, int]:
        """vt_symbol → quotes dropped for being older than the previous one."""
        return {s: state.bars.dropped for s, state in self._states.items() if state.bars.dropped}

    # -- internals ------------------------------------------------------------------------------------------

    def _state(self, vt_symbol: str, since: datetime) -> SymbolState:
        state = self._states.get(vt_symbol)
        if state is None:
            state = SymbolState(vt_symbol, self._instruments(vt_symbol), self._references.get(vt_symbol), since,
                                self._market)
            state.stop = self._stops.get(vt_symbol)
            state.in_pool = vt_symbol in self._pool
            self._states[vt_symbol] = state
        return state

    def _limit(self, alerts: list[tuple[Rule, Alert, datetime | None]], clock: datetime) -> list[Alert]:
        """The storm limiter's verdict; an alert it held back does not start its cool-down (it stays pending
        and alerts when the storm lets it, if its condition still holds; the summary names it meanwhile)."""
        passed = self._storm.admit([alert for _, alert, _ in alerts], clock)
        if len(passed) < len(alerts) + sum(a.rule == SUMMARY_RULE for a in passed):
            through = {id(a) for a in passed}
            for rule, alert, before in alerts:
                if id(alert) not in through:
                    self._cooldown.held(rule, alert.vt_symbol, before)
        return passed

    def _record(self, state: SymbolState, bar: MinuteBar) -> None:
        if state.day == bar.datetime.date():
            state.volumes[bar.index] = bar.volume - state.bars.auction.get(bar.index, 0.0)
        self._closed.append(bar)
