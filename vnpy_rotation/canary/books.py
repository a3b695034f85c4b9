"""One version's book during a canary: its cash, its share lots (with their real purchase dates), fees and equity.

Champion and candidate trade in ONE broker account; each keeps a book so its holdings, cash, fees and P&L stay
separate while the books' sum equals the account (``canary.netting`` moves shares and cash between them).

Units: shares in shares, prices in CNY per share, cash, fees and equity in CNY, days as ISO dates (``YYYY-MM-DD``).
A ``Lot`` is a block of shares bought on one day; moving shares between books moves lots, oldest first, and a
moved lot keeps the date of its REAL purchase so the T+1 lock follows the shares, not the bookkeeping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FEE_KINDS = ("commission", "stamp_duty", "transfer_fee", "slippage")
EPS = 1e-9  # shares below this are dust left by float arithmetic, not a holding


@dataclass(frozen=True)
class Lot:
    """A block of shares held by one book."""

    shares: float
    bought: str  # ISO date of the REAL purchase (a transfer between books keeps it: the T+1 lock follows it)
    price: float  # CNY per share this book paid: the fill price of a real buy, the transfer price of a transfer


def _zero_fees() -> dict[str, float]:
    return dict.fromkeys(FEE_KINDS, 0.0)


@dataclass
class VersionBook:
    """A version's share of the strategy's account. Mutable: ``canary.netting`` updates it after each session.

    ``fees`` are cumulative CNY by kind (``FEE_KINDS``). Commission, stamp duty and transfer fee are paid from
    ``cash``; ``slippage`` is only recorded (it is already in the fills' traded value). ``paper`` books belong to
    the shadow stage: paper-filled, never in the broker account. ``equity`` holds ``(day, equity at close)``;
    ``flows`` holds ``(day, CNY moved into the book by a re-scale)`` (negative when the book gave), so the
    returns exclude capital moved between versions.
    """

    version: str
    cash: float
    lots: dict[str, list[Lot]] = field(default_factory=dict)
    fees: dict[str, float] = field(default_factory=_zero_fees)
    paper: bool = False
    equity: list[tuple[str, float]] = field(default_factory=list)
    flows: list[tuple[str, float]] = field(default_factory=list)

    # ----------------------------------------------------------------- holdings
    def shares(self, symbol: str) -> float:
        """Shares of ``symbol`` held (0 when none)."""
        return float(sum(lot.shares for lot in self.lots.get(symbol, ())))

    def holdings(self) -> dict[str, float]:
        """Shares per symbol held, without empty symbols."""
        return {symbol: total for symbol in self.lots if (total := self.shares(symbol)) > EPS}

    def sellable(self, symbol: str, day: str, t0: bool = False) -> float:
        """Shares of ``symbol`` that may be sold on ``day``: those whose real purchase date is before ``day``.

        A-share T+1: securities bought may not be sold before settlement unless the security trades T+0
        (SSE Trading Rules, 上海证券交易所交易规则, art. 3.1.4; the same rule in the SZSE Trading Rules,
        深圳证券交易所交易规则). ``t0=True`` is for the T+0 funds (bond, gold, cross-border and money-market ETFs):
        everything held is sellable.
        """
        return float(sum(lot.shares for lot in self.lots.get(symbol, ()) if t0 or lot.bought < day))

    # ----------------------------------------------------------------- value
    def value(self, prices: Mapping[str, float]) -> float:
        """Market value of the holdings at ``prices`` (CNY). A held symbol without a finite price is an error:
        the caller values a suspended symbol at its last close."""
        total = 0.0
        for symbol, shares in self.holdings().items():
            price = prices.get(symbol, math.nan)
            if not math.isfinite(price):
                raise ValueError(f"book {self.version}: no price for {symbol} (a suspended symbol is valued at its last close)")
            total += shares * price
        return total

    def equity_at(self, prices: Mapping[str, float]) -> float:
        """Cash plus the holdings' value at ``prices`` (CNY)."""
        return self.cash + self.value(prices)

    def mark(self, day: str, closes: Mapping[str, float]) -> float:
        """Append ``(day, equity at closes)`` and return the equity. A day already marked is not marked again
        (its stored equity is returned); a day before the last marked one is refused."""
        for marked, equity in reversed(self.equity):
            if marked == day:
                return equity
        if self.equity and day < self.equity[-1][0]:
            raise ValueError(f"book {self.version}: mark for {day} after {self.equity[-1][0]} was marked")
        equity = self.equity_at(closes)
        self.equity.append((day, equity))
        return equity

    def daily_returns(self) -> npt.NDArray[np.float64]:
        """Close-to-close returns of the marked equity, one per marked day after the first, net of re-scales.

        A re-scale happens at the start of a session, so the capital it moves earns that session's return:
        ``r_t = E_t / (E_{t-1} + F_t) - 1`` with ``F_t`` the CNY moved in on the days after the previous mark up
        to and including day t. A book with no capital at the start of a session (base <= 0) returns 0 for it.
        """
        if len(self.equity) < 2:
            return np.zeros(0)
        days = np.array([day for day, _ in self.equity])
        equity = np.array([value for _, value in self.equity], dtype=float)
        inflow = np.zeros(len(days))
        if self.flows:
            flow_days = np.array([day for day, _ in self.flows])
            amounts = np.array([amount for _, amount in self.flows], dtype=float)
            slot = np.searchsorted(days, flow_days, side="left")  # the first marked day on or after the flow
            keep = slot < len(days)
            np.add.at(inflow, slot[keep], amounts[keep])
        base = equity[:-1] + inflow[1:]
        safe = np.where(base > 0, base, 1.0)
        returns: npt.NDArray[np.float64] = np.where(base > 0, equity[1:] / safe - 1.0, 0.0)
        return returns

    # ----------------------------------------------------------------- lots
    def add(self, symbol: str, lot: Lot) -> None:
        """Add a lot; one bought on the same day at the same price as the last lot merges into it."""
        if lot.shares <= EPS:
            return
        held = self.lots.setdefault(symbol, [])
        if held and held[-1].bought == lot.bought and held[-1].price == lot.price:
            held[-1] = Lot(held[-1].shares + lot.shares, lot.bought, lot.price)
        else:
            held.append(lot)
            held.sort(key=lambda item: item.bought)  # stable: oldest first, arrival order within a day

    def take(self, symbol: str, shares: float, before: str | None = None) -> list[Lot]:
        """Remove ``shares`` of ``symbol``, oldest lots first, and return them (a lot may be split).

        With ``before`` only lots bought before that day are taken (a sale under T+1). Taking more than is
        held (or sellable) is an error: the books would no longer sum to the account.
        """
        if shares <= EPS:
            return []
        held = self.lots.get(symbol, [])
        available = sum(lot.shares for lot in held if before is None or lot.bought < before)
        if shares > available + EPS:
            what = "sellable" if before is not None else "held"
            raise ValueError(f"book {self.version}: cannot take {shares:g} {symbol}, {available:g} {what}")
        taken: list[Lot] = []
        kept: list[Lot] = []
        need = shares
        for lot in held:
            if need <= EPS or (before is not None and lot.bought >= before):
                kept.append(lot)
                continue
            part = min(lot.shares, need)
            taken.append(Lot(part, lot.bought, lot.price))
            need -= part
            if lot.shares - part > EPS:
                kept.append(Lot(lot.shares - part, lot.bought, lot.price))
        if kept:
            self.lots[symbol] = kept
        else:
            self.lots.pop(symbol, None)
        return taken

    def charge(self, commission: float, stamp_duty: float, transfer_fee: float, slippage: float) -> None:
        """Record a trade's fees: commission, stamp duty and transfer fee leave the cash; slippage is recorded
        only (it is already in the traded value)."""
        self.cash -= commission + stamp_duty + transfer_fee
        for kind, amount in zip(FEE_KINDS, (commission, stamp_duty, transfer_fee, slippage)):
            self.fees[kind] = self.fees.get(kind, 0.0) + amount

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats as the strings ``nan``, ``inf``, ``-inf``)."""
        return {
            "version": self.version,
            "cash": _enc(self.cash),
            "lots": {symbol: [[_enc(lot.shares), lot.bought, _enc(lot.price)] for lot in lots]
                     for symbol, lots in self.lots.items()},
            "fees": {kind: _enc(amount) for kind, amount in self.fees.items()},
            "paper": self.paper,
            "equity": [[day, _enc(value)] for day, value in self.equity],
            "flows": [[day, _enc(value)] for day, value in self.flows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionBook:
        """The book ``to_dict`` wrote (exactly: floats round-trip through their repr)."""
        return cls(
            version=str(data["version"]),
            cash=_dec(data["cash"]),
            lots={str(symbol): [Lot(_dec(shares), str(bought), _dec(price)) for shares, bought, price in lots]
                  for symbol, lots in data.get("lots", {}).items()},
            fees={**_zero_fees(), **{str(kind): _dec(amount) for kind, amount in data.get("fees", {}).items()}},
            paper=bool(data.get("paper", False)),
            equity=[(str(day), _dec(value)) for day, value in data.get("equity", [])],
            flows=[(str(day), _dec(value)) for day, value in data.get("flows", [])],
        )

    def to_json(self) -> str:
        """Strict JSON text (no bare NaN); ``from_json`` restores the book exactly."""
        return json.dumps(self.to_dict(), allow_nan=False, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VersionBook:
        return cls.from_dict(json.loads(text))


def _enc(value: float) -> float | str:
    return float(value) if math.isfinite(value) else str(float(value))


def _dec(value: Any) -> float:
    return float(value)  # float("nan"), float("inf"), float("-inf") read the strings _enc wrote


def transfer(source: VersionBook, target: VersionBook, symbol: str, shares: float, price: float) -> list[Lot]:
    """Move ``shares`` of ``symbol`` from ``source`` to ``target`` at ``price``, with no fee and no order.

    The source's oldest lots move, keeping their real purchase dates (so T+1 follows the shares); the target
    pays ``shares * price`` to the source and records the lots at ``price``. Returns the moved lots.
    """
    moved = source.take(symbol, shares)
    for lot in moved:
        target.add(symbol, Lot(lot.shares, lot.bought, price))
    source.cash += shares * price
    target.cash -= shares * price
    return moved
