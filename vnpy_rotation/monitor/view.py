"""What a monitor screen shows at one moment: the watchlist's indicators and the latest alerts.

Both screens (the VeighNa widget and the terminal monitor) render this one record, and every quote source
(the monitor app's engine on a gateway, a scripted tick file) produces it, so neither screen knows where the
quotes come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .records import Alert, Indicators


@dataclass(frozen=True)
class MonitorView:
    """The watchlist in display order (symbols without a quote yet have ``None``) and recent alerts, newest last."""

    at: datetime
    rows: tuple[tuple[str, Indicators | None], ...]
    alerts: tuple[Alert, ...]
    connected: bool = True  # False while the quote source reports a disconnect


class MonitorFeed(Protocol):
    """A source of monitor views; ``poll`` advances it to ``now`` and returns what to show."""

    def poll(self, now: datetime) -> MonitorView: ...

    def close(self) -> None: ...
