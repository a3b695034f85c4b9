"""The compiled core: the A-share matcher for one order and the day loop that drives it.

Written with scalars and arrays only so that numba compiles it (``cache=True``: the machine code is kept
next to the module after the first run). The matcher :func:`match_order` is the one implementation of
the fill rules: the backtest loop calls it here, and :func:`vnpy_rotation.backtest.matching.match` (used
by tests and the replay gateway) calls it from Python.

Refusal reasons travel as bits of an int (``REASON_BITS``), in the order they are checked. The risk
rules of :mod:`~vnpy_rotation.risk.stops` run inside the day loop (:func:`~vnpy_rotation.risk.stops.check_close` at each
close, their sells first thing the next day); with every rule off they cost a few branches.
"""

from __future__ import annotations

import math

import numpy as np

from ..compiled import jit
from ..risk.ladder import (
    HALTED,
    LADDER_STATE,
    REDUCING,
    S_LAST,
    S_RUNG,
    exposure,
    halt_flattens,
)
from ..risk.stops import (
    DRAWDOWN_HALVE,
    FLAT,
    FLAT_SINCE,
    PLAN,
    RISK_STATE,
    check_close,
    ladder_close,
    start_row,
    stops_on,
)
from .result import REFUSAL_REASONS

EPS = 1e-9
REASON_BITS = REFUSAL_REASONS
T1_LOCKED, LOT_ROUNDING, INSUFFICIENT_CASH, SUSPENDED, LIMIT_UP, LIMIT_DOWN, PARTICIPATION_CAP, RISK_DENIED = (
    1, 2, 4, 8, 16, 32, 64, 128)
# Reasons that may clear by tomorrow: the rest of the target is tried again (config.resubmit).
RETRYABLE = T1_LOCKED | SUSPENDED | LIMIT_UP | LIMIT_DOWN | PARTICIPATION_CAP
# cause: what sent the order (PLAN ... DRAWDOWN_HALVE, named by risk.stops.CAUSES); plan_row: the plan row
# executed (-1 for risk orders); trigger: a risk order's loss from entry (stock stop) or drawdown.
ORDER_FIELDS = ("day", "symbol", "buy", "requested", "submitted", "filled", "price", "value", "commission",
                "stamp_duty", "transfer_fee", "slippage", "reasons", "cause", "plan_row", "trigger")
ACTION_FIELDS = ("day", "symbol", "dividend", "volume_before", "volume_after", "cash")


@jit()
def cents(amount: float) -> float:
    """Round half up to 0.01 CNY, after rounding away float noise below 1e-6 fen."""
    return math.floor(np.round(amount * 100.0, 6) + 0.5) / 100.0


@jit()
def order_fees(value: float, sell: bool, commission_rate: float, commission_min: float, stamp_rate: float,
               transfer_rate: float, round_costs: bool) -> tuple[float, float, float]:
    """Commission (with its per-order minimum), stamp duty (sells; the rate is 0 for non-stocks), transfer fee."""
    if value <= 0:
        return 0.0, 0.0, 0.0
    commission = max(value * commission_rate, commission_min)
    stamp = value * stamp_rate if sell else 0.0
    transfer = value * transfer_rate
    if round_costs:
        return cents(commission), cents(stamp), cents(transfer)
    return commission, stamp, transfer


@jit()
def lot_buy(volume: float, lot: float, lot_step: float) -> float:
    """Largest buy quantity not above ``volume`` that the lot rules accept."""
    if volume < lot - EPS:
        return 0.0
    return lot + math.floor((volume - lot + EPS) / lot_step) * lot_step


@jit()
def lot_sell(volume: float, held: float, lot: float, lot_step: float) -> float:
    """Largest sell quantity not above ``volume``: whole lots, or the odd-lot remainder with them."""
    if volume >= held - EPS:
        return held
    if lot_step < lot:  # STAR/BSE: at least one minimum lot, then any step
        return float(math.floor(volume + EPS)) if volume >= lot - EPS else 0.0
    whole_lots = math.floor((volume + EPS) / lot) * lot
    odd = held % lot
    with_odd = odd + math.floor((volume - odd + EPS) / lot) * lot if volume >= odd - EPS else 0.0
    return max(whole_lots, with_odd)


@jit()
def slipped(price: float, buy: bool, in_bps: bool, amount: float, tick: float, limit_up: float,
            limit_down: float) -> float:
    """The traded price after adverse slippage, on the tick grid and inside the day's limits."""
    if amount == 0:
        return price
    sign = 1.0 if buy else -1.0
    if in_bps:
        raw = price * (1 + sign * amount / 1e4)
        moved = (math.ceil(raw / tick - EPS) if buy else math.floor(raw / tick + EPS)) * tick
    else:
        moved = price + sign * amount * tick
    if buy and limit_up == limit_up:
        moved = min(moved, limit_up)
    if not buy and limit_down == limit_down:
        moved = max(moved, limit_down)
    return max(moved, tick)


@jit()
def _buy_cost(volume: float, price: float, commission_rate: float, commission_min: float,
              transfer_rate: float, round_costs: bool) -> float:
    value = cents(volume * price) if round_costs else volume * price
    c, s, t = order_fees(value, False, commission_rate, commission_min, 0.0, transfer_rate, round_costs)
    return value + c + s + t


@jit()
def affordable(volume: float, price: float, cash: float, lot: float, lot_step: float, commission_rate: float,
               commission_min: float, transfer_rate: float, lots: bool, round_costs: bool) -> float:
    """The largest valid buy not above ``volume`` whose value and fees fit in ``cash``."""
    if _buy_cost(volume, price, commission_rate, commission_min, transfer_rate, round_costs) <= cash + EPS:
        return volume
    if not lots:  # fractional volumes: solve for the rate-bound or the minimum-bound case
        best = 0.0
        by_rate = cash / (price * (1 + commission_rate + transfer_rate))
        by_minimum = (cash - commission_min) / (price * (1 + transfer_rate))
        for v in (by_rate, by_minimum):
            if 0 < v <= volume and v > best and \
                    _buy_cost(v, price, commission_rate, commission_min, transfer_rate, round_costs) <= cash + EPS:
                best = v
        return best
    # Fees are at least rate × value, so this bounds the answer from above (the fen allows rounding).
    bound = (cash + 0.01) / (price * (1 + commission_rate + transfer_rate))
    fitted = lot_buy(min(bound, volume), lot, lot_step)
    while fitted > 0 and _buy_cost(fitted, price, commission_rate, commission_min, transfer_rate,
                                   round_costs) > cash + EPS:
        fitted = lot_buy(fitted - lot_step, lot, lot_step)
    return fitted


@jit()
def match_order(buy: bool, wanted: float, price: float, bar_volume: float, limit_up: float,
                limit_down: float, tradable: bool, lot: float, lot_step: float, tick: float, t0: bool,
                commission_rate: float, commission_min: float, stamp_rate: float, transfer_rate: float,
                held: float, locked: float, cash: float, participation_cap: float, slip_bps: bool,
                slip_amount: float, lots: bool, t1: bool, limits: bool, suspension: bool,
                round_costs: bool, cash_check: bool):
    """Fill as much of ``wanted`` (> 0 shares) as the rules allow.

    First the order is sized as a broker would accept it (T+1 lock, lots, cash), then the market decides
    (suspension, price limits, participation cap). Returns ``(volume, price, value, commission,
    stamp_duty, transfer_fee, slippage, reasons, submitted)``.
    """
    reasons = 0
    volume = wanted
    if not buy:
        sellable = held - (locked if t1 and not t0 else 0.0)
        if volume > sellable + EPS:
            volume = max(sellable, 0.0)
            reasons |= T1_LOCKED
    if lots:
        lotted = lot_buy(volume, lot, lot_step) if buy else lot_sell(volume, held, lot, lot_step)
        if lotted < volume - EPS and (lotted == 0 or wanted == math.floor(wanted)) and reasons == 0:
            reasons |= LOT_ROUNDING
        volume = lotted
    priced = price == price and price > 0
    fill_price = slipped(price, buy, slip_bps, slip_amount, tick, limit_up, limit_down) if priced else np.nan
    if buy and volume > 0 and priced and cash_check:
        fitted = affordable(volume, fill_price, cash, lot, lot_step, commission_rate, commission_min,
                            transfer_rate, lots, round_costs)
        if fitted < volume:
            reasons |= INSUFFICIENT_CASH
        volume = fitted
    submitted = volume
    if volume <= 0:
        return 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, reasons, submitted
    if not priced or (suspension and not tradable):
        return 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, reasons | SUSPENDED, submitted
    if limits:
        if buy and price >= limit_up - EPS:
            return 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, reasons | LIMIT_UP, submitted
        if not buy and price <= limit_down + EPS:
            return 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, reasons | LIMIT_DOWN, submitted
    if participation_cap < 1 and bar_volume == bar_volume and volume > participation_cap * bar_volume + EPS:
        cap = participation_cap * bar_volume
        volume = cap
        if lots:
            volume = lot_buy(cap, lot, lot_step) if buy else lot_sell(cap, held, lot, lot_step)
        reasons |= PARTICIPATION_CAP
        if volume <= 0:
            return 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, reasons, submitted
    value = cents(volume * fill_price) if round_costs else volume * fill_price  # settled in whole fen
    commission, stamp, transfer = order_fees(value, not buy, commission_rate, commission_min, stamp_rate,
                                             transfer_rate, round_costs)
    return (volume, fill_price, value, commission, stamp, transfer, abs(fill_price - price) * volume, reasons,
            submitted)


@jit()
def desired_shares(target, weighted, shares, cash, prices, out) -> None:
    """Share counts a target row asks for, into ``out``: NaN keeps the holding; weights are fractions of the
    equity valued at ``prices`` (the execution prices). The live stack sizes its orders with this too."""
    equity = cash
    if weighted:
        for j in range(len(shares)):
            if shares[j] != 0 and prices[j] == prices[j]:
                equity += shares[j] * prices[j]
    for j in range(len(shares)):
        w = target[j]
        if w != w:
            out[j] = shares[j]  # no instruction: keep the holding
        elif weighted:
            p = prices[j]
            out[j] = w * equity / p if w > 0 and p > 0 else 0.0
        else:
            out[j] = w


@jit()
def _put(row, values) -> None:
    """Write a tuple of floats into a record row."""
    for k in range(len(values)):
        row[k] = values[k]


@jit()
def _grown(records):
    """``records`` with twice the rows, the written ones copied: a full buffer grows where it fills up
    (amortised linear), so the day loop never has to run a second time."""
    bigger = np.empty((2 * records.shape[0], records.shape[1]))
    bigger[:records.shape[0]] = records
    return bigger


# market_pass's argument types as engine.market_inputs and engine.fill_basis call it.
MARKET_PASS_ARGS = ("f2", "f2", "f2", "b2", "f2", "f2", "bool", "bool", "bool")


@jit(export=MARKET_PASS_ARGS)
def market_pass(fill_prices, out, last_close, suspended, split, dividend, suspension, count_actions, valuation):
    """The day loop's inputs that depend only on the market and the rules, in one pass over its cells.

    Writes into ``out`` (which may be ``fill_prices`` itself) the price each cell trades at, or is valued at when
    sizing weights: ``fill_prices``, or where there is none (or the symbol is suspended, under the suspension
    rule) the previous close -- vnpy_portfoliostrategy fills against a flat stand-in bar built from the last
    close -- and NaN on the first day. Returns ``(out, value_close, actions, any_inf)``:
    - the last close with 0 where there is none (``valuation``, else an empty array);
    - per day, how many symbols have a split or a dividend (``count_actions``, else an empty array);
    - whether any last close is infinite.
    """
    n, m = fill_prices.shape
    value_close = np.empty((n, m) if valuation else (0, 0))
    actions = np.zeros(n if count_actions else 0, dtype=np.int64)
    any_inf = False
    for i in range(n):
        acted = 0
        for j in range(m):
            price = fill_prices[i, j]
            if not np.isfinite(price) or (suspension and suspended[i, j]):
                price = last_close[i - 1, j] if i > 0 else np.nan
            out[i, j] = price
            if valuation:
                close = last_close[i, j]
                if np.isinf(close):
                    any_inf = True
                value_close[i, j] = 0.0 if close != close else close
            if count_actions and (split[i, j] != 1.0 or dividend[i, j] != 0.0):
                acted += 1
        if count_actions:
            actions[i] = acted
    return out, value_close, actions, any_inf


# run_days' argument types as run_days is called by engine.simulate (compiled ahead of time with them).
RUN_DAYS_ARGS = ("f2", "f2", "f2", "f2", "b2", "b2", "f2", "f2", "b1", "f1", "f1", "f1", "b1", "f1", "f1", "f1", "f1",
                 "i1", "f2", "i1", "bool", "float", "float", "bool", "float", *["bool"] * 10, "f2", "float4", "f2",
                 "int", "int")


@jit(export=RUN_DAYS_ARGS)
def run_days(exec_prices, bar_volume, limit_up, limit_down, tradable, t0, split, dividend, action_day,
             lot, lot_step, tick, is_stock, commission_rate, commission_min, stamp_rate, transfer_rate,
             plan_days, plan_targets, plan_rows, weighted, capital, participation_cap, slip_bps, slip_amount,
             resubmit, lots, t1, limits, suspension, corporate_actions, stamp_duty, transfer_fee, round_costs,
             cash_check, last_close, risk, ladders, order_capacity, action_capacity):
    """Every trading day in order: ex-date adjustments, the risk sells decided at the previous close,
    the plan's orders (sells, then buys), then the risk rules at the close.

    ``plan_rows`` numbers the plan rows as the caller knows them (recorded with their orders); ``risk``
    is ``(stock_stop, portfolio_stop, drawdown_halve, halve_to)``, NaN = rule off (see
    :class:`~vnpy_rotation.risk.stops.RiskRules`); ``ladders`` the drawdown ladders' parameters (k ×
    ``LADDER_PARAMS``, see :mod:`~vnpy_rotation.risk.ladder`): while one is REDUCING plan buys are refused
    (``RISK_DENIED``) and rows that start are scaled; while one is HALTED plan rows are dropped and, when it
    flattens, every holding is sold first thing each day until none is left. Returns holdings and cash at
    each close, per-symbol cash flows, the order and action records (buffers of at least ``order_capacity``
    / ``action_capacity`` rows, doubled whenever one fills) and how many of each were written, and each
    ladder's rung at each close.
    """
    n, m = exec_prices.shape
    holdings = np.empty((n, m))  # every row is written at its close (no zeroing pass)
    cash_at_close = np.empty(n)
    flows = np.zeros((n, m))
    orders = np.empty((max(order_capacity, 1), len(ORDER_FIELDS)))  # initial sizes: grown when full
    actions = np.empty((max(action_capacity, 1), len(ACTION_FIELDS)))
    n_orders = 0
    n_actions = 0
    shares = np.zeros(m)
    bought = np.zeros(m)
    entry = np.full(m, np.nan)
    desired = np.zeros(m)
    target = np.zeros(m)
    has_target = False
    cash = capital
    next_plan = 0
    row, row_day = -1, -1  # the plan row being executed and the day it started
    k_ladders = ladders.shape[0]
    rungs = np.zeros((n, k_ladders))
    ladder_state = np.zeros((k_ladders, LADDER_STATE))
    ladder_state[:, S_LAST] = np.nan
    rung = 0  # the most restrictive ladder's rung at the last close
    rules_on = stops_on(risk)
    any_risk = rules_on or k_ladders > 0
    track_entry = risk[0] == risk[0]  # the stock stop's entry prices
    state = np.zeros(RISK_STATE)
    keep = np.full(m, np.nan)
    sell_cause = np.zeros(m, dtype=np.int64)
    sell_trigger = np.zeros(m)
    blocked_until = np.full(m, -1, dtype=np.int64)  # the plan leaves j alone while its row started by then
    pending = False  # any risk sell set at the last close (sell_cause[j] != PLAN for some j)
    for i in range(n):
        if corporate_actions and action_day[i]:
            for j in range(m):
                before = shares[j]
                if before == 0:
                    continue
                entry[j] = (entry[j] - dividend[i, j]) / split[i, j]  # follows the price
                keep[j] *= split[i, j]
                if split[i, j] != 1.0:
                    shares[j] = math.floor(before * split[i, j] + 1e-9)
                    if n_actions == actions.shape[0]:
                        actions = _grown(actions)
                    _put(actions[n_actions], (float(i), float(j), 0.0, before, shares[j], 0.0))
                    n_actions += 1
                if dividend[i, j] != 0.0:
                    amount = before * np.round(dividend[i, j], 4)
                    if round_costs:
                        amount = cents(amount)
                    cash += amount
                    flows[i, j] += amount
                    if n_actions == actions.shape[0]:
                        actions = _grown(actions)
                    _put(actions[n_actions], (float(i), float(j), 1.0, before, shares[j], amount))
                    n_actions += 1
        if next_plan < len(plan_days) and plan_days[next_plan] == i:
            # A row decided on a portfolio stop's close is dropped; the next one re-enters. A HALTED ladder
            # drops every row.
            if not (state[FLAT] != 0 and i <= state[FLAT_SINCE] + 1) and rung != HALTED:
                target[:] = plan_targets[next_plan]
                has_target = True
                row, row_day = plan_rows[next_plan], i
                if any_risk:
                    start_row(target, risk, state, keep, sell_cause)
                if rung == REDUCING:
                    target *= exposure(ladders, ladder_state)
            next_plan += 1
        if has_target and corporate_actions and action_day[i] and not weighted:
            for j in range(m):  # share counts decided before the ex-date follow the split
                target[j] *= split[i, j]
        stamp = stamp_rate[i] if stamp_duty else 0.0
        transfer = transfer_rate[i] if transfer_fee else 0.0
        if has_target or any_risk:
            bought[:] = 0.0
        # a HALTED ladder that freezes the book sends nothing at all, not even the stops' sales
        frozen = rung == HALTED and not halt_flattens(ladders, ladder_state)
        if pending and not frozen:
            for j in range(m):  # the risk sells decided at the previous close go first
                cause = sell_cause[j]
                wanted = shares[j] - keep[j] if cause == DRAWDOWN_HALVE else shares[j]
                if cause == PLAN or wanted <= 1e-9:
                    continue
                volume, price, value, commission, stamp_paid, transfer_paid, slip, reasons, submitted = \
                    match_order(False, wanted, exec_prices[i, j], bar_volume[i, j], limit_up[i, j],
                                limit_down[i, j], tradable[i, j], lot[j], lot_step[j], tick[j], t0[i, j],
                                commission_rate[j], commission_min[j], stamp if is_stock[j] else 0.0,
                                transfer if is_stock[j] else 0.0, shares[j], bought[j], cash,
                                participation_cap, slip_bps, slip_amount, lots, t1, limits, suspension,
                                round_costs, cash_check)
                if n_orders == orders.shape[0]:
                    orders = _grown(orders)
                _put(orders[n_orders], (float(i), float(j), 0.0, wanted, submitted, volume, price, value,
                                        commission, stamp_paid, transfer_paid, slip, float(reasons)))
                orders[n_orders, 13] = cause
                orders[n_orders, 14] = -1.0
                orders[n_orders, 15] = sell_trigger[j]
                n_orders += 1
                if cause == DRAWDOWN_HALVE and not reasons & RETRYABLE:
                    keep[j] = np.nan  # done, or cut by the lots: not sent again
                flow = value - commission - stamp_paid - transfer_paid
                cash += flow
                flows[i, j] += flow
                shares[j] -= volume
                if shares[j] <= 0:
                    entry[j] = np.nan
        if has_target:
            desired_shares(target, weighted, shares, cash, exec_prices[i], desired)
            retry = False
            for side in range(2):
                buy = side == 1
                for j in range(m):
                    wanted = desired[j] - shares[j] if buy else shares[j] - desired[j]
                    if wanted <= 1e-9 or row_day <= blocked_until[j]:  # (a stock stop holds j)
                        continue
                    if buy and rung >= REDUCING:  # reduce-only: the buy is refused, not sent again
                        if n_orders == orders.shape[0]:
                            orders = _grown(orders)
                        _put(orders[n_orders], (float(i), float(j), 1.0, wanted, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                                0.0, float(RISK_DENIED)))
                        orders[n_orders, 13] = PLAN
                        orders[n_orders, 14] = row
                        orders[n_orders, 15] = np.nan
                        n_orders += 1
                        continue
                    if lots and weighted and wanted < lot[j]:
                        # Weight targets are not exact share counts: skip differences below one lot
                        # unless opening from nothing (reported) or closing out (always sent).
                        if not ((buy and shares[j] == 0) or (not buy and desired[j] == 0)):
                            continue
                    volume, price, value, commission, stamp_paid, transfer_paid, slip, reasons, submitted = \
                        match_order(buy, wanted, exec_prices[i, j], bar_volume[i, j], limit_up[i, j],
                                    limit_down[i, j], tradable[i, j], lot[j], lot_step[j], tick[j], t0[i, j],
                                    commission_rate[j], commission_min[j], stamp if is_stock[j] else 0.0,
                                    transfer if is_stock[j] else 0.0, shares[j], bought[j], cash,
                                    participation_cap, slip_bps, slip_amount, lots, t1, limits, suspension,
                                    round_costs, cash_check)
                    if n_orders == orders.shape[0]:
                        orders = _grown(orders)
                    _put(orders[n_orders], (float(i), float(j), float(side), wanted, submitted, volume, price, value,
                                            commission, stamp_paid, transfer_paid, slip, float(reasons)))
                    orders[n_orders, 13] = PLAN  # cause, plan_row, trigger (a longer tuple above runs slower)
                    orders[n_orders, 14] = row
                    orders[n_orders, 15] = np.nan
                    n_orders += 1
                    if reasons & RETRYABLE:
                        retry = True
                    if volume == 0:
                        continue
                    flow = (-value if buy else value) - commission - stamp_paid - transfer_paid
                    cash += flow
                    flows[i, j] += flow
                    if track_entry:  # the volume-weighted average fill price of the position
                        held = shares[j]
                        if buy:
                            entry[j] = price if held <= 0 else (entry[j] * held + price * volume) / (held + volume)
                        elif held - volume <= 0:
                            entry[j] = np.nan
                    if buy:
                        shares[j] += volume
                        bought[j] += volume
                    else:
                        shares[j] -= volume
            if not (retry and resubmit and i + 1 < n):
                has_target = False
        holdings[i] = shares
        cash_at_close[i] = cash
        if rules_on and check_close(i, cash, shares, last_close[i], entry, risk, state, keep, sell_cause,
                                    sell_trigger, blocked_until):
            has_target = False
        if k_ladders:
            rung = ladder_close(i, cash, shares, last_close[i], ladders, ladder_state, sell_cause, sell_trigger,
                                rules_on)
            if rung == HALTED:
                has_target = False
            rungs[i] = ladder_state[:, S_RUNG]
        if any_risk:  # only the close sets a risk sell (a plan row's start may clear some): skip an idle loop
            pending = False
            for j in range(m):
                if sell_cause[j] != PLAN:
                    pending = True
                    break
    return holdings, cash_at_close, flows, orders, n_orders, actions, n_actions, rungs

