"""The rotation strategy app for VeighNa Trader: ``main_engine.add_app(RotationStrategyApp)``."""

from __future__ import annotations

from pathlib import Path

from vnpy.trader.app import BaseApp

from .engine import APP_NAME, RotationEngine


class RotationStrategyApp(BaseApp):
    app_name: str = APP_NAME
    app_module: str = __module__
    app_path: Path = Path(__file__).parent
    display_name: str = "轮动策略"
    engine_class: type[RotationEngine] = RotationEngine
    widget_name: str = "RotationManager"
    icon_name: str = str(app_path.joinpath("ui", "rotation.ico"))


__all__ = ["APP_NAME", "RotationEngine", "RotationStrategyApp"]
