"""``run.py gui``: VeighNa Trader with the rotation app, vnpy's CTA apps and RiskManager.

The runtime folder is settled before this module is imported (``run.py --home``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..app.engine import APP_NAME


def build_main_window() -> tuple[Any, Any, Any]:
    """The QApplication (the running one if there is one), a MainEngine with our gateways and apps, and
    VeighNa Trader's MainWindow on it (not shown). The caller closes the main engine (MainWindow does on exit)."""
    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine
    from vnpy.trader.ui import MainWindow, QtWidgets, create_qapp
    from vnpy_ctabacktester import CtaBacktesterApp
    from vnpy_ctastrategy import CtaStrategyApp
    from vnpy_riskmanager import RiskManagerApp

    from ..app import RotationStrategyApp
    from ..gateways import available_gateways

    qapp = QtWidgets.QApplication.instance() or create_qapp()
    event_engine = EventEngine()
    main_engine = MainEngine(event_engine)  # chdirs into the runtime folder's parent
    try:
        for gateway in available_gateways():
            main_engine.add_gateway(gateway)
        for app in (RotationStrategyApp, CtaStrategyApp, CtaBacktesterApp, RiskManagerApp):
            main_engine.add_app(app)
        main_window = MainWindow(main_engine, event_engine)
    except BaseException:
        main_engine.close()
        raise
    return qapp, main_engine, main_window


def run(args: argparse.Namespace) -> int:
    qapp, main_engine, main_window = build_main_window()
    if main_engine.get_gateway("XT") is not None:  # live sessions on the exchange's clock
        main_engine.get_engine(APP_NAME).clock.start_live()
    main_window.showMaximized()
    return qapp.exec()  # MainWindow.closeEvent closes the main engine


__all__ = ["build_main_window", "run"]
