"""Typed, frozen backtest settings, validated once at the edge (YAML/JSON/CLI → :class:`BacktestConfig`)."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field

from ..config import Frozen
from ..risk.config import RiskConfig


class FillPrice(str, Enum):
    OPEN = "open"
    VWAP = "vwap"  # turnover / volume of the fill day


class Commission(Frozen):
    """Broker commission: ``max(value × rate, minimum)`` per order."""

    rate: float = Field(ge=0, lt=0.01)
    minimum: float = Field(ge=0)


class Slippage(Frozen):
    """Adverse price move per fill: whole ticks, or basis points rounded to the tick."""

    unit: Literal["ticks", "bps"] = "ticks"
    amount: float = Field(default=0.0, ge=0)


class Rules(Frozen):
    """Which A-share rules the simulation enforces (all on by default).

    Turning them off gives vnpy_portfoliostrategy's behaviour, used to cross-check against it.
    """

    lots: bool = True
    t1: bool = True
    price_limits: bool = True
    suspension: bool = True
    corporate_actions: bool = True
    stamp_duty: bool = True
    transfer_fee: bool = True
    round_costs: bool = True  # fees are charged in whole fen (0.01 CNY), rounded half up
    cash_check: bool = True  # buys shrink to the cash available (vnpy's backtester lets cash go negative)


# Capital in CNY. Up to 1e10, cash in fen (1e12) and the largest possible share count (capital over the
# smallest price, one tick of 0.001: 1e13) are integers far below 2**53, so float64 holds them exactly,
# and the spacing of float64 values near the capital (2e-6 CNY) is 500 times finer than the 1e-3 CNY the
# accounting identities allow. At 1e15 that spacing is 0.125 CNY and the identities fail; at 1e300 share
# counts overflow int64. Below 1 CNY no order can be sized. See docs/data/cli_errors.md.
MIN_CAPITAL = 1.0
MAX_CAPITAL = 1e10


class BacktestConfig(Frozen):
    """Everything that changes the simulation except the data and the strategy."""

    capital: float = Field(default=1_000_000.0, ge=MIN_CAPITAL, le=MAX_CAPITAL, allow_inf_nan=False)
    fill_price: FillPrice = FillPrice.OPEN
    # Common retail terms: 0.025 % with a 5 CNY minimum on stocks; ETFs often without the minimum.
    stock_commission: Commission = Commission(rate=0.00025, minimum=5.0)
    etf_commission: Commission = Commission(rate=0.00025, minimum=0.0)
    slippage: Slippage = Slippage()
    participation_cap: float = Field(default=0.1, gt=0, le=1)  # max fraction of the day's volume
    resubmit: bool = True  # retry the unfilled part of a target on the following days
    rules: Rules = Rules()
    risk: RiskConfig = RiskConfig()  # the account ladder and the daily loss limit (off by default)

    @classmethod
    def vnpy_compatible(cls, capital: float, rate: float) -> "BacktestConfig":
        """vnpy_portfoliostrategy's model: one symmetric rate, no lots, limits, T+1, minimums or taxes."""
        flat = Commission(rate=rate, minimum=0.0)
        return cls(capital=capital, stock_commission=flat, etf_commission=flat, participation_cap=1.0,
                   resubmit=False,
                   rules=Rules(lots=False, t1=False, price_limits=False, suspension=False,
                               corporate_actions=False, stamp_duty=False, transfer_fee=False,
                               round_costs=False, cash_check=False))
