"""The risk core: pure functions of a snapshot (no vnpy imports), below both ``backtest/`` and ``live/``.

Drawdown ladder and stops (numba-compilable where the day loop calls them), drift monitors, VaR/ES and
their exception tests, and the fail-safe table. The VeighNa shell that enforces them live is
:mod:`vnpy_rotation.apps.risk`.
"""
