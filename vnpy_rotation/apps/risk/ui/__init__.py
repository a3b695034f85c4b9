"""The risk app's window, found by VeighNa Trader's MainWindow as ``RiskApp.widget_name``."""

from .widget import RiskMonitor

__all__ = ["RiskMonitor"]
