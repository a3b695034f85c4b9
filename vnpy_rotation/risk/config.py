"""The account-level risk settings every path enforces (backtest, replay, live), validated once.

Part of :class:`~vnpy_rotation.backtest.config.BacktestConfig` (its ``risk`` section), so a live instance
and the backtest of the same configuration enforce the same rules. The strategy's own rules (stock stop,
portfolio stop, drawdown halving, its ladder) travel with its plan: :class:`~vnpy_rotation.risk.stops.RiskRules`.
"""

from __future__ import annotations

from ..config import Frozen
from .ladder import LadderConfig
from .limits import LimitsConfig

# The account ladder's documented defaults (README "Risk engine"): REDUCING at -10 %, HALTED at -15 % from
# the peak, back to ACTIVE within -5 % or after 20 sessions; HALTED flattens and lasts 20 sessions.
DEFAULT_ACCOUNT_LADDER = LadderConfig(reduce_at=0.10, halt_at=0.15, recover_at=0.05, reduce_exposure=1.0,
                                      cooldown=20, halt_cooldown=20, flatten=True)


class RiskConfig(Frozen):
    """``ladder``: the account's drawdown ladder; ``daily_loss``: a ladder on the day's return (a daily
    loss limit). Both off unless configured (the bundled configs turn the account ladder on)."""

    ladder: LadderConfig = LadderConfig()
    daily_loss: LadderConfig = LadderConfig(measure="day_return", cooldown=1)
    limits: LimitsConfig = LimitsConfig()  # plan-level caps and budgets on the target weights (off by default)
