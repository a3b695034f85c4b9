"""The account-level risk settings every path enforces (backtest, replay, live), validated once.

Part of :class:`~vnpy_rotation.backtest.config.BacktestConfig` (its ``risk`` section), so a live instance
and the backtest of the same configuration enforce the same rules. The strategy's own rules (stock stop,
portfolio stop, drawdown halving, its ladder) travel with its plan: :class:`~vnpy_rotation.risk.stops.RiskRules`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from ..config import Frozen
from .drift import DriftConfig, MonitorName
from .ladder import LadderConfig
from .limits import LimitsConfig
from .response import ResponsePolicy

# The account ladder's documented defaults (README "Risk engine"): REDUCING at -10 %, HALTED at -15 % from
# the peak, back to ACTIVE within -5 % or after 20 sessions; HALTED flattens and lasts 20 sessions.
DEFAULT_ACCOUNT_LADDER = LadderConfig(reduce_at=0.10, halt_at=0.15, recover_at=0.05, reduce_exposure=1.0,
                                      cooldown=20, halt_cooldown=20, flatten=True)


# The monitors a plan-level response can compute from the strategy's own bars: its basket's daily returns
# and traded turnover. The factor panel and the order book are not in the market data a plan is made from.
BASKET_MONITORS: tuple[MonitorName, ...] = ("volatility", "volume", "return_ks", "return_mean")
_UNAVAILABLE = {"factor_psi": "the factor panel", "factor_ks": "the factor panel", "order_book": "tick bid/ask volumes"}


class DriftResponseConfig(Frozen):
    """The drift monitors on the strategy's basket and the three-stage response to them (off by default).

    ``monitor``: windows, null calibration and which monitors run/alert (:class:`DriftConfig`, basket
    monitors only); ``response``: the ladder and fail-safe tables and the degrade mode (cash or the
    defensive symbol); ``exposure``: when given, the exposure of every rung that cuts (degrade and retrain);
    ``recalibrate_every``: sessions between two calibrations of the thresholds."""

    enabled: bool = False
    monitor: DriftConfig = DriftConfig(monitors=BASKET_MONITORS)
    response: ResponsePolicy = ResponsePolicy()
    exposure: float | None = Field(default=None, ge=0.0, lt=1.0)
    recalibrate_every: int = Field(default=20, ge=1)

    @field_validator("monitor", mode="before")
    @classmethod
    def _basket_by_default(cls, value: Any) -> Any:
        # A monitor section that does not list its monitors means the basket's, not every monitor.
        if isinstance(value, dict) and "monitors" not in value:
            return {**value, "monitors": BASKET_MONITORS}
        return value

    @model_validator(mode="after")
    def _basket_only(self) -> DriftResponseConfig:
        missing = [f"{m} needs {_UNAVAILABLE[m]}" for m in self.monitor.monitors if m in _UNAVAILABLE]
        if missing:
            raise ValueError(f"monitor.monitors: {'; '.join(missing)}, which the plan-level response does not "
                             f"have (it sees the strategy's bars); use {list(BASKET_MONITORS)}")
        return self

    @property
    def policy(self) -> ResponsePolicy:
        """``response`` with ``exposure`` written into the rungs that cut exposure."""
        if self.exposure is None:
            return self.response
        stages = tuple(r.model_copy(update={"exposure": self.exposure}) if r.exposure < 1 else r
                       for r in self.response.stages)
        return self.response.model_copy(update={"stages": stages})


class RiskConfig(Frozen):
    """``ladder``: the account's drawdown ladder; ``daily_loss``: a ladder on the day's return (a daily
    loss limit). Both off unless configured (the bundled configs turn the account ladder on)."""

    ladder: LadderConfig = LadderConfig()
    daily_loss: LadderConfig = LadderConfig(measure="day_return", cooldown=1)
    limits: LimitsConfig = LimitsConfig()  # plan-level caps and budgets on the target weights (off by default)
    drift: DriftResponseConfig = DriftResponseConfig()  # drift monitors and the response (off by default)
