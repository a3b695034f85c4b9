"""The monitor app's window, found by VeighNa Trader's MainWindow as ``MonitorApp.widget_name``."""

from .widget import MarketMonitor

__all__ = ["MarketMonitor"]
