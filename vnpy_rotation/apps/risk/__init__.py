"""The risk app for VeighNa Trader: ``main_engine.add_app(RiskApp)`` after vnpy_riskmanager's RiskManagerApp.

Its engine (:class:`RiskEngine`) steps the account's drawdown ladder at each session close, keeps each
strategy's rung, enforces them on every order through a vnpy_riskmanager rule and persists its state.
"""

from __future__ import annotations

from pathlib import Path

from vnpy.trader.app import BaseApp

from .engine import APP_NAME, RiskEngine


class RiskApp(BaseApp):
    app_name: str = APP_NAME
    app_module: str = __module__
    app_path: Path = Path(__file__).parent
    display_name: str = "风控引擎"
    engine_class: type[RiskEngine] = RiskEngine
    widget_name: str = "RiskMonitor"
    icon_name: str = str(app_path.joinpath("ui", "risk.ico"))


__all__ = ["APP_NAME", "RiskApp", "RiskEngine"]
