"""The canary's settings, validated once: the stage table, the promotion gates and the rollback rules.

A candidate version takes the share of the strategy's capital of its current stage; after the stage's
minimum number of sessions it is promoted when every promotion gate passes, and rolled back as soon as any
rollback rule trips (checked every session). The defaults, their units and why are in ``docs/canary/stages.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import Frozen, read_yaml, validate_section


class Stage(Frozen):
    """One step of the stage table: the candidate's ``share`` of the strategy's capital (0 = shadow, paper
    fills beside the champion, no orders) for at least ``min_sessions`` sessions."""

    name: str = Field(min_length=1)
    share: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    min_sessions: int = Field(ge=1)


# shadow → 5 % → 20 % → 50 % → 100 %; at 100 % the candidate holds everything and its promotion makes it
# the champion. A week of paper trading, then two weeks per real stage: short enough to release monthly,
# long enough for a binomial test at 99 % to notice two VaR exceptions (see PromotionGates.var_p_value).
DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage(name="shadow", share=0.0, min_sessions=5),
    Stage(name="5pct", share=0.05, min_sessions=10),
    Stage(name="20pct", share=0.20, min_sessions=10),
    Stage(name="50pct", share=0.50, min_sessions=10),
    Stage(name="full", share=1.0, min_sessions=10),
)


class PromotionGates(Frozen):
    """Every gate must pass once the stage's ``min_sessions`` are done for the candidate to be promoted.

    A gate that cannot be measured yet (no orders, too short a backtest history) is reported as not
    evaluated and does not block the promotion; in the shadow stage slippage and fill rate are never
    evaluated (its fills are paper fills)."""

    tracking_bp: float = Field(default=20.0, ge=0.0, allow_inf_nan=False)
    """Largest mean |live return − backtest return| per session, in basis points of capital per session.
    The backtest is the candidate's own, run at the stage's capital over the same sessions."""

    slippage_bp: float = Field(default=10.0, allow_inf_nan=False)
    """Largest realised slippage minus the cost model's slippage, value-weighted over the stage's fills, bp."""

    drawdown_quantile: float = Field(default=0.95, gt=0.0, lt=1.0)
    """The stage's max drawdown may not exceed this quantile of the backtest's max drawdowns over every
    rolling window of as many sessions (a fraction of the window's starting equity)."""

    var_p_value: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Smallest one-sided binomial p-value P(X >= exceptions | sessions, 1 − var_level) of the stage's VaR
    exceptions. With 10 sessions at 99 %: 0 exceptions p = 1, one p ≈ 0.096 (passes), two p ≈ 0.004."""

    fill_rate: float = Field(default=0.95, ge=0.0, le=1.0)
    """Smallest filled / submitted order value (CNY at the order's reference price) of the candidate's part."""


class RollbackRules(Frozen):
    """Checked after every session, from the stage's first: any rule that trips rolls the candidate back."""

    tracking_bp: float = Field(default=60.0, ge=0.0, allow_inf_nan=False)
    """Rollback when mean |live return − backtest return| per session exceeds this, bp of capital per session."""

    slippage_bp: float = Field(default=30.0, allow_inf_nan=False)
    """Rollback when realised minus modelled slippage, value-weighted over the stage's fills, exceeds this, bp."""

    drawdown_quantile: float = Field(default=0.99, gt=0.0, lt=1.0)
    """Rollback when the stage's max drawdown exceeds this quantile of the backtest's same-horizon drawdowns."""

    var_p_value: float = Field(default=0.01, gt=0.0, lt=1.0)
    """Rollback when the binomial p-value of the stage's VaR exceptions is below this (10 sessions at 99 %:
    two exceptions, p ≈ 0.004, trip it; one, p ≈ 0.096, does not)."""

    halt: bool = True
    """Rollback when the strategy's risk ladder is HALTED at any session of the stage."""

    fill_rate: float = Field(default=0.80, ge=0.0, le=1.0)
    """Rollback when filled / submitted order value of the candidate's part is below this."""


class CanaryConfig(Frozen):
    """A strategy's ``canary:`` section: the stage table, how promotion is approved, gates and rules."""

    stages: tuple[Stage, ...] = DEFAULT_STAGES
    approval: Literal["auto", "manual"] = "auto"
    promote: PromotionGates = PromotionGates()
    rollback: RollbackRules = RollbackRules()
    var_level: float = Field(default=0.99, gt=0.5, lt=1.0)
    """Confidence of the one-day historical VaR taken from the backtest history (99 %)."""
    min_history: int = Field(default=60, ge=2)
    """Backtest sessions needed before the drawdown quantile and the VaR are trusted (else not evaluated)."""

    @model_validator(mode="after")
    def _table(self) -> CanaryConfig:
        if not self.stages:
            raise ValueError("stages: at least one stage is needed")
        names = [s.name for s in self.stages]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"stages: names must be unique, repeated {repeated}")
        shares = [s.share for s in self.stages]
        if any(b <= a for a, b in zip(shares, shares[1:])):
            raise ValueError(f"stages: shares must increase strictly, got {shares}")
        if shares[-1] != 1.0:
            raise ValueError(f"stages: the last stage must hold the whole capital (share 1.0), got {shares[-1]}")
        for gate in ("tracking_bp", "slippage_bp", "var_p_value", "fill_rate", "drawdown_quantile"):
            p, r = getattr(self.promote, gate), getattr(self.rollback, gate)
            # a rollback threshold inside the promotion range would roll back a candidate fit to promote
            looser = r < p if gate in ("tracking_bp", "slippage_bp", "drawdown_quantile") else r > p
            if looser:
                raise ValueError(f"rollback.{gate}: {r} is stricter than promote.{gate} {p}")
        return self


def canary_config(raw: Any, source: str) -> CanaryConfig:
    """Validate a ``canary:`` mapping (None: the defaults); errors name ``source`` and the field."""
    return validate_section(CanaryConfig, raw, source)


def read_canary_config(path: Path) -> CanaryConfig:
    """The ``canary:`` section of a YAML file (defaults when absent); errors name the file and the field."""
    raw = read_yaml(path).get("canary")
    return canary_config(raw, f"{path}: canary")
