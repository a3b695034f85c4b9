"""The live daemon: XtGateway (or any gateway class), the same stack and phases as the replay, on the clock.

Phases run at :class:`~vnpy_rotation.live.schedule.SessionTimes` in Asia/Shanghai; ``once`` stops after
the next close; SIGINT/SIGTERM set ``stop`` and the daemon closes the MainEngine and returns cleanly.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from typing import Callable

from vnpy.trader.utility import load_json

from ...live.schedule import SHANGHAI, SessionTimes, next_phase
from ...live.session_log import SessionLog, Slot, live_schedule
from ...market.calendar import default_calendar
from .daemon import Stack, TradeSpec, accounts_of, canary_to_start, ensure_instance, start_canary, stopped
from .journal import DayJournal
from .kpi_hook import SessionKpis

CONNECT_WAIT = 30.0  # seconds for the gateway's first account report


def xt_setting(override: dict | None = None) -> dict:
    """XtGateway's connect setting: what the GUI saved (connect_xt.json), then ``override``."""
    from vnpy_xt import XtGateway

    setting = {k: (v[0] if isinstance(v, list) else v) for k, v in XtGateway.default_setting.items()}
    setting.update(load_json("connect_xt.json"))
    setting.update(override or {})
    return setting


def install_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM end the daemon after the current phase (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def run_live(spec: TradeSpec, gateway_class: type, setting: dict, *, once: bool = False,
             stop: threading.Event | None = None, times: SessionTimes = SessionTimes(),
             now: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
             output: Callable[[str], None] = print) -> int:
    """Trade ``spec.strategy`` through ``gateway_class`` until stopped (or one close with ``once``)."""
    stop = stop or threading.Event()
    install_signals(stop)
    stack = Stack(gateway_class, spec.out / "state", risk=spec.config.risk, accounts=accounts_of(spec),
                  allocation=spec.allocation)
    try:
        stack.engine.day_closed.append(DayJournal(spec.out))
        stack.engine.day_closed.append(SessionKpis(spec.out, stack.engine.notify, stack.engine.write_log, spec.kpi))
        gateway_name = stack.gateway.gateway_name
        stack.main_engine.connect(setting, gateway_name)
        waited = 0.0
        while not stack.main_engine.get_all_accounts() and waited < CONNECT_WAIT and not stop.is_set():
            stop.wait(0.5)
            waited += 0.5
        stack.drain()
        if not stack.main_engine.get_all_accounts():
            output(f"warning: no account report from {gateway_name} after {CONNECT_WAIT:.0f} s")
        stack.size_risk_rules(spec.config.capital, output)
        name = ensure_instance(stack.engine, spec, gateway_name)
        stack.engine.init_strategy(name)
        stack.drain()
        stack.engine.start_strategy(name)
        cycle = stack.engine.instances[name].cycle
        calendar = default_calendar()
        if cycle is not None and canary_to_start(cycle.state.canary, spec.canary):
            start_canary(stack, name, spec.canary, now().date())
        done = None
        log = SessionLog(spec.out)
        while not stop.is_set():
            due = next_phase(now(), calendar, times, done)
            slot = Slot(due.day, due.phase, due.at)
            if due.phase != "close" or cycle is None or cycle.state.last_close < due.day.isoformat():
                wait = (due.at - now()).total_seconds()
                if wait > 0 and stop.wait(wait):
                    break
                output(f"{due.day} {due.phase}")
                if log.latest is not None:  # what the schedule had since the last row and nobody ran
                    log.fill_missed(live_schedule(calendar, times, log.latest.date(), due.day), due.at)
                log.run(slot, lambda due=due: stack.phase(due.phase, due.day) or stopped(stack.engine.instances[name]), now)
            else:
                log.note_done(slot, "closed before the restart")
            done = (due.day, due.index)
            instance = stack.engine.instances[name]
            if not instance.trading:
                output(f"strategy {name} stopped: see the log")
                return 1
            if once and due.phase == "close":
                break
        return 0
    finally:
        stack.close()
