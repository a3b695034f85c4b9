"""What a live strategy remembers between events and across restarts: its order plan and the day's progress.

Plain dataclasses with a JSON form. :class:`OrderPlan` is one target row decided after a close;
:class:`DayProgress` is one session's execution of it: the legs sized at the open, every order with the
reference it was sent under (written down *before* sending, so a restart can ask the broker whether it
arrived), and every fill.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .canary_stage import CanaryLedger
    from .risk_stage import RiskBook


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@dataclass
class OrderPlan:
    """A target row: weights (or share counts) per symbol, NaN = no instruction (keep the holding)."""

    strategy: str
    decided: str  # ISO date of the close it was decided on
    symbols: list[str]
    target: list[float]
    weighted: bool = True
    reason: str = "rebalance"
    notes: dict[str, str] = field(default_factory=dict)  # why each symbol has its target

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = [_number(v) for v in self.target]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OrderPlan":
        data = dict(data)
        data["target"] = [math.nan if v is None else float(v) for v in data["target"]]
        return cls(**data)

    def note(self, symbol: str) -> str:
        return self.notes.get(symbol) or self.reason


# An order's life on our side. INTENT is written before the broker is called; a restart that finds it
# asks the broker for the reference and either adopts the order or knows it never arrived.
INTENT, SENT, FINAL, UNSENT = "intent", "sent", "final", "unsent"


@dataclass
class OrderRecord:
    reference: str  # unique per strategy, day, leg and attempt; sent to the broker with the order
    symbol: str
    buy: bool
    volume: float
    price: float  # the limit
    expected_price: float  # the fill price the order was sized with
    leg: int
    state: str = INTENT
    order_id: str = ""  # the broker's (vnpy's vt_orderid)
    traded: float = 0.0  # from the fills we recorded
    status: str = ""  # the broker's last status
    broker_traded: float = 0.0  # the broker's own count (its order updates)
    sent_at: str = ""  # when it went to the broker (ISO 8601 with the offset, the cycle's clock); "": not recorded


@dataclass
class FillRecord:
    trade_id: str
    reference: str
    symbol: str
    buy: bool
    price: float
    volume: float
    value: float
    commission: float
    stamp_duty: float
    transfer_fee: float
    slippage: float
    reason: str
    time: str


@dataclass
class LegRecord:
    """One symbol's trade for the day, as sized at the open."""

    symbol: str
    buy: bool
    wanted: float  # before the broker's sizing
    submitted: float  # after it (T+1, lots, cash); what the leg tries to fill today
    cuts: list[str] = field(default_factory=list)  # what the sizing cut, by the matcher's reason names
    filled: float = 0.0
    sized: bool = False  # buys are sized when their turn comes, on the cash the earlier fills left
    round: int = -1  # the last sending round (0 at the open, then one per resubmission) that handled it
    price: float = float("nan")  # the undisturbed execution price it was sized at (for slippage)
    cause: int = 0  # why the leg exists: 0 the plan, else the risk rule (risk.stops.CAUSES)
    trigger: float = float("nan")  # a risk sale's trigger (loss from entry, or drawdown)

    @property
    def remaining(self) -> float:
        return max(self.submitted - self.filled, 0.0)


@dataclass
class DayProgress:
    day: str
    phase: str
    cash_open: float  # the broker's cash at the start of the session
    holdings_open: dict[str, float] = field(default_factory=dict)  # the broker's shares at the start
    legs: list[LegRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    round: int = 0  # 0 at the open, then one per resubmission
    retry: bool = False  # something the backtester would try again tomorrow was cut or left unfilled

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DayProgress":
        data = dict(data)
        data["legs"] = [LegRecord(**x) for x in data.get("legs", [])]
        data["orders"] = [OrderRecord(**x) for x in data.get("orders", [])]
        data["fills"] = [FillRecord(**x) for x in data.get("fills", [])]
        return cls(**data)


@dataclass
class StrategyState:
    """Everything persisted for one strategy instance."""

    plan: OrderPlan | None = None  # the target being executed (kept while it must be retried)
    progress: DayProgress | None = None  # today's execution, None outside a session
    last_close: str = ""  # the last session whose after-close cycle completed
    history: list[dict[str, Any]] = field(default_factory=list)  # daily summaries
    risk: RiskBook | None = None  # the risk stage's state (created with the first decided plan)
    canary: CanaryLedger | None = None  # the latest canary release (kept after it ends, for its record)

    def to_json(self) -> dict[str, Any]:
        return {"plan": None if self.plan is None else self.plan.to_json(),
                "progress": None if self.progress is None else self.progress.to_json(),
                "last_close": self.last_close, "history": self.history,
                "risk": None if self.risk is None else self.risk.to_json(),
                "canary": None if self.canary is None else self.canary.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StrategyState":
        from .canary_stage import CanaryLedger  # (they build on the plan records above)
        from .risk_stage import RiskBook

        return cls(plan=None if data.get("plan") is None else OrderPlan.from_json(data["plan"]),
                   progress=None if data.get("progress") is None else DayProgress.from_json(data["progress"]),
                   last_close=data.get("last_close", ""), history=list(data.get("history", [])),
                   risk=None if data.get("risk") is None else RiskBook.from_json(data["risk"]),
                   canary=None if data.get("canary") is None else CanaryLedger.from_json(data["canary"]))
