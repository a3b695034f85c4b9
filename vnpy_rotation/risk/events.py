"""The risk engine's events: their type names on vnpy's event engine and their frozen records (no vnpy here).

The VeighNa risk app (:mod:`vnpy_rotation.apps.risk`) publishes them; the rotation app, the GUI,
notifications and the daily summary consume them. Every record turns into JSON and back
(``to_json`` / ``from_json``): the app keeps its history and denials in its state file.

=================== ========================= ====================================================
event type          record                    when
=================== ========================= ====================================================
``eRiskStrategy``   :class:`StrategyRiskUpdate` a strategy's ladder after its session close (the
                                                rotation app publishes it; the risk app keeps it)
``eRiskState``      :class:`RiskStateChange`  a rung changed (ladder, strategy update, manual reset)
``eRiskDenial``     :class:`RiskDenial`       the vnpy_riskmanager rule refused an order
``eRiskAlert``      :class:`RiskAlert`        a monitor or a fail-safe raised something
``eRiskSnapshot``   ``dict``                  the app's whole state, for the GUI, after any change
=================== ========================= ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .ladder import RUNGS

EVENT_RISK_STRATEGY = "eRiskStrategy"
EVENT_RISK_STATE = "eRiskState"
EVENT_RISK_DENIAL = "eRiskDenial"
EVENT_RISK_ALERT = "eRiskAlert"
EVENT_RISK_SNAPSHOT = "eRiskSnapshot"

ACCOUNT = "account"  # the scope of the account ladder (a strategy may not take this name)
RISK_STATE_FILE = "risk_state.json"  # the risk app's state in a state folder (read by ops without the app)


@dataclass(frozen=True)
class StrategyRiskUpdate:
    """A strategy's ladder at a session close. ``flatten``: a HALTED strategy sells its book (True) or
    freezes it (False: no orders at all)."""

    strategy: str
    day: date
    rung: str
    reasons: tuple[str, ...]
    equity: float
    peak: float
    flatten: bool = True

    def __post_init__(self) -> None:
        if self.rung not in RUNGS:
            raise ValueError(f"rung {self.rung!r} is not one of {', '.join(RUNGS)}")

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "day": self.day.isoformat(), "rung": self.rung,
                "reasons": list(self.reasons), "equity": self.equity, "peak": self.peak, "flatten": self.flatten}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StrategyRiskUpdate:
        return cls(str(raw["strategy"]), date.fromisoformat(raw["day"]), str(raw["rung"]),
                   tuple(str(r) for r in raw["reasons"]), float(raw["equity"]), float(raw["peak"]),
                   bool(raw.get("flatten", True)))


@dataclass(frozen=True)
class RiskStateChange:
    """One rung change of ``scope`` (``"account"`` or a strategy name). ``source``: ``ladder`` (the account
    ladder at a close), ``strategy`` (a :class:`StrategyRiskUpdate`) or ``reset`` (a manual reset)."""

    scope: str
    day: date
    before: str
    after: str
    reason: str
    source: str = "ladder"

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "day": self.day.isoformat(), "before": self.before, "after": self.after,
                "reason": self.reason, "source": self.source}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RiskStateChange:
        return cls(str(raw["scope"]), date.fromisoformat(raw["day"]), str(raw["before"]), str(raw["after"]),
                   str(raw["reason"]), str(raw.get("source", "ladder")))


@dataclass(frozen=True)
class RiskDenial:
    """An order the rule refused. ``strategy`` is ``""`` for an order without a strategy reference;
    ``direction`` is ``"buy"`` or ``"sell"``; ``rung`` is the binding rung."""

    strategy: str
    vt_symbol: str
    direction: str
    volume: float
    rung: str
    reason: str
    time: datetime

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "vt_symbol": self.vt_symbol, "direction": self.direction,
                "volume": self.volume, "rung": self.rung, "reason": self.reason, "time": self.time.isoformat()}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RiskDenial:
        return cls(str(raw["strategy"]), str(raw["vt_symbol"]), str(raw["direction"]), float(raw["volume"]),
                   str(raw["rung"]), str(raw["reason"]), datetime.fromisoformat(raw["time"]))


@dataclass(frozen=True)
class RiskAlert:
    """Something a monitor or a fail-safe raised (``kind``: e.g. ``drift``, ``var_exception``, ``freeze``)."""

    kind: str
    scope: str
    day: date
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "scope": self.scope, "day": self.day.isoformat(), "reason": self.reason}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RiskAlert:
        return cls(str(raw["kind"]), str(raw["scope"]), date.fromisoformat(raw["day"]), str(raw["reason"]))


def order_denial(rung: str, flatten: bool, buy: bool) -> str | None:
    """Why an order may not go out under ``rung`` (None: it may). Long-only A-shares: a buy opens or adds,
    a sell reduces. REDUCING is reduce-only; HALTED lets only the flattening plan's sells through, or
    nothing when the ladder freezes the book (``flatten`` False)."""
    if rung == "REDUCING" and buy:
        return "REDUCING: reduce-only, buys are refused"
    if rung == "HALTED" and not flatten:
        return "HALTED (freeze): no orders"
    if rung == "HALTED" and buy:
        return "HALTED: only the flattening sells may go out"
    return None
