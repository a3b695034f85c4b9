"""The live risk stage: the backtest's own compiled risk functions on the live book, at every open and close.

The backtest's day loop (:func:`~vnpy_rotation.backtest.kernel.run_days`) evaluates the risk rules at each
close (:func:`~vnpy_rotation.risk.stops.check_close`, then the drawdown ladders,
:func:`~vnpy_rotation.risk.stops.ladder_close`) and, at the next open, starts a new plan row through
:func:`~vnpy_rotation.risk.stops.start_row`, sends the risk sales first and refuses buys while a ladder is
REDUCING. :class:`RiskBook` keeps the same arrays for a live strategy -- persisted with its state, so a
restart resumes them -- and :class:`~vnpy_rotation.live.cycle.ExecutionCycle` calls it at the same
points. At the open it can only deny or hold (drop a plan, refuse buys, sell what the last close
decided), exactly as the backtest does, so a replay through the live stack equals the backtest.

Sessions are counted as the backtest counts its day rows: one per close evaluated on the data (a day the
data does not have is not a session for the rules, whatever the calendar says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from ..risk.config import RiskConfig
from ..risk.ladder import (
    HALTED,
    LADDER_STATE,
    REDUCING,
    RUNGS,
    S_PEAK,
    S_RUNG,
    S_TRIGGER,
    exposure,
    halt_flattens,
    ladder_params,
)
from ..risk.ladder import reset as reset_ladder
from ..risk.stops import (
    CAUSES,
    DRAWDOWN_HALVE,
    FLAT,
    FLAT_SINCE,
    LADDER,
    PLAN,
    RISK_STATE,
    RiskRules,
    check_close,
    configured_ladders,
    ladder_close,
    risk_reason,
    start_row,
    stops_on,
)
from .plan import OrderPlan

NO_RULES = (math.nan, math.nan, math.nan, 0.5)


def _floats(values: Any) -> list[float | None]:
    return [None if v != v else float(v) for v in np.asarray(values, dtype=float).ravel()]


def _array(values: list[float | None], shape: tuple[int, ...] | None = None) -> np.ndarray:
    out = np.array([math.nan if v is None else v for v in values], dtype=float)
    return out.reshape(shape) if shape is not None else out


@dataclass(frozen=True)
class RiskSale:
    """A sale the last close decided: the shares to sell, the rule (``CAUSES``) and its trigger."""

    symbol: str
    wanted: float
    cause: int
    trigger: float

    @property
    def reason(self) -> str:
        return risk_reason(self.cause, self.trigger)


@dataclass
class RungChange:
    day: str
    ladder: str
    before: str
    after: str
    trigger: float


@dataclass
class RiskBook:
    """One strategy's risk state between sessions: the compiled rules' arrays over ``symbols``."""

    symbols: list[str]
    ladder_names: list[str]
    ladders: np.ndarray  # k × LADDER_PARAMS
    rules: tuple[float, float, float, float] = NO_RULES  # RiskRules.kernel_args (set from each decided plan)
    state: np.ndarray = field(default_factory=lambda: np.zeros(RISK_STATE))
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sell_cause: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sell_trigger: np.ndarray = field(default_factory=lambda: np.zeros(0))
    blocked_until: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    entry: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ladder_state: np.ndarray = field(default_factory=lambda: np.zeros((0, LADDER_STATE)))
    plan_decided: str = ""  # the plan row that started executing (a resubmission does not start again)
    plan_start: int = -1  # the session it started
    changes: list[RungChange] = field(default_factory=list)  # every rung change, for the log and the app
    sessions: int = 0  # closes evaluated so far: the next open is session ``sessions`` (the day loop's row)
    held_close: np.ndarray = field(default_factory=lambda: np.zeros(0))  # shares at the last close
    last_close: np.ndarray = field(default_factory=lambda: np.zeros(0))  # each symbol's last known close

    @classmethod
    def create(cls, symbols: list[str], rules: RiskRules | None, risk: RiskConfig) -> RiskBook:
        named = configured_ladders(rules, risk)
        m = len(symbols)
        book = cls(list(symbols), [name for name, _ in named], ladder_params([ladder for _, ladder in named]),
                   keep=np.full(m, math.nan), sell_cause=np.zeros(m, dtype=np.int64), sell_trigger=np.zeros(m),
                   blocked_until=np.full(m, -1, dtype=np.int64), entry=np.full(m, math.nan),
                   held_close=np.zeros(m), last_close=np.full(m, math.nan))
        book.ladder_state = np.zeros((len(named), LADDER_STATE))
        book.ladder_state[:, -1] = math.nan  # no previous equity yet
        if rules is not None:
            book.rules = rules.kernel_args()
        return book

    def align(self, symbols: list[str], rules: RiskRules | None, risk: RiskConfig) -> None:
        """Follow a changed universe or configuration (a restart with other settings): per-symbol state
        is kept by symbol, each ladder's state by name; new symbols and ladders start fresh."""
        held = [s for j, s in enumerate(self.symbols) if s not in symbols
                and (self.held_close[j] > 0 or self.sell_cause[j] != PLAN)]
        symbols = list(symbols) + held  # a holding that left the universe is still valued, stopped and sold
        fresh = RiskBook.create(symbols, rules, risk)
        if rules is not None:
            self.rules = fresh.rules
        if list(symbols) != self.symbols:
            old = {s: j for j, s in enumerate(self.symbols)}
            for name in ("keep", "sell_cause", "sell_trigger", "blocked_until", "entry", "held_close", "last_close"):
                mine, theirs = getattr(self, name), getattr(fresh, name)
                for j, symbol in enumerate(symbols):
                    if symbol in old:
                        theirs[j] = mine[old[symbol]]
                setattr(self, name, theirs)
            self.symbols = list(symbols)
        if fresh.ladder_names != self.ladder_names or not np.array_equal(fresh.ladders, self.ladders,
                                                                          equal_nan=True):
            held = {n: self.ladder_state[k] for k, n in enumerate(self.ladder_names)}
            for k, name in enumerate(fresh.ladder_names):
                if name in held:
                    fresh.ladder_state[k] = held[name]
            self.ladder_names, self.ladders, self.ladder_state = fresh.ladder_names, fresh.ladders, fresh.ladder_state

    # -- what the cycle asks -----------------------------------------------------------------------
    @property
    def rung(self) -> int:
        return int(self.ladder_state[:, S_RUNG].max()) if len(self.ladder_state) else 0

    @property
    def rung_name(self) -> str:
        return RUNGS[self.rung]

    @property
    def denies_buys(self) -> bool:
        return self.rung >= REDUCING

    def start_plan(self, plan: OrderPlan) -> OrderPlan | None:
        """A new plan row starts at this open: dropped (None) when decided on a portfolio stop's close or
        while a ladder is HALTED; otherwise scaled by the halving and a REDUCING ladder."""
        session = self.sessions
        self.plan_decided = plan.decided
        if (self.state[FLAT] != 0 and session <= self.state[FLAT_SINCE] + 1) or self.rung == HALTED:
            return None
        target = self._vector(plan)
        start_row(target, self.rules, self.state, self.keep, self.sell_cause)
        if self.rung == REDUCING:
            target *= exposure(self.ladders, self.ladder_state)
        self.plan_start = session
        index = {s: j for j, s in enumerate(self.symbols)}
        scaled = [float(target[index[s]]) if s in index else v for s, v in zip(plan.symbols, plan.target)]
        return OrderPlan(plan.strategy, plan.decided, plan.symbols, scaled, plan.weighted, plan.reason, plan.notes)

    def sales(self, holdings: dict[str, float]) -> list[RiskSale]:
        """The sales the last close decided, first thing at this open (none while a ladder freezes the
        book). A holding that changed overnight changed on an ex-date: a pending halving's shares to keep
        follow it, as the backtest scales them by the split before the morning's sales."""
        if self.rung == HALTED and not halt_flattens(self.ladders, self.ladder_state):
            return []
        out = []
        for j, symbol in enumerate(self.symbols):
            cause = int(self.sell_cause[j])
            if cause == PLAN:
                continue
            held = holdings.get(symbol, 0.0)
            if cause == DRAWDOWN_HALVE and self.held_close[j] > 0 and held != self.held_close[j]:
                self.keep[j] *= held / self.held_close[j]
                self.held_close[j] = held
            wanted = held - self.keep[j] if cause == DRAWDOWN_HALVE else held
            if wanted > 1e-9:
                out.append(RiskSale(symbol, float(wanted), cause, float(self.sell_trigger[j])))
        return out

    def blocked(self, symbol: str) -> bool:
        """A stock stop holds ``symbol``: the plan row being executed does not trade it."""
        j = self._index(symbol)
        return j is not None and self.plan_start <= self.blocked_until[j]

    def sale_done(self, symbol: str, cause: int, retryable: bool) -> None:
        """A halving sale that was not cut by something that may clear is not sent again."""
        j = self._index(symbol)
        if j is not None and cause == DRAWDOWN_HALVE and not retryable:
            self.keep[j] = math.nan

    def close(self, day: date, cash: float, holdings_open: dict[str, float], fills: list[tuple[str, bool, float, float]],
              closes: dict[str, float] | None, split: dict[str, float], dividend: dict[str, float]) -> bool:
        """The session's close: follow ex-dates and the day's fills (``(symbol, buy, volume, price)`` in the
        order they happened) in the entry prices, then the stop rules and the ladders on the close. True when
        the plan being executed must be dropped. ``closes`` None (no bar for today): the fills are kept in
        the entry prices, the rules wait for a day the data has."""
        session = self.sessions
        shares = np.array([holdings_open.get(s, 0.0) for s in self.symbols])
        for j, symbol in enumerate(self.symbols):  # ex-dates, before the day's fills (the backtest's order)
            ratio, cash_per_share = split.get(symbol, 1.0), dividend.get(symbol, 0.0)
            if shares[j] and (ratio != 1.0 or cash_per_share):
                self.entry[j] = (self.entry[j] - cash_per_share) / ratio
        track_entry = self.rules[0] == self.rules[0]
        for symbol, buy, volume, price in fills:
            j = self._index(symbol)
            if j is None:
                continue
            held = shares[j]
            if track_entry:
                if buy:
                    self.entry[j] = price if held <= 0 else (self.entry[j] * held + price * volume) / (held + volume)
                elif held - volume <= 0:
                    self.entry[j] = math.nan
            shares[j] = held + volume if buy else held - volume
            if shares[j] <= 0:
                self.entry[j] = math.nan
        self.held_close = shares.copy()
        if closes is None:
            return False
        self.sessions += 1
        # a symbol the day's data does not cover keeps its last close (the backtest carries closes forward)
        given = np.array([closes.get(s, math.nan) for s in self.symbols])
        close = np.where(np.isfinite(given), given, self.last_close)
        self.last_close = close
        before = self.ladder_state[:, S_RUNG].copy()
        on = stops_on(self.rules)
        drop = on and bool(check_close(session, cash, shares, close, self.entry, self.rules, self.state,
                                       self.keep, self.sell_cause, self.sell_trigger, self.blocked_until))
        if len(self.ladders):
            if ladder_close(session, cash, shares, close, self.ladders, self.ladder_state, self.sell_cause,
                            self.sell_trigger, on) == HALTED:
                drop = True
            for k, name in enumerate(self.ladder_names):
                if self.ladder_state[k, S_RUNG] != before[k]:
                    self.changes.append(RungChange(day.isoformat(), name, RUNGS[int(before[k])],
                                                   RUNGS[int(self.ladder_state[k, S_RUNG])],
                                                   float(self.ladder_state[k, S_TRIGGER])))
        return drop

    def peak_and_flatten(self) -> tuple[float, bool]:
        """The most restrictive ladder's peak, and whether a HALTED rung flattens (False: it freezes)."""
        if not len(self.ladder_state):
            return 0.0, True
        k = int(np.argmax(self.ladder_state[:, S_RUNG]))
        return float(self.ladder_state[k, S_PEAK]), bool(halt_flattens(self.ladders, self.ladder_state)
                                                          or self.rung != HALTED)

    def reset(self, names: list[str], equity: float) -> list[str]:
        """A manual return to ACTIVE of the named ladders that are not ACTIVE (the caller logs who and
        why); pending flattening sales are withdrawn unless another ladder still flattens. Returns the
        ladders reset."""
        done = []
        for k, name in enumerate(self.ladder_names):
            if name in names and self.ladder_state[k, S_RUNG] != 0:
                reset_ladder(self.ladder_state, k, self.sessions - 1, equity)
                done.append(name)
        if done and not (self.rung == HALTED and halt_flattens(self.ladders, self.ladder_state)):
            for j, cause in enumerate(self.sell_cause):
                if cause == LADDER:
                    self.sell_cause[j] = PLAN
        return done

    def status(self) -> dict[str, Any]:
        """Each ladder's rung and the pending risk sales, for the summary and the risk app."""
        return {"rung": self.rung_name,
                "ladders": {n: RUNGS[int(self.ladder_state[k, S_RUNG])] for k, n in enumerate(self.ladder_names)},
                "pending": {s: CAUSES[int(c)] for s, c in zip(self.symbols, self.sell_cause) if c != PLAN}}

    # -- helpers -----------------------------------------------------------------------------------
    def _index(self, symbol: str) -> int | None:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            return None

    def _vector(self, plan: OrderPlan) -> np.ndarray:
        """The plan's target over the book's symbols (symbols the plan does not name: no instruction)."""
        given = dict(zip(plan.symbols, plan.target))
        return np.array([given.get(s, math.nan) for s in self.symbols], dtype=float)

    # -- JSON --------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "ladder_names": self.ladder_names, "ladders": _floats(self.ladders),
                "rules": _floats(self.rules), "state": _floats(self.state), "keep": _floats(self.keep),
                "sell_cause": [int(v) for v in self.sell_cause], "sell_trigger": _floats(self.sell_trigger),
                "blocked_until": [int(v) for v in self.blocked_until], "entry": _floats(self.entry),
                "ladder_state": _floats(self.ladder_state), "plan_decided": self.plan_decided,
                "plan_start": self.plan_start, "changes": [vars(c) for c in self.changes],
                "sessions": self.sessions, "held_close": _floats(self.held_close),
                "last_close": _floats(self.last_close)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RiskBook:
        k = len(data["ladder_names"])
        rules = _array(data["rules"])
        return cls(list(data["symbols"]), list(data["ladder_names"]), _array(data["ladders"], (k, -1) if k else (0, 8)),
                   (float(rules[0]), float(rules[1]), float(rules[2]), float(rules[3])),
                   _array(data["state"]), _array(data["keep"]), np.array(data["sell_cause"], dtype=np.int64),
                   _array(data["sell_trigger"]), np.array(data["blocked_until"], dtype=np.int64),
                   _array(data["entry"]), _array(data["ladder_state"], (k, LADDER_STATE)),
                   data.get("plan_decided", ""), int(data.get("plan_start", -1)),
                   [RungChange(**c) for c in data.get("changes", [])], int(data.get("sessions", 0)),
                   _array(data.get("held_close") or [0.0] * len(data["symbols"])),
                   _array(data.get("last_close") or [None] * len(data["symbols"])))
