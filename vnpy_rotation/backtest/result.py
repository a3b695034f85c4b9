"""What one backtest produces: daily equity, fills, orders (with refusals), positions and cash flows.

Column contracts (the output files ``run.py backtest`` promises in the README; other columns may be added, none removed):

- ``equity``: index ``date`` (one row per trading day); ``equity, cash, market_value``.
- ``trades``: one row per fill; ``datetime, vt_symbol, direction (buy|sell), price, volume, value,
  commission, stamp_duty, transfer_fee, slippage, reason``. ``price`` is the traded price after slippage;
  ``slippage`` is the CNY cost of it versus the undisturbed fill price; ``reason`` says why the order
  existed: the plan's note for that decision day and symbol (``TargetPlan.notes``, e.g. ``VQM rank 3``),
  else the plan's reason (``rebalance``); for a risk rule's sell, the rule and its trigger
  (``stock_stop -9.5%``, ``portfolio_stop -10.3%``, ``drawdown_halve -15.2%``, ``ladder -15.4%``; see
  ``risk.stops`` and ``risk.ladder``).
- ``orders``: one row per order the engine considered, filled or not; ``date, vt_symbol, direction,
  requested, submitted, filled, price, status (filled|partial|refused), reason, cause``. ``reason`` lists
  what refused or reduced it: ``limit_up, limit_down, suspended, t1_locked, insufficient_cash,
  lot_rounding, participation_cap, risk_denied`` (a buy refused while a drawdown ladder is REDUCING or
  HALTED) joined by ``;`` (empty when filled in full); ``cause`` says why the
  order existed, as the trades' ``reason``.
- ``positions``: one row per trading day and held symbol; ``date, vt_symbol, volume, close, market_value,
  weight``.
- ``holdings_value``: days × symbols market value (CNY), for exposure and allocation charts.
- ``symbol_pnl``: days × symbols daily profit (CNY) after costs and including dividends: sums to the
  daily change in equity.
- ``cash_flows``: one row per corporate action applied to a holding; ``date, vt_symbol, kind
  (dividend|split), volume_before, volume_after, cash``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# In the order the matcher checks them; the compiled matcher carries them as bits in this order.
REFUSAL_REASONS = ("t1_locked", "lot_rounding", "insufficient_cash", "suspended", "limit_up", "limit_down",
                   "participation_cap", "risk_denied")
COST_KINDS = ("commission", "stamp_duty", "transfer_fee", "slippage")


@dataclass
class BacktestResult:
    equity: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    positions: pd.DataFrame
    holdings_value: pd.DataFrame
    symbol_pnl: pd.DataFrame
    cash_flows: pd.DataFrame
    initial_capital: float
    settings: dict[str, Any] = field(default_factory=dict)
    # The drawdown ladders' rung at each close (index = date; ``rung``: the most restrictive; one column per
    # configured ladder: ``strategy``, ``daily_loss``, ``account``); None when no ladder is configured.
    risk_days: pd.DataFrame | None = None
    # The drift response's stage changes and raised flags (``date, kind, stage, flag, exposure, requests,
    # monitors, reason``); None when the response is off.
    drift_events: pd.DataFrame | None = None

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"].iloc[-1]) if len(self.equity) else self.initial_capital

    def refusals(self) -> pd.DataFrame:
        """Orders refused or reduced, with their reasons."""
        return self.orders[self.orders["reason"] != ""]
