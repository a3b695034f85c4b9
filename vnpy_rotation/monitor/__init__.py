"""The market monitor's pure core: quotes in, indicators, anomaly alerts and 1-minute bars out.

No vnpy imports: the VeighNa app, the terminal view and the gateway wiring convert vnpy's ``TickData``
into :class:`~vnpy_rotation.monitor.records.Quote` and call :class:`~vnpy_rotation.monitor.core.MonitorCore`.
"""

from .config import MonitorConfig
from .core import Holding, MonitorCore, Reference
from .records import Alert, DailyBar, Indicators, MinuteBar, Quote, Severity, StrategyScores
from .view import MonitorFeed, MonitorView

__all__ = ["Alert", "DailyBar", "Holding", "Indicators", "MinuteBar", "MonitorConfig", "MonitorCore", "MonitorFeed",
           "MonitorView", "Quote",
           "Reference", "Severity", "StrategyScores"]
