"""One order against one daily bar under the A-share rules — the Python face of the compiled matcher.

:func:`match` wraps :func:`~vnpy_rotation.backtest.kernel.match_order`, the single implementation the
backtest loop also runs, so the replay gateway and tests exercise exactly the backtester's rules. A sell
is checked for the T+1 lock, lots, suspension, limit-down and the participation cap; a buy for lots,
cash, suspension, limit-up and the participation cap. Each check that refuses or reduces it adds its
reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from . import kernel
from .config import BacktestConfig

if TYPE_CHECKING:
    from ..data.market_data import MarketData

cents = kernel.cents


@dataclass(frozen=True, slots=True)
class SymbolTerms:
    """Everything about one symbol on one day that the matcher needs besides the bar."""

    lot: float
    lot_step: float
    tick: float
    is_stock: bool
    t0: bool
    commission_rate: float
    commission_min: float
    stamp_rate: float  # already 0 unless a stock on a taxed day
    transfer_rate: float  # already 0 unless a stock


class Bar(NamedTuple):
    price: float  # undisturbed fill price: the open, or the day's VWAP
    volume: float  # the day's traded volume (shares)
    limit_up: float  # NaN: no limit
    limit_down: float
    tradable: bool


class Fill(NamedTuple):
    volume: float  # executed
    price: float
    value: float
    commission: float
    stamp_duty: float
    transfer_fee: float
    slippage: float
    reasons: tuple[str, ...]
    submitted: float = 0.0  # after the order-sizing rules (T+1, lots, cash), before the market's refusals


def reason_names(bits: int) -> tuple[str, ...]:
    return tuple(name for k, name in enumerate(kernel.REASON_BITS) if int(bits) & (1 << k))


def fees(value: float, sell: bool, terms: SymbolTerms, round_costs: bool) -> tuple[float, float, float]:
    """Commission (with its per-order minimum), stamp duty (stock sells) and transfer fee."""
    return kernel.order_fees(value, sell, terms.commission_rate, terms.commission_min, terms.stamp_rate,
                             terms.transfer_rate, round_costs)


def valid_buy(volume: float, terms: SymbolTerms) -> float:
    """Largest buy quantity not above ``volume`` that the lot rules accept."""
    return kernel.lot_buy(volume, terms.lot, terms.lot_step)


def valid_sell(volume: float, held: float, terms: SymbolTerms) -> float:
    """Largest sell quantity not above ``volume``: lots, or the whole odd-lot remainder with them."""
    return kernel.lot_sell(volume, held, terms.lot, terms.lot_step)


def match(buy: bool, wanted: float, bar: Bar, terms: SymbolTerms, config: BacktestConfig, *,
          held: float = 0.0, locked: float = 0.0, cash: float = math.inf) -> Fill:
    """Fill as much of ``wanted`` (> 0 shares) as the rules allow."""
    r = config.rules
    out = kernel.match_order(
        buy, float(wanted), float(bar.price), float(bar.volume), float(bar.limit_up), float(bar.limit_down),
        bool(bar.tradable), float(terms.lot), float(terms.lot_step), float(terms.tick), bool(terms.t0),
        float(terms.commission_rate), float(terms.commission_min), float(terms.stamp_rate),
        float(terms.transfer_rate), float(held), float(locked), float(cash), float(config.participation_cap),
        config.slippage.unit == "bps", float(config.slippage.amount), r.lots, r.t1, r.price_limits,
        r.suspension, r.round_costs, r.cash_check)
    volume, price, value, commission, stamp, transfer, slippage, bits, submitted = out
    return Fill(volume, price, value, commission, stamp, transfer, slippage, reason_names(bits), submitted)


def terms_at(md: "MarketData", i: int, j: int, config: BacktestConfig) -> SymbolTerms:
    """The matcher terms the backtester uses for symbol ``j`` on day ``i`` under ``config``'s rules."""
    stock = bool(md.is_stock[j])
    fee = config.stock_commission if stock else config.etf_commission
    rules = config.rules
    return SymbolTerms(float(md.lot[j]), float(md.lot_step[j]), float(md.tick[j]), stock, bool(md.t0[i, j]),
                       fee.rate, fee.minimum, float(md.stamp_rate[i]) if stock and rules.stamp_duty else 0.0,
                       float(md.transfer_rate[i]) if stock and rules.transfer_fee else 0.0)


def bar_at(md: "MarketData", i: int, j: int) -> Bar:
    """Symbol ``j``'s bar on day ``i`` for open fills (NaN price: no bar)."""
    price = float(md.open[i, j])
    return Bar(price if math.isfinite(price) else math.nan, float(md.volume[i, j]), float(md.limit_up[i, j]),
               float(md.limit_down[i, j]), bool(~md.suspended[i, j]))
