"""What a target strategy is, for every caller: the backtester, the walk-forward, the CTA sleeves, the live app.

A strategy is a pure function from point-in-time market data to target rows: a row decided at the close
of day t may depend only on data up to t (checked for every strategy by
:mod:`~vnpy_rotation.backtest.lookahead`). :class:`TargetStrategy` names everything a caller may use,
including the optional hooks; :class:`StrategyBase` gives those hooks their do-nothing defaults, so a
caller calls them instead of probing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from .config import StrategySettings

if TYPE_CHECKING:  # types only: the data and plan records live in the layers above
    from .backtest.engine import TargetPlan
    from .data.market_data import MarketData, MarketMemo
    from .data.store import BarStore


@runtime_checkable
class TargetStrategy(Protocol):
    name: ClassVar[str]
    settings: StrategySettings
    # Problems with the strategy's own inputs found by the last prepare_market (shown in reports and logs).
    data_warnings: Sequence[str]

    @property
    def symbols(self) -> list[str]: ...

    @property
    def warmup_days(self) -> int: ...

    def targets(self, market: MarketData) -> TargetPlan: ...

    def prepare_market(self, market: MarketData, store: BarStore) -> MarketData:
        """Attach the strategy's own point-in-time inputs (e.g. fundamentals) to the bars."""
        ...

    def pool_plans(self, market: MarketData) -> dict[str, TargetPlan] | None:
        """Each pool's plan on its own, for strategies that split capital between pools (else None)."""
        ...


class StrategyBase:
    """The optional hooks' defaults: no extra inputs, no warnings, no pools."""

    data_warnings: Sequence[str] = ()
    # The values ``run.py sweep`` and ``run.py walkforward`` search when given no grid (empty: a grid is required).
    search_space: ClassVar[dict[str, list[Any]]] = {}
    # Settings read when the market is loaded and prepared (its symbols, ``prepare_market``'s inputs): a sweep or a
    # walk-forward prepares one market for its whole grid, so a grid may give these one value only.
    market_settings: ClassVar[tuple[str, ...]] = ()
    # A sweep chunk's shared derived values (``backtest.sweep.run_chunk`` sets it; None: a single run computes
    # everything itself) and whether the plan carries per-trade notes (a sweep keeps only metrics: off).
    memo: MarketMemo | None = None
    notes: bool = True

    def prepare_market(self, market: MarketData, store: BarStore) -> MarketData:
        return market

    def pool_plans(self, market: MarketData) -> dict[str, TargetPlan] | None:
        return None

    @property
    def has_own_inputs(self) -> bool:
        """True when the strategy overrides :meth:`prepare_market` (its reports say so)."""
        return type(self).prepare_market is not StrategyBase.prepare_market
