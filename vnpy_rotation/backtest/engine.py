"""The portfolio simulation: targets decided at the close of day t, filled from day t+1 on.

Only days on which something happens are visited (an order day, a retry, an ex-date of a holding);
holdings and cash are piecewise constant in between, so the daily equity curve is rebuilt from the
change points with array operations. That is where the speed comes from; the matching of every order
goes through :func:`~vnpy_rotation.backtest.matching.match`, the same function the replay gateway uses.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputRejected, Problem
from .config import BacktestConfig, FillPrice
from .market_data import MarketData, round_to_tick
from .matching import Bar, SymbolTerms, cents, match
from .result import BacktestResult

RETRYABLE = frozenset({"limit_up", "limit_down", "suspended", "t1_locked", "participation_cap"})
TRADE_COLUMNS = ["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission",
                 "stamp_duty", "transfer_fee", "slippage", "reason"]
ORDER_COLUMNS = ["date", "vt_symbol", "direction", "requested", "submitted", "filled", "price",
                 "status", "reason"]


@dataclass(frozen=True)
class TargetPlan:
    """Targets decided at the close of each index day: weights (fractions of equity) or share counts.

    A row is a complete portfolio: symbols missing from it are targeted at zero; NaN means "no
    instruction" and keeps the current holding (vnpy strategies send no order for a symbol without a bar).
    """

    frame: pd.DataFrame
    kind: Literal["weight", "shares"] = "weight"
    reason: str = "rebalance"


@dataclass
class RawRun:
    """The simulation's own record, turned into frames only when asked (sweeps skip that)."""

    market: MarketData
    config: BacktestConfig
    change_days: list[int] = field(default_factory=list)
    change_shares: list[np.ndarray] = field(default_factory=list)
    change_cash: list[float] = field(default_factory=list)
    flows: dict[tuple[int, int], float] = field(default_factory=dict)  # (day, symbol) → cash in
    trades: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    actions: list[tuple] = field(default_factory=list)
    costs: np.ndarray = field(default_factory=lambda: np.zeros(4))
    traded_value: float = 0.0

    def holdings(self) -> np.ndarray:
        """Shares held at each day's close (days × symbols)."""
        n, m = self.market.shape
        if not self.change_days:
            return np.zeros((n, m))
        index = np.searchsorted(np.array(self.change_days), np.arange(n), side="right") - 1
        snapshots = np.vstack([np.zeros((1, m)), np.array(self.change_shares)])
        return snapshots[index + 1]

    def cash(self) -> np.ndarray:
        n = self.market.shape[0]
        if not self.change_days:
            return np.full(n, self.config.capital)
        index = np.searchsorted(np.array(self.change_days), np.arange(n), side="right") - 1
        return np.concatenate([[self.config.capital], self.change_cash])[index + 1]

    def market_value(self, holdings: np.ndarray | None = None) -> np.ndarray:
        held = self.holdings() if holdings is None else holdings
        return held * np.nan_to_num(self.market.last_close)

    def equity(self) -> np.ndarray:
        return self.cash() + self.market_value().sum(axis=1)

    def to_result(self) -> BacktestResult:
        md = self.market
        holdings = self.holdings()
        values = self.market_value(holdings)
        cash = self.cash()
        equity = cash + values.sum(axis=1)
        day_index = md.days.rename("date")
        equity_frame = pd.DataFrame({"equity": equity, "cash": cash, "market_value": values.sum(axis=1)},
                                    index=day_index)
        flows = np.zeros(md.shape)
        for (i, j), amount in self.flows.items():
            flows[i, j] += amount
        pnl = np.diff(np.vstack([np.zeros((1, md.shape[1])), values]), axis=0) + flows
        held_i, held_j = np.nonzero(holdings)
        positions = pd.DataFrame({
            "date": md.days[held_i], "vt_symbol": np.array(md.symbols, dtype=object)[held_j],
            "volume": holdings[held_i, held_j], "close": md.last_close[held_i, held_j],
            "market_value": values[held_i, held_j], "weight": values[held_i, held_j] / equity[held_i],
        })
        trades = pd.DataFrame(self.trades, columns=TRADE_COLUMNS)
        trades["datetime"] = pd.to_datetime(trades["datetime"])
        orders = pd.DataFrame(self.orders, columns=ORDER_COLUMNS)
        orders["date"] = pd.to_datetime(orders["date"])
        actions = pd.DataFrame(self.actions, columns=["date", "vt_symbol", "kind", "volume_before",
                                                      "volume_after", "cash"])
        return BacktestResult(equity=equity_frame, trades=trades, orders=orders, positions=positions,
                              holdings_value=md.frame(values).rename_axis("date"),
                              symbol_pnl=md.frame(pnl).rename_axis("date"), cash_flows=actions,
                              initial_capital=self.config.capital,
                              settings=self.config.model_dump(mode="json"))


def _plan_rows(md: MarketData, plan: TargetPlan) -> dict[int, np.ndarray]:
    """Execution day index → full target vector (decision day + 1)."""
    unknown = [s for s in plan.frame.columns if s not in md.symbols]
    if unknown:
        raise InputRejected(Problem("targets", None, f"symbols without market data: {', '.join(unknown)}"))
    frame = plan.frame.reindex(columns=list(md.symbols))
    positions = md.days.get_indexer(pd.DatetimeIndex(frame.index))
    if (positions < 0).any():
        bad = frame.index[positions < 0][0]
        raise InputRejected(Problem("targets", None, f"decision day {bad} is not a trading day of the data"))
    values = frame.to_numpy(dtype=float, copy=True)
    values[:, ~np.isin(np.array(md.symbols), plan.frame.columns)] = 0.0
    rows: dict[int, np.ndarray] = {}
    for position, row, defined in zip(positions, values, frame.notna().any(axis=1).to_numpy()):
        if defined and position + 1 < len(md.days):
            rows[int(position) + 1] = row
    return rows


def simulate(md: MarketData, plan: TargetPlan, config: BacktestConfig) -> RawRun:
    """Run ``plan`` over ``md`` under ``config``'s rules."""
    run = RawRun(md, config)
    n, m = md.shape
    rules = config.rules
    schedule = _plan_rows(md, plan)
    fill_prices = md.open if config.fill_price is FillPrice.OPEN else _vwap(md)
    if rules.corporate_actions:
        action_days = set(np.nonzero(((md.split != 1.0) | (md.dividend != 0.0)).any(axis=1))[0].tolist())
    else:
        action_days = set()
    pending = sorted(set(schedule) | action_days)
    heapq.heapify(pending)
    queued = set(pending)
    shares = np.zeros(m)
    cash = config.capital
    target: np.ndarray | None = None
    symbols = md.symbols
    stock_fee, etf_fee = config.stock_commission, config.etf_commission

    exec_prices = _execution_prices(md, fill_prices, rules.suspension)
    tradable = ~md.suspended
    # Per-symbol constants as Python scalars: numpy scalar access dominates a per-order loop.
    lots, steps, ticks = md.lot.tolist(), md.lot_step.tolist(), md.tick.tolist()
    is_stock = md.is_stock.tolist()
    fee_terms = [(stock_fee if stock else etf_fee) for stock in is_stock]
    weighted = plan.kind == "weight"
    day_stamps = md.days.to_pydatetime()

    while pending:
        i = heapq.heappop(pending)
        day = day_stamps[i]
        changed = False
        if i in action_days:
            received, changed = _apply_actions(run, i, shares, day)
            cash += received
        if i in schedule:
            target = schedule[i]
        if i in action_days and target is not None and not weighted:
            target = target * md.split[i]  # share counts decided before the ex-date follow the split
        if target is not None:
            prices = exec_prices[i]
            if weighted:
                held_value = shares * prices
                equity = cash + float(held_value[(shares != 0) & np.isfinite(held_value)].sum())
                with np.errstate(divide="ignore", invalid="ignore"):
                    sized = np.where((target > 0) & (prices > 0), target * equity / prices, 0.0)
            else:
                sized = target
            desired = np.where(np.isnan(target), shares, sized)
            delta = desired - shares
            held, want, price_row = shares.tolist(), desired.tolist(), prices.tolist()
            retry = False
            bought_today = [0.0] * m
            volume_row = md.volume[i].tolist()
            up_row, down_row = md.limit_up[i].tolist(), md.limit_down[i].tolist()
            tradable_row = tradable[i].tolist()
            t0_row = md.t0[i].tolist()
            stamp = float(md.stamp_rate[i]) if rules.stamp_duty else 0.0
            transfer = float(md.transfer_rate[i]) if rules.transfer_fee else 0.0
            for buy, sides in ((False, np.nonzero(delta < -1e-9)[0]), (True, np.nonzero(delta > 1e-9)[0])):
                for j in sides.tolist():
                    wanted = want[j] - held[j] if buy else held[j] - want[j]
                    if rules.lots and weighted and wanted < lots[j]:
                        # Weight targets are not exact share counts: skip differences below one lot
                        # unless opening from nothing (reported) or closing out (always sent).
                        if not ((buy and held[j] == 0) or (not buy and want[j] == 0)):
                            continue
                    fee = fee_terms[j]
                    terms = SymbolTerms(lots[j], steps[j], ticks[j], is_stock[j], t0_row[j], fee.rate,
                                        fee.minimum, stamp if is_stock[j] else 0.0,
                                        transfer if is_stock[j] else 0.0)
                    bar = Bar(price_row[j], volume_row[j], up_row[j], down_row[j], tradable_row[j])
                    fill = match(buy, wanted, bar, terms, config, held=held[j], locked=bought_today[j], cash=cash)
                    direction = "buy" if buy else "sell"
                    status = "refused" if fill.volume == 0 else ("partial" if fill.reasons else "filled")
                    run.orders.append((day, symbols[j], direction, round(wanted, 4), fill.submitted, fill.volume,
                                       fill.price, status, ";".join(fill.reasons)))
                    if fill.reasons and not retry:
                        retry = not RETRYABLE.isdisjoint(fill.reasons)
                    if fill.volume == 0:
                        continue
                    flow = (-fill.value if buy else fill.value) - fill.commission - fill.stamp_duty - fill.transfer_fee
                    cash += flow
                    held[j] += fill.volume if buy else -fill.volume
                    if buy:
                        bought_today[j] += fill.volume
                    key = (i, j)
                    run.flows[key] = run.flows.get(key, 0.0) + flow
                    run.costs += (fill.commission, fill.stamp_duty, fill.transfer_fee, fill.slippage)
                    run.traded_value += fill.value
                    run.trades.append((day, symbols[j], direction, fill.price, fill.volume, fill.value,
                                       fill.commission, fill.stamp_duty, fill.transfer_fee, fill.slippage,
                                       plan.reason))
                    changed = True
            shares = np.array(held)
            if retry and config.resubmit and i + 1 < n:
                if i + 1 not in queued:
                    heapq.heappush(pending, i + 1)
                    queued.add(i + 1)
            else:
                target = None
        if changed:
            run.change_days.append(i)
            run.change_shares.append(shares.copy())
            run.change_cash.append(cash)
    return run


def _apply_actions(run: RawRun, i: int, shares: np.ndarray, day) -> tuple[float, bool]:
    """Ex-date adjustments of holdings in place: unit splits change share counts, distributions pay cash.

    Split results are rounded down to whole units (the registrar's practice for ETF 份额折算); cash per
    unit is rounded to 0.0001 CNY and the credited amount to the fen when costs are rounded.
    """
    md, received, acted = run.market, 0.0, False
    for j in np.nonzero(shares)[0]:
        before = float(shares[j])
        if md.split[i, j] != 1.0:
            shares[j] = np.floor(before * md.split[i, j] + 1e-9)
            run.actions.append((day, md.symbols[j], "split", before, float(shares[j]), 0.0))
            acted = True
        if md.dividend[i, j] != 0.0:
            amount = before * round(float(md.dividend[i, j]), 4)
            amount = cents(amount) if run.config.rules.round_costs else amount
            received += amount
            run.flows[(i, j)] = run.flows.get((i, j), 0.0) + amount
            run.actions.append((day, md.symbols[j], "dividend", before, float(shares[j]), amount))
            acted = True
    return received, acted


def _vwap(md: MarketData) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(md.volume > 0, md.turnover / md.volume, np.nan)
    # Turnover / volume is not a tradable quote: put it on the tick grid and inside the bar.
    # Without turnover the day's average price is unknown: the open stands in.
    vwap = np.where(np.isfinite(vwap), round_to_tick(vwap, md.tick), md.open)
    return np.clip(vwap, md.low, md.high)


def _execution_prices(md: MarketData, fill_prices: np.ndarray, suspension: bool) -> np.ndarray:
    """The price each symbol trades (or, when it cannot, is valued) at on each day.

    Without a bar the previous close stands in: for valuing the portfolio when sizing weights, and, with
    the suspension rule off, as the fill price -- vnpy_portfoliostrategy fills against a flat stand-in bar
    built from the last close.
    """
    previous = np.vstack([np.full((1, md.shape[1]), np.nan), md.last_close[:-1]])
    usable = np.isfinite(fill_prices) & (~md.suspended if suspension else True)
    return np.where(usable, fill_prices, previous)
