"""What a monitor screen shows at one moment: the watchlist's indicators and the latest alerts.

Both screens (the VeighNa widget and the terminal monitor) render this one record, and every quote source
(the monitor app's engine on a gateway, a scripted tick file) produces it, so neither screen knows where the
quotes come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Mapping, Protocol

from .records import Alert, Indicators, StrategyScores

NO_SCORES: Mapping[str, tuple[StrategyScores, ...]] = MappingProxyType({})


@dataclass(frozen=True)
class MonitorView:
    """The watchlist in display order (symbols without a quote yet have ``None``) and recent alerts, newest last."""

    at: datetime
    rows: tuple[tuple[str, Indicators | None], ...]
    alerts: tuple[Alert, ...]
    connected: bool = True  # False while the quote source reports a disconnect
    # vt_symbol → the strategies' own factor values and ranks at the last close (symbols in no strategy: absent)
    scores: Mapping[str, tuple[StrategyScores, ...]] = field(default_factory=lambda: NO_SCORES)

    def rank_text(self, vt_symbol: str) -> str:
        """The symbol's ranks, compact: ``vqm 3/45``; several strategies joined by spaces; "" when none."""
        return " ".join(f"{s.strategy.rpartition('/')[2]} {s.short()}" for s in self.scores.get(vt_symbol, ()))


class MonitorFeed(Protocol):
    """A source of monitor views; ``poll`` advances it to ``now`` and returns what to show."""

    def poll(self, now: datetime) -> MonitorView: ...

    def close(self) -> None: ...
