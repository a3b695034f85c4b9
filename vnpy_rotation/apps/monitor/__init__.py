"""The market monitor app for VeighNa Trader: ``main_engine.add_app(MonitorApp)``.

Its engine (:class:`MonitorEngine`) subscribes a watchlist through the gateway, computes live indicators and
anomaly alerts per tick with the pure :mod:`vnpy_rotation.monitor` core, and saves 1-minute bars in vnpy's
database; its window (``MarketMonitor``) shows the watchlist table and the alerts.
"""

from __future__ import annotations

from pathlib import Path

from vnpy.trader.app import BaseApp

from .engine import APP_NAME, EVENT_MONITOR_ALERT, EVENT_MONITOR_VIEW, MonitorEngine


class MonitorApp(BaseApp):
    app_name: str = APP_NAME
    app_module: str = __module__
    app_path: Path = Path(__file__).parent
    display_name: str = "行情监控"
    engine_class: type[MonitorEngine] = MonitorEngine
    widget_name: str = "MarketMonitor"
    icon_name: str = str(app_path.joinpath("ui", "monitor.ico"))


__all__ = ["APP_NAME", "EVENT_MONITOR_ALERT", "EVENT_MONITOR_VIEW", "MonitorApp", "MonitorEngine"]
