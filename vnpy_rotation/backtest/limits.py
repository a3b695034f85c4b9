"""The plan-level limits (:mod:`vnpy_rotation.risk.limits`) applied to a :class:`TargetPlan`.

One function, :func:`apply_limits`, called by :func:`~vnpy_rotation.backtest.engine.simulate` (so every
backtest, sweep, walk-forward window, look-ahead check and the replay check's backtest) and by the live
decision on the rows since the instance started: a replay and a backtest with the same configuration
limit the same rows alike.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.market_data import MarketData
from ..risk.limits import limit_weights, reasons
from .config import BacktestConfig
from .notes import notes_frame

if TYPE_CHECKING:  # engine.simulate calls apply_limits
    from .engine import TargetPlan


def skipped(plan: TargetPlan, config: BacktestConfig) -> str | None:
    """Why the configured limits do not apply to ``plan`` (None when they do, or when none is configured).

    The limits are fractions of equity. A share-count row becomes weights only with the prices and the
    equity of the day it executes, which the kernel knows and the plan does not; converting at the decision
    close would limit something other than what is bought, so such plans pass unchanged."""
    if plan.kind == "shares" and config.risk.limits.active:
        return ("risk.limits are set but the plan is in share counts: the limits (fractions of equity) "
                "are not applied to it")
    return None


def fee_rates(plan: TargetPlan, config: BacktestConfig, market: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """The fee per unit of value bought and sold in each cell of ``plan.frame``: the commission rate (its
    minimum is not counted), plus on stocks the transfer fee and, on sells, the stamp duty of the decision
    day, as far as ``config.rules`` charges them."""
    columns = list(plan.frame.columns)
    position = {s: k for k, s in enumerate(market.symbols)}
    stock = np.array([bool(market.is_stock[position[s]]) if s in position else False for s in columns])
    commission = np.where(stock, config.stock_commission.rate, config.etf_commission.rate)
    day = np.clip(market.days.get_indexer(pd.DatetimeIndex(plan.frame.index)), 0, len(market.days) - 1)
    transfer = market.transfer_rate[day] if config.rules.transfer_fee else np.zeros(len(day))
    stamp = market.stamp_rate[day] if config.rules.stamp_duty else np.zeros(len(day))
    buy = commission + np.outer(transfer, stock)
    return buy, buy + np.outer(stamp, stock)


def apply_limits(plan: TargetPlan, config: BacktestConfig, market: MarketData) -> TargetPlan:
    """``plan`` with ``config.risk.limits`` applied to its weight rows, in decision order, the first row
    moving from cash; each limited cell's note (or the plan's reason) gains the binding rules, e.g.
    ``VQM rank 3; max_position_weight 10.0%``, which becomes the reason of the orders it causes.

    With no limit configured, or nothing binding, ``plan`` itself is returned. So is a share-count plan
    (see :func:`skipped`, whose text the backtest run lists in its data warnings and the live decision logs;
    a sweep's hundreds of runs would only repeat it)."""
    limits = config.risk.limits
    if not limits.active or plan.frame.empty:
        return plan
    if skipped(plan, config) is not None:
        return plan
    frame = plan.frame
    order = np.argsort(pd.DatetimeIndex(frame.index).values, kind="stable")  # the held targets follow time
    symbols = [str(s) for s in frame.columns]
    buy, sell = fee_rates(plan, config, market)
    limited = limit_weights(frame.to_numpy(dtype=float)[order], limits, symbols, buy[order], sell[order])
    if not limited.bound.any():
        return plan
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    texts = reasons(limited, limits, symbols)[back]
    given = (plan.notes.reindex(columns=frame.columns) if plan.notes is not None
             else pd.DataFrame(None, index=frame.index, columns=frame.columns, dtype=object)).to_numpy(dtype=object)
    base = np.where(pd.isna(given) | (given == ""), plan.reason, given)
    cells = np.nonzero(texts != None)  # noqa: E711 (element-wise)
    notes = given.copy()
    notes[cells] = [f"{b}; {t}" for b, t in zip(base[cells], texts[cells])]
    return dataclasses.replace(plan, frame=pd.DataFrame(limited.weights[back], index=frame.index, columns=frame.columns),
                               notes=notes_frame(notes, frame.index, frame.columns))
