"""The live screen: poll a feed, redraw, read keys; the terminal is restored however the loop ends.

``rich.live.Live`` draws on the alternate screen; keys are read in cbreak mode (no echo, no line buffering,
Ctrl-C still interrupts) with ``select`` so a redraw never waits for a key. q, Q, Esc or Ctrl-C quit.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import threading
import tty
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator, TextIO

from rich.console import Console, RenderableType
from rich.live import Live

from ..monitor.view import MonitorFeed, MonitorView

QUIT_KEYS = frozenset("qQ\x1b\x03")


@contextmanager
def cbreak(stream: TextIO) -> Iterator[Callable[[float], str]]:
    """Yield ``read(timeout) -> key or ""``; the terminal's modes are put back on exit (a pipe: no keys)."""
    if not stream.isatty():
        yield lambda timeout: (select.select([], [], [], timeout), "")[1]
        return
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)

        def read(timeout: float) -> str:
            ready, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, 32).decode("utf-8", "replace") if ready else ""

        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_screen(feed: MonitorFeed, draw: Callable[[MonitorView], RenderableType], *, refresh: float,
               clock: Callable[[], datetime], console: Console | None = None, stdin: TextIO | None = None) -> int:
    """Redraw every ``refresh`` seconds until a quit key or Ctrl-C; 0 on a normal quit."""
    console = console or Console()
    if threading.current_thread() is threading.main_thread():  # `kill PID` also restores the terminal
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        with cbreak(stdin or sys.stdin) as read_key, \
                Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False) as live:
            while True:
                live.update(draw(feed.poll(clock())), refresh=True)
                keys = read_key(refresh)
                if QUIT_KEYS.intersection(keys):
                    return 0
    except KeyboardInterrupt:
        return 0  # Ctrl-C is the other way to quit; the context managers have restored the terminal
    finally:
        feed.close()
