"""One order against one daily bar under the A-share rules: the single matcher of this project.

Pure and scalar so that the backtester's inner loop and the replay gateway call the very same code.
A sell is checked for suspension, limit-down, the T+1 lock, the participation cap and lot validity;
a buy for suspension, limit-up, the participation cap, lots and cash. Each check that refuses or
reduces the order adds its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from .config import BacktestConfig, Slippage

EPS = 1e-9


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


def cents(amount: float) -> float:
    """Round half up to 0.01 CNY (fees are charged in whole fen).

    ``amount * 100`` is first rounded to 1e-6 fen so that float noise (4.015 * 100 = 401.49999…) cannot
    turn half-up into half-down at any realistic amount.
    """
    return math.floor(round(amount * 100, 6) + 0.5) / 100


def fees(value: float, sell: bool, terms: SymbolTerms, round_costs: bool) -> tuple[float, float, float]:
    """Commission (with its per-order minimum), stamp duty (stock sells) and transfer fee."""
    if value <= 0:
        return 0.0, 0.0, 0.0
    commission = max(value * terms.commission_rate, terms.commission_min)
    stamp = value * terms.stamp_rate if sell else 0.0
    transfer = value * terms.transfer_rate
    if round_costs:
        return cents(commission), cents(stamp), cents(transfer)
    return commission, stamp, transfer


def slipped(price: float, buy: bool, slippage: Slippage, tick: float, bar: Bar) -> float:
    """The traded price after adverse slippage, on the tick grid and inside the day's limits."""
    if slippage.amount == 0:
        return price
    if slippage.unit == "ticks":
        moved = price + (1 if buy else -1) * slippage.amount * tick
    else:
        raw = price * (1 + (1 if buy else -1) * slippage.amount / 1e4)
        moved = (math.ceil(raw / tick - EPS) if buy else math.floor(raw / tick + EPS)) * tick
    if buy and bar.limit_up == bar.limit_up:
        moved = min(moved, bar.limit_up)
    if not buy and bar.limit_down == bar.limit_down:
        moved = max(moved, bar.limit_down)
    return max(moved, tick)


def valid_buy(volume: float, terms: SymbolTerms) -> float:
    """Largest buy quantity not above ``volume`` that the lot rules accept."""
    if volume < terms.lot - EPS:
        return 0.0
    return terms.lot + math.floor((volume - terms.lot + EPS) / terms.lot_step) * terms.lot_step


def valid_sell(volume: float, held: float, terms: SymbolTerms) -> float:
    """Largest sell quantity not above ``volume``: lots, or the whole odd-lot remainder with them."""
    if volume >= held - EPS:
        return held
    if terms.lot_step < terms.lot:  # STAR/BSE: at least one minimum lot, then any step
        return math.floor(volume + EPS) if volume >= terms.lot - EPS else 0.0
    whole_lots = math.floor((volume + EPS) / terms.lot) * terms.lot
    odd = held % terms.lot
    with_odd = odd + math.floor((volume - odd + EPS) / terms.lot) * terms.lot if volume >= odd - EPS else 0.0
    return max(whole_lots, with_odd)


def match(buy: bool, wanted: float, bar: Bar, terms: SymbolTerms, config: BacktestConfig, *,
          held: float = 0.0, locked: float = 0.0, cash: float = math.inf) -> Fill:
    """Fill as much of ``wanted`` (> 0 shares) as the rules allow.

    First the order is sized as a broker would accept it (T+1 lock, lots, cash), then the market
    decides (suspension, price limits, the participation cap).
    """
    rules = config.rules
    reasons: list[str] = []
    volume = wanted
    if not buy:
        sellable = held - (locked if rules.t1 and not terms.t0 else 0.0)
        if volume > sellable + EPS:
            volume = max(sellable, 0.0)
            reasons.append("t1_locked")
    if rules.lots:
        lotted = valid_buy(volume, terms) if buy else valid_sell(volume, held, terms)
        if lotted < volume - EPS and (lotted == 0 or wanted == math.floor(wanted)) and not reasons:
            reasons.append("lot_rounding")
        volume = lotted
    priced = bar.price == bar.price and bar.price > 0
    price = slipped(bar.price, buy, config.slippage, terms.tick, bar) if priced else math.nan
    if buy and volume > 0 and priced and rules.cash_check:
        volume = _affordable(volume, price, cash, terms, config, reasons)
    submitted = volume
    nothing = Fill(0.0, math.nan, 0.0, 0.0, 0.0, 0.0, 0.0, (), submitted)
    if volume <= 0:
        return nothing._replace(reasons=tuple(reasons))
    if not priced or rules.suspension and not bar.tradable:
        return nothing._replace(reasons=(*reasons, "suspended"))
    if rules.price_limits:
        if buy and bar.price >= bar.limit_up - EPS:
            return nothing._replace(reasons=(*reasons, "limit_up"))
        if not buy and bar.price <= bar.limit_down + EPS:
            return nothing._replace(reasons=(*reasons, "limit_down"))
    cap = config.participation_cap * bar.volume if bar.volume == bar.volume else math.inf
    if config.participation_cap < 1 and volume > cap + EPS:
        volume = cap
        if rules.lots:
            volume = valid_buy(cap, terms) if buy else valid_sell(cap, held, terms)
        reasons.append("participation_cap")
        if volume <= 0:
            return nothing._replace(reasons=tuple(reasons))
    value = cents(volume * price) if rules.round_costs else volume * price  # settled in whole fen
    commission, stamp, transfer = fees(value, not buy, terms, rules.round_costs)
    return Fill(volume, price, value, commission, stamp, transfer, abs(price - bar.price) * volume,
                tuple(reasons), submitted)


def _affordable(volume: float, price: float, cash: float, terms: SymbolTerms, config: BacktestConfig,
                reasons: list[str]) -> float:
    """The largest valid buy not above ``volume`` whose value and fees fit in ``cash``."""
    def cost(v: float) -> float:
        value = cents(v * price) if config.rules.round_costs else v * price
        return value + sum(fees(value, False, terms, config.rules.round_costs))

    if cost(volume) <= cash + EPS:
        return volume
    reasons.append("insufficient_cash")
    # Fees are at least rate × value, so this bounds the answer from above (the fen allows rounding).
    bound = (cash + 0.01) / (price * (1 + terms.commission_rate + terms.transfer_rate))
    if not config.rules.lots:  # fractional volumes: solve for the rate-bound or the minimum-bound case
        by_rate = cash / (price * (1 + terms.commission_rate + terms.transfer_rate))
        by_minimum = (cash - terms.commission_min) / (price * (1 + terms.transfer_rate))
        fitting = [v for v in (by_rate, by_minimum) if 0 < v <= volume and cost(v) <= cash + EPS]
        return max(fitting, default=0.0)
    fitted = valid_buy(min(bound, volume), terms)
    while fitted > 0 and cost(fitted) > cash + EPS:
        fitted = valid_buy(fitted - terms.lot_step, terms)
    return fitted
