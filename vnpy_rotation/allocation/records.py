"""What the allocation rules read (:class:`Snapshot`) and what they decide (:class:`AllocationDecision`).

The decision is also the record the risk engine keeps with its state (a JSON object, :meth:`to_json` /
:meth:`from_json`) and sizing reads (:meth:`AllocationDecision.amount`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class AccountState:
    """An account as the broker reports it: total equity (cash + market value) and cash, CNY."""

    equity: float
    cash: float


@dataclass(frozen=True)
class Snapshot:
    """Everything the rules read, point in time: each account's equity and cash, and each strategy's realised
    daily returns as ``(session, return)`` pairs in date order (returns dated after ``now`` are ignored)."""

    accounts: Mapping[str, AccountState]
    returns: Mapping[str, tuple[tuple[date, float], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AllocationLine:
    """One strategy's allocation: ``amount`` CNY of ``account``'s equity, ``weight`` = amount / equity;
    ``volatility`` the annualised realised volatility the rule used (NaN when it used none)."""

    strategy: str
    account: str
    amount: float
    weight: float
    reason: str
    volatility: float = float("nan")


@dataclass(frozen=True)
class AccountLine:
    """An account's side of a decision: its equity then, and how much of it is allocated."""

    account: str
    equity: float
    allocated: float
    reason: str = ""

    @property
    def unallocated(self) -> float:
        return self.equity - self.allocated


@dataclass(frozen=True)
class AllocationDecision:
    """The capital each strategy may use, decided at ``at`` by ``rule``; ``reason`` says why this decision
    stands (computed now, kept from the previous review, ...)."""

    at: datetime
    rule: str
    lines: tuple[AllocationLine, ...]
    accounts: tuple[AccountLine, ...]
    reason: str = ""

    def line(self, strategy: str) -> AllocationLine | None:
        return next((x for x in self.lines if x.strategy == strategy), None)

    def amount(self, strategy: str) -> float | None:
        """The CNY ``strategy`` may use (None: not allocated, so not capped by this record)."""
        x = self.line(strategy)
        return None if x is None else x.amount

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "rule": self.rule, "reason": self.reason,
                "lines": [{"strategy": x.strategy, "account": x.account, "amount": x.amount, "weight": x.weight,
                           "reason": x.reason, "volatility": None if x.volatility != x.volatility else x.volatility}
                          for x in self.lines],
                "accounts": [{"account": a.account, "equity": a.equity, "allocated": a.allocated, "reason": a.reason}
                             for a in self.accounts]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AllocationDecision:
        lines = tuple(AllocationLine(x["strategy"], x["account"], float(x["amount"]), float(x["weight"]), x["reason"],
                                     float("nan") if x.get("volatility") is None else float(x["volatility"]))
                      for x in data["lines"])
        accounts = tuple(AccountLine(a["account"], float(a["equity"]), float(a["allocated"]), a.get("reason", ""))
                         for a in data["accounts"])
        return cls(datetime.fromisoformat(data["at"]), data["rule"], lines, accounts, data.get("reason", ""))
