"""Anomaly rules as data: each rule is a frozen record whose :meth:`Rule.decide` is a pure function of
(snapshot, history, now) returning a :class:`Decision` (with its reason) or None.

:func:`default_rules` builds the tuple from a :class:`~vnpy_rotation.monitor.config.MonitorConfig`;
:class:`CoolDown` makes one event alert once (the table :data:`COOL_DOWN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Iterable, Protocol, Sequence

from .config import DAY, MonitorConfig
from .records import Indicators, Severity
from .session import OPEN, Phase, continuous_seconds, phase_at, sod, wall


class History(Protocol):
    """What a rule may read besides the snapshot (:class:`~vnpy_rotation.monitor.indicators.SymbolState`)."""

    @property
    def previous(self) -> Indicators | None: ...  # the snapshot before this quote
    @property
    def closes(self) -> Sequence[float]: ...  # close of each session minute today
    @property
    def volumes(self) -> Sequence[float]: ...  # volume of each closed minute bar today, auctions excluded
    @property
    def last_seen(self) -> datetime | None: ...  # wall time of the last quote
    @property
    def first_minute(self) -> int | None: ...  # the first minute index quoted today
    @property
    def since(self) -> datetime | None: ...  # wall time the symbol was first watched
    @property
    def market_seen(self) -> datetime | None: ...  # wall time of the latest quote of any watched symbol
    def auction_volume(self, index: int) -> float: ...  # call-auction volume inside bar ``index`` today
    @property
    def closing_auction(self) -> bool: ...
    @property
    def stop(self) -> float | None: ...  # the holding's stop level, None when not held
    @property
    def in_pool(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Decision:
    reason: str
    values: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Rule:
    """Base of every rule run on each quote: its name (the alert's ``rule``), severity and cool-down."""

    name: str
    severity: Severity
    cooldown: float  # seconds before the same rule may alert the same symbol again

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        raise NotImplementedError


@dataclass(frozen=True)
class TimerRule(Rule):
    """A rule run by the clock (``MonitorCore.on_timer``) for every watched symbol, quoted yet or not."""

    def decide(self, snapshot: Indicators | None, history: History, now: datetime) -> Decision | None:
        raise NotImplementedError


AUCTION_BARS = (0, 239)  # the bars that hold the opening and the closing call auction


def _pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


@dataclass(frozen=True)
class PriceMove(Rule):
    """The price moved at least ``pct`` (up for ``direction`` 1, down for −1) against the close
    ``minutes`` minutes before the current minute."""

    minutes: int = 5
    pct: float = 0.03
    direction: int = 1

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        index = snapshot.minute
        if index is None or index - self.minutes < 0 or not snapshot.last > 0:
            return None
        base = history.closes[index - self.minutes]
        if not base > 0:
            return None
        move = snapshot.last / base - 1
        if move * self.direction < self.pct:
            return None
        return Decision(f"{_pct(move)} in {self.minutes} min ({base:g} → {snapshot.last:g})",
                        (("move", move), ("base", base), ("last", snapshot.last)))


@dataclass(frozen=True)
class VolumeSurge(Rule):
    """This minute's volume is at least ``ratio`` × the mean of the ``lookback`` minutes before it (minutes
    without trades count as 0; a monitor started late waits until it has watched ``lookback`` minutes).
    Call-auction volume (the 09:25 print in bar 0, the 15:00 print in bar 239) is left out of both sides:
    a daily auction print is not a surge, and it would inflate the baseline of the first minutes."""

    ratio: float = 5.0
    lookback: int = 10
    min_volume: float = 0.0

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        index = snapshot.minute
        first = history.first_minute
        if index is None or first is None or index - first < self.lookback or snapshot.minute_volume <= self.min_volume:
            return None  # the look-back must lie inside what was watched today
        volume = snapshot.minute_volume - history.auction_volume(index) if index in AUCTION_BARS \
            else snapshot.minute_volume
        window = history.volumes[index - self.lookback:index]
        mean = sum(window) / self.lookback
        if mean <= 0 or volume <= self.min_volume or volume < self.ratio * mean:
            return None
        ratio = volume / mean
        return Decision(f"minute volume {volume:g} = {ratio:.1f}× the {self.lookback}-min mean",
                        (("minute_volume", volume), ("mean", mean), ("ratio", ratio)))


@dataclass(frozen=True)
class ApproachingLimit(Rule):
    """Within ``pct`` of the limit-up (``direction`` 1) or limit-down (−1) price, not sealed there."""

    pct: float = 0.01
    direction: int = 1

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        if self.direction > 0:
            distance, sealed, limit = snapshot.to_limit_up, snapshot.sealed_up, snapshot.limit_up
        else:
            distance, sealed, limit = snapshot.to_limit_down, snapshot.sealed_down, snapshot.limit_down
        if sealed or not distance <= self.pct:  # NaN (no limit) never alerts
            return None
        before = history.previous
        if before is not None and (before.sealed_up if self.direction > 0 else before.sealed_down):
            return None  # this quote opened a sealed limit: limit_*_opened reports the one event
        side = "limit-up" if self.direction > 0 else "limit-down"
        return Decision(f"{distance * 100:.2f}% from {side} {limit:g} (last {snapshot.last:g})",
                        (("distance", distance), ("limit", limit), ("last", snapshot.last)))


@dataclass(frozen=True)
class Sealed(Rule):
    """Sealed at the limit: last at the limit and the queue on it (封板)."""

    direction: int = 1

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        sealed = snapshot.sealed_up if self.direction > 0 else snapshot.sealed_down
        if not sealed:
            return None
        limit = snapshot.limit_up if self.direction > 0 else snapshot.limit_down
        side = "limit-up" if self.direction > 0 else "limit-down"
        return Decision(f"sealed at {side} {limit:g}", (("limit", limit), ("change", snapshot.change)))


@dataclass(frozen=True)
class LimitOpened(Rule):
    """Was sealed at the previous quote, is not any more (开板 for limit-up, 翘板 for limit-down)."""

    direction: int = 1

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        before = history.previous
        if before is None:
            return None
        was, now_sealed = ((before.sealed_up, snapshot.sealed_up) if self.direction > 0
                           else (before.sealed_down, snapshot.sealed_down))
        if not was or now_sealed:
            return None
        side = "limit-up" if self.direction > 0 else "limit-down"
        return Decision(f"{side} opened: last {snapshot.last:g}, bid1/ask1 left the limit",
                        (("last", snapshot.last), ("limit", before.limit_up if self.direction > 0
                                                   else before.limit_down)))


@dataclass(frozen=True)
class LimitMismatch(Rule):
    """The feed's limit prices differ from the project's rule by more than one tick (a wrong board, a
    missed ST flag, or a feed error), or the price went beyond the project's limits (then ours are dropped
    for that quote: the feed's are used if the price lies within them): the limit rules may be wrong."""

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        if not snapshot.limit_mismatch:
            return None
        return Decision(f"feed limits {snapshot.feed_limit_up:g}/{snapshot.feed_limit_down:g}, "
                        f"ours {snapshot.limit_up:g}/{snapshot.limit_down:g}",
                        (("feed_limit_up", snapshot.feed_limit_up), ("feed_limit_down", snapshot.feed_limit_down),
                         ("limit_up", snapshot.limit_up), ("limit_down", snapshot.limit_down)))


@dataclass(frozen=True)
class GapOpen(Rule):
    """The day opened at least ``pct`` away from the previous close."""

    pct: float = 0.02

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        if snapshot.minute is None or not snapshot.open > 0 or not snapshot.pre_close > 0:
            return None
        gap = snapshot.open / snapshot.pre_close - 1
        if abs(gap) < self.pct:
            return None
        return Decision(f"opened {_pct(gap)} ({snapshot.pre_close:g} → {snapshot.open:g})",
                        (("gap", gap), ("open", snapshot.open), ("pre_close", snapshot.pre_close)))


@dataclass(frozen=True)
class StaleQuote(TimerRule):
    """No quote for ``seconds`` of continuous trading (lunch, auctions and suspended symbols excluded).

    A symbol that has not quoted today stays quiet while no watched symbol has quoted today: the market is
    closed (a holiday beyond the calendar's end), not the feed stale. The price: a feed dead from before the
    open is not reported by this rule (the gateway's connection state shows it)."""

    seconds: float = 60.0

    def decide(self, snapshot: Indicators | None, history: History, now: datetime) -> Decision | None:
        if snapshot is not None and snapshot.suspended:
            return None
        local = wall(now)
        seen = history.last_seen
        quoted_today = seen is not None and seen.date() == local.date()
        if not quoted_today:
            market = history.market_seen
            if market is None or market.date() != local.date():
                return None
            seen = history.since
        if seen is not None and (local - seen).total_seconds() < self.seconds:
            return None  # quiet for less wall time than the threshold (the common case, decided cheaply)
        if phase_at(local, history.closing_auction) is not Phase.CONTINUOUS:
            return None
        start = sod(seen) if seen is not None and seen.date() == local.date() else 0.0
        quiet = continuous_seconds(start, sod(local), history.closing_auction)
        if quiet < self.seconds:
            return None
        if quoted_today:
            what = f"since the last quote at {seen:%H:%M:%S}"
        elif start <= OPEN:
            what = "since the open"
        else:
            what = f"since watching began at {seen:%H:%M:%S}"
        return Decision(f"no quote for {quiet:.0f} s of continuous trading {what}", (("quiet_seconds", quiet),))


@dataclass(frozen=True)
class StopCrossed(Rule):
    """A holding's last price is at or below its stop level."""

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        stop = history.stop
        if stop is None or not 0 < snapshot.last <= stop:
            return None
        return Decision(f"last {snapshot.last:g} at or below the stop {stop:g}",
                        (("last", snapshot.last), ("stop", stop)))


@dataclass(frozen=True)
class PoolSuspended(Rule):
    """A pool member's quote says it is suspended."""

    def decide(self, snapshot: Indicators, history: History, now: datetime) -> Decision | None:
        if not (history.in_pool and snapshot.suspended):
            return None
        return Decision("pool member suspended", (("pre_close", snapshot.pre_close),))


def default_rules(config: MonitorConfig | None = None) -> tuple[Rule, ...]:
    """Every rule with its thresholds from ``config`` (defaults: :class:`MonitorConfig`)."""
    c = config or MonitorConfig()
    cd = c.cooldown_seconds
    warn, info, crit = Severity.WARNING, Severity.INFO, Severity.CRITICAL
    return (
        PriceMove("price_spike", warn, cd, c.spike_minutes, c.spike_pct, 1),
        PriceMove("price_drop", warn, cd, c.spike_minutes, c.spike_pct, -1),
        VolumeSurge("volume_surge", info, cd, c.surge_ratio, c.surge_lookback, c.surge_min_volume),
        ApproachingLimit("approaching_limit_up", info, cd, c.approach_pct, 1),
        ApproachingLimit("approaching_limit_down", warn, cd, c.approach_pct, -1),
        # Edge-triggered: each seal and each 开板 is a distinct event and alerts (no cool-down; a flickering
        # limit is bounded by the storm limiter instead).
        Sealed("limit_up_sealed", warn, 0.0, 1),
        Sealed("limit_down_sealed", warn, 0.0, -1),
        LimitOpened("limit_up_opened", warn, 0.0, 1),
        LimitOpened("limit_down_opened", warn, 0.0, -1),
        GapOpen("gap_open", info, DAY, c.gap_pct),
        LimitMismatch("limit_mismatch", warn, DAY),
        StaleQuote("stale_quote", warn, cd, c.stale_seconds),
        StopCrossed("stop_crossed", crit, cd),
        PoolSuspended("pool_suspended", warn, DAY),
    )


class Gate(str, Enum):
    IDLE = "idle"  # the condition does not hold
    ALERTED = "alerted"  # it holds and has alerted: nothing repeats while it holds
    PENDING = "pending"  # it began inside the cool-down: alerts when the cool-down ends, if it still holds


# The cool-down as a table: (state, condition now, cool-down over) -> (next state, alert?).
# An event alerts once; a new event inside the cool-down of the last alert of the same (rule, symbol)
# waits for the cool-down's end and is dropped if it is over by then.
COOL_DOWN: dict[tuple[Gate, bool, bool], tuple[Gate, bool]] = {
    (Gate.IDLE, False, False): (Gate.IDLE, False),
    (Gate.IDLE, False, True): (Gate.IDLE, False),
    (Gate.IDLE, True, True): (Gate.ALERTED, True),
    (Gate.IDLE, True, False): (Gate.PENDING, False),
    (Gate.PENDING, True, True): (Gate.ALERTED, True),
    (Gate.PENDING, True, False): (Gate.PENDING, False),
    (Gate.PENDING, False, False): (Gate.IDLE, False),
    (Gate.PENDING, False, True): (Gate.IDLE, False),
    (Gate.ALERTED, True, False): (Gate.ALERTED, False),
    (Gate.ALERTED, True, True): (Gate.ALERTED, False),
    (Gate.ALERTED, False, False): (Gate.IDLE, False),
    (Gate.ALERTED, False, True): (Gate.IDLE, False),
}


class CoolDown:
    """Per-(rule, symbol) state for :data:`COOL_DOWN`; :attr:`state` holds only the non-IDLE ones, so a
    caller may skip :meth:`admit` when a rule's condition is false and its key is not in :attr:`state`."""

    __slots__ = ("state", "last_alert")

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], Gate] = {}
        self.last_alert: dict[tuple[str, str], datetime] = {}

    def admit(self, rule: Rule, vt_symbol: str, condition: bool, now: datetime) -> bool:
        key = (rule.name, vt_symbol)
        state = self.state.get(key, Gate.IDLE)
        if not condition and state is Gate.IDLE:
            return False  # the common case, without a table look-up
        last = self.last_alert.get(key)
        cooled = last is None or (now - last).total_seconds() >= rule.cooldown
        state, fire = COOL_DOWN[(state, condition, cooled)]
        if state is Gate.IDLE:
            self.state.pop(key, None)  # only events in progress are kept: the caller's fast path
        else:
            self.state[key] = state
        if fire:
            self.last_alert[key] = now
        return fire

    def held(self, rule: Rule, vt_symbol: str, last: datetime | None) -> None:
        """The alert just admitted was held back by the storm limiter: undo it (the cool-down does not start,
        ``last`` is the previous alert's time) and leave the event PENDING, so it alerts once the storm lets
        it through, if the condition still holds by then."""
        key = (rule.name, vt_symbol)
        self.state[key] = Gate.PENDING
        if last is None:
            self.last_alert.pop(key, None)
        else:
            self.last_alert[key] = last

    def new_day(self, vt_symbol: str, rules: Iterable[Rule]) -> None:
        """Forget a symbol's events at the start of its day: "once a day" rules alert again."""
        for rule in rules:
            self.state.pop((rule.name, vt_symbol), None)
            self.last_alert.pop((rule.name, vt_symbol), None)
