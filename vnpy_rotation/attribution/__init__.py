"""P&L attribution (pure: numpy/pandas): implementation shortfall, Brinson–Fachler by segment, markouts."""

from .records import AttributionInput, Bars, Benchmark, Fills, Unfilled
from .report import AttributionReport, attribute

__all__ = ["AttributionInput", "AttributionReport", "Bars", "Benchmark", "Fills", "Unfilled", "attribute"]
