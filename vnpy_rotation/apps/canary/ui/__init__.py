"""The canary app's window, found by VeighNa Trader's MainWindow as ``CanaryApp.widget_name``."""

from .widget import CanaryManager

__all__ = ["CanaryManager"]
