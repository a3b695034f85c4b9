"""The sizing hook: a strategy's orders of one session, capped so its book stays within its allocation.

Sizing (:mod:`vnpy_rotation.live.sizing`) turns a target into orders on the strategy's own book; with
several strategies in one account, each may hold at most its allocated CNY
(:meth:`~.records.AllocationDecision.amount`). :func:`cap_to_allocation` takes the sized orders, the book's
value at the execution prices and the allocation, and returns the orders it may send: sells are never cut
(they free capital); buys are kept in their order (the order sizing sends them in) until the book, valued
at the execution prices, would exceed the allocation; a buy that would cross it is rounded down to the whole lots
the room left still buys (later, cheaper buys may use what rounding left). A cut says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SizedOrder:
    """One order as sizing made it: ``volume`` shares at the execution ``price``; buys move in ``lot`` steps."""

    symbol: str
    buy: bool
    volume: float
    price: float
    lot: int = 100


@dataclass(frozen=True)
class CappedOrder:
    """An order after the allocation cap: ``volume`` of the ``wanted``; ``reason`` is empty when not cut."""

    symbol: str
    buy: bool
    wanted: float
    volume: float
    price: float
    reason: str = ""

    @property
    def cut(self) -> bool:
        return self.volume < self.wanted


def cap_to_allocation(orders: Sequence[SizedOrder], book_value: float, allocation: float | None,
                      ) -> tuple[CappedOrder, ...]:
    """The orders the strategy may send with ``allocation`` CNY (None: no allocation, nothing is cut).

    ``book_value``: the strategy's holdings valued at the execution prices before these orders (its cash is
    not counted: the allocation bounds what it holds, and the account's cash is shared).
    """
    out: list[CappedOrder] = []
    if allocation is None:
        return tuple(CappedOrder(o.symbol, o.buy, o.volume, o.volume, o.price) for o in orders)
    held = book_value - sum(o.volume * o.price for o in orders if not o.buy)
    room = allocation - held
    for o in orders:
        if not o.buy:
            out.append(CappedOrder(o.symbol, o.buy, o.volume, o.volume, o.price))
            continue
        value = o.volume * o.price
        if value <= room + 1e-6:
            out.append(CappedOrder(o.symbol, o.buy, o.volume, o.volume, o.price))
            room -= value
            continue
        lot = max(o.lot, 1)
        volume = float(max(math.floor(max(room, 0.0) / o.price / lot + 1e-9), 0) * lot) if o.price > 0 else 0.0
        volume = min(volume, o.volume)
        reason = (f"allocation {allocation:,.2f} CNY: {max(room, 0.0):,.2f} CNY left for a buy of "
                  f"{value:,.2f} CNY, cut from {o.volume:g} to {volume:g}")
        out.append(CappedOrder(o.symbol, o.buy, o.volume, volume, o.price, reason))
        room -= volume * o.price
    return tuple(out)
