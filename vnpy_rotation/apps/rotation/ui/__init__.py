"""The rotation strategy app's window, found by VeighNa Trader's MainWindow as ``RotationStrategyApp.widget_name``."""

from .widget import RotationManager

__all__ = ["RotationManager"]
