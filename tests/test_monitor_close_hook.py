"""The monitor's end of day after the rotation app's close: provisional daily bars stored once per day, a failure
logged and notified without stopping the caller, and the hook registered next to the rotation app."""

from __future__ import annotations

import pandas as pd
from test_live_xt import xt_module  # noqa: F401  (fixture)
from test_monitor_app import DAY, fake_xt_trading, mon, stream_a_morning, xt  # noqa: F401  (fixtures)

from vnpy_rotation.apps.monitor.close_hook import MonitorCloseDay

SUMMARY = {"day": DAY.isoformat(), "positions": {}}


def hook_of(mon, logged, notified):
    return MonitorCloseDay(mon.main_engine, lambda *a: notified.append(a), logged.append)


def test_after_the_close_the_days_bars_are_stored_once(mon):
    logged, notified = [], []
    hook = hook_of(mon, logged, notified)
    hook("etf", None, SUMMARY)  # before the monitor watches anything: nothing to do
    assert mon.store.provisional_days("510300", "SSE") == {}
    stream_a_morning(mon)
    calls = []
    close_day = mon.engine.close_day
    mon.engine.close_day = lambda: calls.append(1) or close_day()
    hook("etf", None, SUMMARY)
    hook("vqm", None, SUMMARY)  # a second strategy closing the same day
    assert calls == [1] and not notified
    assert mon.store.provisional_days("510300", "SSE") == {DAY: "monitor"}
    bar = mon.store.stored_bars("510300", "SSE").loc[pd.Timestamp(DAY)]
    assert (bar["close"], bar["volume"]) == (4.01, 7000.0)


def test_a_failing_end_of_day_is_notified_and_does_not_raise(mon):
    logged, notified = [], []
    stream_a_morning(mon)

    def broken():
        raise OSError("database is locked")

    mon.engine.close_day = broken
    hook_of(mon, logged, notified)("etf", None, SUMMARY)  # returns: trading goes on
    assert [(kind, subject) for kind, subject, _ in notified] == [("failure", f"market monitor close {DAY} failed")]


def test_the_monitor_registers_itself_after_the_rotation_apps_close(mon):
    from vnpy_rotation.apps.rotation import RotationStrategyApp

    mon.main_engine.add_app(RotationStrategyApp)
    rotation = mon.main_engine.get_engine("RotationStrategy")
    stream_a_morning(mon)
    stream_a_morning(mon)  # started twice: registered once
    hooks = [c for c in rotation.day_closed if isinstance(c, MonitorCloseDay)]
    assert len(hooks) == 1
    hooks[0]("etf", None, SUMMARY)
    assert mon.store.provisional_days("510300", "SSE") == {DAY: "monitor"}


def test_the_live_daemon_closes_the_monitors_day_after_its_close(xt_module, fake_xt_trading, tmp_path, monkeypatch):
    """``run_live`` with the monitor app running in its MainEngine (watching the traded ETF): after the close's
    journal, the monitor's ``close_day`` has run once and the ETF's provisional daily bar of the day is stored."""
    import threading
    from datetime import datetime
    from datetime import time as clock_time

    from test_live_xt import DAY as LIVE_DAY
    from test_live_xt import A, B, GatedClock, push_ticks, wait_until

    from vnpy_rotation.apps.monitor import MonitorApp
    from vnpy_rotation.apps.monitor.engine import MonitorEngine
    from vnpy_rotation.apps.rotation import live_daemon
    from vnpy_rotation.apps.rotation.daemon import Stack, TradeSpec
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.data.store import BarStore
    from vnpy_rotation.live.schedule import SHANGHAI, SessionTimes

    class MonitoredStack(Stack):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.main_engine.add_app(MonitorApp)
            monitor = self.main_engine.get_engine(MonitorApp.app_name)
            monitor.init_engine(notifications=False)
            monitor.start([A], "XT", references=[], holdings=[])  # subscribed once the contracts arrive

    closed: list = []
    original = MonitorEngine.close_day
    monkeypatch.setattr(MonitorEngine, "close_day", lambda self: closed.append(1) or original(self))
    monkeypatch.setattr(live_daemon, "Stack", MonitoredStack)
    out = tmp_path / "out"
    spec = TradeSpec("equal_weight", {"symbols": [A, B]}, BacktestConfig(), out)
    times = SessionTimes(open=clock_time(9, 31), retries=(clock_time(9, 45),),
                         deadline=clock_time(10, 0, 0, 200_000), close=clock_time(10, 0, 0, 400_000))
    clock = GatedClock(datetime.combine(LIVE_DAY, clock_time(10, 0), SHANGHAI))
    stop = threading.Event()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(live_daemon.run_live(
        spec, xt_module.XtGateway, fake_xt_trading.gateway_setting(), once=True, stop=stop, times=times, now=clock,
        output=lambda line: None)), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(fake_xt_trading.market.subscriptions()) == 2, "the subscriptions", 30.0)
        push_ticks(fake_xt_trading)
        fake_xt_trading.wait_delivered()
        clock.ready.set()
        thread.join(60.0)
    finally:
        stop.set()
        clock.ready.set()
        thread.join(30.0)
    assert result == [0] and closed == [1]
    assert BarStore().provisional_days("510300", "SSE") == {LIVE_DAY: "monitor"}
