"""Equal-weight buy-and-hold of a pool, rebalanced on a schedule (monthly by default)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from ..backtest.engine import TargetPlan
from ..backtest.strategy import rebalance_days, weights_frame
from ..bundled import manifest
from ..config import StrategySettings
from ..data.market_data import MarketData
from ..protocol import StrategyBase


class EqualWeightSettings(StrategySettings):
    pool: str | None = "A_SHARE"  # a pool of the bundled manifest, used when symbols is empty
    symbols: list[str] = Field(default_factory=list)
    rebalance: Literal["month_end", "week_end", "daily"] = "month_end"
    invested: float = Field(default=0.99, gt=0, le=1)  # keep 1 % cash for fees and lot rounding

    @field_validator("pool")
    @classmethod
    def _known_pool(cls, value: str | None) -> str | None:
        pools = manifest()["pools"]
        if value is not None and value not in pools:
            raise ValueError(f"{value!r} is not a pool of the bundled manifest; it defines {', '.join(pools)}")
        return value

    @field_validator("symbols")
    @classmethod
    def _vt_symbols(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if "." not in s]
        if bad:
            raise ValueError(f"expected CODE.EXCHANGE, e.g. 510300.SSE: {bad}")
        return value


class EqualWeightStrategy(StrategyBase):
    """Holds every listed, tradable member at the same weight; members without data wait for it."""

    name: ClassVar[str] = "equal_weight"
    market_settings: ClassVar[tuple[str, ...]] = ("symbols",)
    Settings = EqualWeightSettings

    def __init__(self, settings: EqualWeightSettings) -> None:
        self.settings = settings

    @property
    def symbols(self) -> list[str]:
        if self.settings.symbols:
            return list(self.settings.symbols)
        return list(manifest()["pools"][self.settings.pool])

    @property
    def warmup_days(self) -> int:
        return 0

    def targets(self, market: MarketData) -> TargetPlan:
        rows = rebalance_days(market, self.settings.rebalance)
        live = np.isfinite(market.close[rows]) & ~market.suspended[rows]
        count = live.sum(axis=1, keepdims=True)
        weights = np.where(live, self.settings.invested / np.maximum(count, 1), 0.0)
        return TargetPlan(weights_frame(market, rows, weights))
