"""The canary app for VeighNa Trader: ``main_engine.add_app(CanaryApp)`` beside the rotation app.

Its engine (:class:`CanaryEngine`) is a control plane: it shows the version registry's versions and aliases
and the rotation engine's canaries (stage, gates, history, the two version books) and sends a human's
promote, reject and rollback through the release table. The canary itself runs inside the rotation engine,
whose single order plan nets the two versions.
"""

from __future__ import annotations

from pathlib import Path

from vnpy.trader.app import BaseApp

from .engine import APP_NAME, CanaryEngine


class CanaryApp(BaseApp):
    app_name: str = APP_NAME
    app_module: str = __module__
    app_path: Path = Path(__file__).parent
    display_name: str = "金丝雀发布"
    engine_class: type[CanaryEngine] = CanaryEngine
    widget_name: str = "CanaryManager"
    icon_name: str = str(app_path.joinpath("ui", "canary.ico"))


__all__ = ["APP_NAME", "CanaryApp", "CanaryEngine"]
