"""At the open: a target row, the holdings, the cash and the opening prices become order volumes.

The same steps as the backtester's day loop (:func:`~vnpy_rotation.backtest.kernel.run_days`): value the
book at the execution prices, turn weights into share counts, skip sub-lot weight differences, then size
each order as a broker accepts it (T+1 lock, lots, cash) with the compiled matcher itself
(:func:`~vnpy_rotation.backtest.matching.match` with the market's refusals switched off). Sells come
first; buys are sized one at a time on the cash the earlier fills left, so a replay through the live
stack fills exactly what the backtest fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..backtest import kernel
from ..backtest.config import BacktestConfig
from ..backtest.matching import Bar, Fill, SymbolTerms, match

# Refusal reasons after which the backtester tries the target again on the next day (config.resubmit).
RETRYABLE = frozenset(name for k, name in enumerate(kernel.REASON_BITS) if kernel.RETRYABLE & (1 << k))


@dataclass(frozen=True)
class Quote:
    """One symbol at the open: the undisturbed execution price (NaN: not trading), the day's limits, and
    the previous close (values a holding that does not trade)."""

    price: float
    limit_up: float = math.nan
    limit_down: float = math.nan
    previous_close: float = math.nan


@dataclass(frozen=True)
class Leg:
    """One symbol's trade for the day: direction and the shares wanted before the broker's sizing."""

    symbol: str
    buy: bool
    wanted: float


def desired_shares(target: np.ndarray, weighted: bool, shares: np.ndarray, cash: float,
                   prices: np.ndarray) -> np.ndarray:
    """Share counts the target asks for (the backtester's own :func:`kernel.desired_shares`); NaN weights
    keep the holding, equity is valued at the execution prices (the open, or the last close)."""
    out = np.empty(len(shares))
    kernel.desired_shares(np.asarray(target, dtype=float), bool(weighted), np.asarray(shares, dtype=float),
                          float(cash), np.asarray(prices, dtype=float), out)
    return out


def legs(symbols: tuple[str, ...], target: np.ndarray, weighted: bool, shares: np.ndarray,
         desired: np.ndarray, lot: np.ndarray, lots_rule: bool) -> tuple[list[Leg], list[Leg]]:
    """(sells, buys) in symbol order. Weight differences below one lot are skipped unless they open a
    position from nothing or close one out (the backtester's rule)."""
    sells, buys = [], []
    for j, symbol in enumerate(symbols):
        for buy, out in ((False, sells), (True, buys)):
            wanted = desired[j] - shares[j] if buy else shares[j] - desired[j]
            if wanted <= 1e-9:
                continue
            if lots_rule and weighted and wanted < lot[j] and not (
                    (buy and shares[j] == 0) or (not buy and desired[j] == 0)):
                continue
            out.append(Leg(symbol, buy, float(wanted)))
    return sells, buys


def sizing_config(config: BacktestConfig) -> BacktestConfig:
    """``config`` with the market's refusals off: what remains is the broker's order sizing."""
    rules = config.rules.model_copy(update={"price_limits": False, "suspension": False})
    return config.model_copy(update={"participation_cap": 1.0, "rules": rules})


def size_order(leg: Leg, quote: Quote, terms: SymbolTerms, config: BacktestConfig, *, held: float,
               locked: float, cash: float) -> Fill:
    """The order the broker accepts for ``leg``: ``Fill.submitted`` shares at ``Fill.price`` (the slipped
    execution price); ``Fill.reasons`` says what sizing cut (T+1 lock, lots, cash).

    ``config`` must come from :func:`sizing_config`.
    """
    bar = Bar(quote.price, math.nan, quote.limit_up, quote.limit_down, True)
    return match(leg.buy, leg.wanted, bar, terms, config, held=held, locked=locked, cash=cash)


def limit_price(fill_price: float, buy: bool, tolerance_bps: float, quote: Quote, tick: float) -> float:
    """The limit sent with an order: the expected fill price moved ``tolerance_bps`` against us, on the
    tick grid and inside the day's limits (a price outside them is refused by the exchange)."""
    sign = 1.0 if buy else -1.0
    raw = fill_price * (1 + sign * tolerance_bps / 1e4)
    ticks = math.ceil(raw / tick - 1e-9) if buy else math.floor(raw / tick + 1e-9)
    price = round(ticks * tick, 6)
    if buy and quote.limit_up == quote.limit_up:
        price = min(price, quote.limit_up)
    if not buy and quote.limit_down == quote.limit_down:
        price = max(price, quote.limit_down)
    return price


def buy_cost(volume: float, price: float, terms: SymbolTerms, round_costs: bool) -> float:
    """Cash a buy of ``volume`` at ``price`` takes, fees included."""
    value = kernel.cents(volume * price) if round_costs else volume * price
    commission, stamp, transfer = kernel.order_fees(value, False, terms.commission_rate, terms.commission_min,
                                                    0.0, terms.transfer_rate, round_costs)
    return value + commission + stamp + transfer
