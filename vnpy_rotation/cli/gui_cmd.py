"""``run.py gui``: VeighNa Trader with the rotation app, vnpy's CTA apps, RiskManager, the risk, canary and monitor
apps.

The runtime folder is settled before this module is imported (``run.py --home``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..apps.rotation.engine import APP_NAME
from ..errors import PlatformUnsupported


def build_main_window() -> tuple[Any, Any, Any]:
    """The QApplication (the running one if there is one), a MainEngine with our gateways and apps, and
    VeighNa Trader's MainWindow on it (not shown). The caller closes the main engine (MainWindow does on exit)."""
    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine
    from vnpy.trader.ui import MainWindow, QtWidgets, create_qapp
    from vnpy_ctabacktester import CtaBacktesterApp
    from vnpy_ctastrategy import CtaStrategyApp
    from vnpy_riskmanager import RiskManagerApp

    from ..apps.canary import CanaryApp
    from ..apps.monitor import MonitorApp
    from ..apps.risk import RiskApp
    from ..apps.rotation import RotationStrategyApp
    from ..gateways import available_gateways

    qapp = QtWidgets.QApplication.instance() or create_qapp()
    event_engine = EventEngine()
    main_engine = MainEngine(event_engine)  # chdirs into the runtime folder's parent
    try:
        for gateway in available_gateways():
            main_engine.add_gateway(gateway)
        for app in (RotationStrategyApp, CtaStrategyApp, CtaBacktesterApp, RiskManagerApp, RiskApp,
                    CanaryApp, MonitorApp):
            main_engine.add_app(app)
        main_engine.get_engine(RiskApp.app_name).init_engine()  # its state and notifier, before any order
        main_engine.get_engine(MonitorApp.app_name).init_engine()  # its notifier; started from its window
        main_window = MainWindow(main_engine, event_engine)
    except BaseException:
        main_engine.close()
        raise
    return qapp, main_engine, main_window


# Debian/Ubuntu packages of the libraries Qt 6's xcb platform plugin loads ("Qt for X11 Requirements",
# https://doc.qt.io/qt-6/linux-requirements.html; libxcb-cursor0 is required from Qt 6.5), plus the EGL/GL,
# font and D-Bus libraries PySide6's QtGui links.
QT_XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0",
                   "libxcb-render-util0", "libxcb-render0", "libxcb-shape0", "libxcb-shm0", "libxcb-sync1",
                   "libxcb-util1", "libxcb-xfixes0", "libxcb-xkb1", "libxkbcommon0",
                   "libxkbcommon-x11-0", "libxrender1", "libx11-xcb1", "libfontconfig1", "libfreetype6",
                   "libegl1", "libgl1", "libdbus-1-3")
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "minimalegl")  # need no X11/Wayland


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why Qt cannot open a window here, or None: checked before Qt, which would abort the process."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if chosen in HEADLESS_PLATFORMS:
        return None
    advice = ("Run it in a desktop session (DISPLAY or WAYLAND_DISPLAY set), or headless with "
              "QT_QPA_PLATFORM=offscreen; on Linux Qt's X11 plugin also needs the system libraries: "
              f"sudo apt-get install {' '.join(QT_XCB_PACKAGES)}")
    if chosen.startswith("wayland"):
        return None if environ.get("WAYLAND_DISPLAY") else \
            f"gui: QT_QPA_PLATFORM={chosen} but no WAYLAND_DISPLAY. {advice}"
    if not environ.get("DISPLAY") and (chosen or not environ.get("WAYLAND_DISPLAY")):
        return f"gui: no display (DISPLAY and WAYLAND_DISPLAY are unset). {advice}"
    missing = missing_xcb_libraries()
    if missing and (chosen == "xcb" or not environ.get("WAYLAND_DISPLAY")):
        return f"gui: Qt's xcb plugin cannot load; missing {', '.join(missing)}. {advice}"
    return None


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb platform plugin links that the loader cannot find (``ldd``), plus
    libxcb-cursor, which Qt 6.5+ loads at run time. Empty when ldd or the plugin is unavailable."""
    import ctypes.util
    import shutil
    import subprocess

    import PySide6

    plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    ldd = shutil.which("ldd")
    if not plugin.exists() or ldd is None:
        return []
    try:
        listing = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = sorted({line.split("=>")[0].strip() for line in listing.splitlines() if "not found" in line})
    if ctypes.util.find_library("xcb-cursor") is None:
        missing.append("libxcb-cursor.so.0")
    return missing


def run(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem:
        raise PlatformUnsupported(problem)
    qapp, main_engine, main_window = build_main_window()
    if main_engine.get_gateway("XT") is not None:  # live sessions on the exchange's clock
        main_engine.get_engine(APP_NAME).clock.start_live()
    main_window.showMaximized()
    return qapp.exec()  # MainWindow.closeEvent closes the main engine


__all__ = ["build_main_window", "display_problem", "run"]
