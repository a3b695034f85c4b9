"""``--gateway xt``: the monitor app's engine on a live XT connection, as a :class:`MonitorFeed`.

The VeighNa monitor app (``vnpy_rotation.apps.monitor``) owns the subscription, the core and the bar saving;
its ``MonitorEngine`` implements :class:`~vnpy_rotation.monitor.view.MonitorFeed`. This module only starts a
``MainEngine`` with vnpy_xt's ``XtGateway`` and that app, and closes both when the screen ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from ..errors import PlatformUnsupported, RotationError
from ..monitor.view import MonitorFeed, MonitorView

NOT_INSTALLED = "monitor app not installed (vnpy_rotation.apps.monitor.engine.MonitorEngine is missing)"
XT_NEEDS = (
    "monitor --gateway xt needs xtquant's native modules, which exist only on Windows with MiniQMT running and "
    "logged in (settings: VeighNa Trader's 连接 XT dialog, HOME/.vntrader/connect_xt.json); "
    "on this machine try: run.py monitor --ticks examples/monitor_ticks.csv."
)


class EngineFeed:
    """Adapts the app's engine (a MonitorFeed) and owns the MainEngine it runs in."""

    def __init__(self, engine: MonitorFeed, main_engine: Any) -> None:
        self.engine = engine
        self.main_engine = main_engine

    def poll(self, now: datetime) -> MonitorView:
        return self.engine.poll(now)

    def close(self) -> None:
        try:
            self.engine.close()
        finally:
            self.main_engine.close()


def xt_feed(watchlist: Sequence[str] | None, list_name: str | None = None) -> EngineFeed:
    """A MainEngine with XtGateway and the monitor app, connected and watching ``watchlist`` (vt_symbols), or
    else the runtime folder's watchlist file: the list ``list_name`` (None: every list)."""
    try:
        from ..apps.monitor.engine import MonitorEngine
    except ImportError:
        raise RotationError(NOT_INSTALLED) from None
    from ..data.xt_fetch import xtquant_native_problem

    if xtquant_native_problem():
        raise PlatformUnsupported(XT_NEEDS)
    from vnpy.event import EventEngine
    from vnpy.trader.engine import MainEngine
    from vnpy_xt import XtGateway

    from ..apps.monitor import MonitorApp
    from ..apps.rotation.live_daemon import xt_setting

    main_engine = MainEngine(EventEngine())
    try:
        main_engine.add_gateway(XtGateway)
        engine: Any = main_engine.add_app(MonitorApp)
        if not isinstance(engine, MonitorEngine):
            raise RotationError(NOT_INSTALLED)
        engine.init_engine()
        gateway = XtGateway.default_name
        main_engine.connect(xt_setting(), gateway)
        if watchlist:
            engine.start(list(watchlist), gateway)
        else:  # names a list of HOME/.vntrader/rotation_watchlists.yaml; an unknown name is refused there
            engine.start_watchlists(gateway, None if list_name is None else [list_name])
    except BaseException:
        main_engine.close()
        raise
    return EngineFeed(engine, main_engine)
