"""Built-in target strategies, by the name ``run.py backtest --strategy NAME`` uses."""

from __future__ import annotations

from typing import Any

from ..config import validate_section
from ..data.market_data import MarketMemo
from ..errors import InputRejected, Problem
from ..protocol import StrategyBase, TargetStrategy
from .equal_weight import EqualWeightStrategy
from .etf_rotation import EtfRotationStrategy
from .momentum import MomentumTopNStrategy
from .vqm import VqmStrategy

STRATEGIES: dict[str, type] = {cls.name: cls for cls in (EqualWeightStrategy, MomentumTopNStrategy, EtfRotationStrategy,
                                                     VqmStrategy)}


def create_strategy(name: str, raw_settings: dict[str, Any] | None = None, source: str = "strategy") -> TargetStrategy:
    """An instance of the strategy ``name`` with validated settings (errors name ``source`` and field)."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise InputRejected(Problem("--strategy", None, f"unknown strategy {name!r}; choose from "
                                    f"{', '.join(sorted(STRATEGIES))}"))
    return cls(validate_section(cls.Settings, raw_settings, source))


def for_sweep(name: str, raw_settings: dict[str, Any], memo: MarketMemo) -> StrategyBase:
    """:func:`create_strategy` for one run of a sweep: it shares ``memo`` (values derived from the market,
    computed once per chunk) and builds no per-trade notes where it has any (a sweep keeps only metrics)."""
    strategy = create_strategy(name, raw_settings, "sweep")
    assert isinstance(strategy, StrategyBase)  # every built-in strategy is one
    strategy.memo, strategy.notes = memo, False
    return strategy
