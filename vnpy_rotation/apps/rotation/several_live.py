"""Several strategies across several XT accounts in one live daemon (``run.py trade --gateway xt --config FILE``
with top-level ``accounts:`` of kind ``xt`` and ``strategies:``): the phases of :mod:`.live_daemon` on the
exchange's clock, one XtGateway per account, the files of :mod:`.several`.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable

from ...live.schedule import SHANGHAI, SessionTimes, next_phase
from ...live.session_log import SessionLog, Slot
from ...market.calendar import default_calendar
from .daemon import Stack
from .live_daemon import CONNECT_WAIT, install_signals, run_due
from .several import (
    SeveralSpec,
    add_instances,
    after_close,
    first_failure,
    per_strategy_files,
    start_all,
    write_strategy_parameters,
)


def connect_each(stack: Stack, settings: dict[str, dict], stop: threading.Event,
                 output: Callable[[str], None]) -> None:
    """Connect the accounts one after the other, each until its account report (vnpy_xt takes a trading
    session's id from the clock in milliseconds: two at one instant would collide)."""
    for gateway, setting in settings.items():
        stack.main_engine.connect(setting, gateway)
        waited = 0.0
        while not [a for a in stack.main_engine.get_all_accounts() if a.gateway_name == gateway] \
                and waited < CONNECT_WAIT and not stop.is_set():
            stop.wait(0.5)
            waited += 0.5
        if not [a for a in stack.main_engine.get_all_accounts() if a.gateway_name == gateway]:
            output(f"warning: no account report from {gateway} after {CONNECT_WAIT:.0f} s")
    stack.drain()


def run_several_live(spec: SeveralSpec, gateway_class: type, settings: dict[str, dict], *, once: bool = False,
                     stop: threading.Event | None = None, times: SessionTimes = SessionTimes(),
                     now: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
                     output: Callable[[str], None] = print) -> int:
    """Trade every strategy of ``spec`` in its account (``settings``: gateway name -> its connect setting) until
    stopped, or one close with ``once``. Returns 1 when a strategy stopped or an account's positions differ."""
    stop = stop or threading.Event()
    install_signals(stop)
    stack = Stack(gateway_class, spec.out / "state", risk=spec.config.risk, accounts=tuple(settings),
                  allocation=spec.run.allocation())
    write_strategy_parameters(spec, "xt")
    differences = 0
    try:
        per_strategy_files(stack, spec)
        connect_each(stack, settings, stop, output)
        equity = max((a.balance for a in stack.main_engine.get_all_accounts()), default=spec.config.capital)
        stack.size_risk_rules(float(equity) or spec.config.capital, output)
        names = add_instances(stack.engine, spec, spec.tolerance_bps)
        start_all(stack, names)
        cycles = [stack.engine.instances[n].cycle for n in names]
        calendar = default_calendar()
        done = None
        log = SessionLog(spec.out)
        while not stop.is_set():
            due = next_phase(now(), calendar, times, done)
            if due.phase != "close" or min(c.state.last_close for c in cycles) < due.day.isoformat():
                if not run_due(stack, log, due, times, now, stop, output, lambda: first_failure(stack, names)):
                    break
                if due.phase == "close":
                    differences += after_close(stack, spec, names, due.day, output)
            else:
                log.note_done(Slot(due.day, due.phase, due.at), "closed before the restart")
            done = (due.day, due.index)
            failure = first_failure(stack, names)
            if failure is not None:
                output(f"strategy {failure}: see the log")
                return 1
            if once and due.phase == "close":
                break
        return 0 if differences == 0 else 1
    finally:
        stack.close()
