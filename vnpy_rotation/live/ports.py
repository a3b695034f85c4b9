"""What the live cycle needs from a broker, as a Protocol: the vnpy adapter and the test fakes implement it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Broker order states as the cycle sees them (vnpy's Status mapped in the adapter).
SUBMITTING, ACTIVE, FILLED, CANCELLED, REJECTED = "submitting", "active", "filled", "cancelled", "rejected"
FINAL_STATES = frozenset({FILLED, CANCELLED, REJECTED})


@dataclass(frozen=True)
class BrokerOrder:
    order_id: str
    reference: str
    symbol: str
    buy: bool
    volume: float
    price: float
    traded: float
    status: str  # one of the states above

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES


@dataclass(frozen=True)
class BrokerTrade:
    trade_id: str
    order_id: str
    symbol: str
    buy: bool
    price: float
    volume: float
    time: str


class BrokerPort(Protocol):
    """The account a strategy trades (one rotation strategy per account)."""

    def send(self, symbol: str, buy: bool, volume: float, price: float, reference: str) -> str:
        """Send a limit order; returns the broker's order id ("" when refused before reaching it)."""

    def cancel(self, order_id: str) -> None: ...

    def orders(self) -> list[BrokerOrder]:
        """Today's orders the broker knows (their ``reference`` may be empty: vnpy_xt does not echo it)."""

    def trades_of(self, order_id: str) -> list[BrokerTrade]: ...

    def holdings(self) -> dict[str, float]:
        """Shares held per symbol."""

    def cash(self) -> float:
        """Cash available for buying."""
