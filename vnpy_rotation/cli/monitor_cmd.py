"""``run.py monitor``: the terminal market monitor over a replayed tick file or the XT gateway."""

from __future__ import annotations

import argparse
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import InputRejected, Problem

CHINA = ZoneInfo("Asia/Shanghai")


def add_parsers(commands: Any, home: argparse.ArgumentParser) -> None:
    """``monitor [--watchlist NAME|FILE] [--ticks FILE] [--speed X] [--gateway xt] [--refresh S] [--once]``."""
    mon = commands.add_parser("monitor", parents=[home],
                              help="the terminal market monitor: watchlist indicators and anomaly alerts (q quits)")
    mon.add_argument("--watchlist", metavar="NAME|FILE",
                     help="a pool of configs/etf_pools.yaml (e.g. A_SHARE), a YAML file with symbols: [...], or "
                          "with --gateway a list of HOME/.vntrader/rotation_watchlists.yaml (default: every symbol "
                          "of the tick file; with --gateway every list of that file)")
    mon.add_argument("--ticks", type=Path, metavar="FILE", help="replay a tick CSV (see docs/monitor_tui.md)")
    mon.add_argument("--speed", type=float, default=1.0,
                     help="replay speed: 1 real time, 10 ten times faster, 0 all at once (default 1)")
    mon.add_argument("--gateway", choices=["xt"], help="live quotes through vnpy_xt (Windows with MiniQMT)")
    mon.add_argument("--refresh", type=float, default=1.0, metavar="S", help="seconds between redraws (default 1)")
    mon.add_argument("--once", action="store_true",
                     help="print one frame to stdout and exit (a tick file is replayed to its end first)")
    mon.set_defaults(handler="vnpy_rotation.cli.monitor_cmd:run", settle=False)


def _check(args: argparse.Namespace) -> None:
    if (args.ticks is None) == (args.gateway is None):
        raise InputRejected(Problem("--ticks/--gateway", None, "give exactly one quote source: --ticks FILE or "
                                    "--gateway xt"))
    if not (math.isfinite(args.speed) and args.speed >= 0):
        raise InputRejected(Problem("--speed", None, f"{args.speed} must be 0 (all at once) or positive"))
    if not (math.isfinite(args.refresh) and 0.05 <= args.refresh <= 60):
        raise InputRejected(Problem("--refresh", None, f"{args.refresh} must be between 0.05 and 60 seconds"))


def labels(symbols: list[str]) -> dict:
    """Each symbol's name and price decimals from the instrument table (unknown: no name, 2 decimals)."""
    from ..monitor.core import find_instrument
    from ..monitor.indicators import tick_decimals
    from ..tui.render import Label

    out = {}
    for symbol in symbols:
        instrument = find_instrument(symbol)
        if instrument is not None:
            out[symbol] = Label(instrument.name, tick_decimals(instrument.rules.tick))
    return out


def now() -> datetime:
    """China wall time, naive (the monitor's clock)."""
    return datetime.now(CHINA).replace(tzinfo=None)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..tui.render import render
    from ..tui.screen import run_screen

    _check(args)
    if not args.once and not Console().is_terminal:
        raise InputRejected(Problem("--once", None, "the output is not a terminal: add --once to print one frame"))
    watchlist = None
    if args.watchlist:
        from ..tui.watchlist import read_watchlist

        watchlist = read_watchlist(args.watchlist, required=args.ticks is not None)
    if args.ticks is not None:
        from ..tui.ticks import ReplayFeed, read_ticks

        ticks = read_ticks(args.ticks)
        feed: Any = ReplayFeed(ticks, watchlist or (), speed=0 if args.once else args.speed)
        symbols = list(feed.watchlist)
        title = f"replay {args.ticks.name}" + ("" if args.once else f" ×{args.speed:g}")
    else:
        from ..runtime import settle_runtime
        from ..tui.live import xt_feed

        settle_runtime(Path(getattr(args, "home", None) or Path.cwd()))
        feed, title = xt_feed(watchlist, args.watchlist), "XT"
        symbols = list(feed.engine.watchlist)
    names = labels(symbols)

    def draw(view: Any) -> Any:
        return render(view, names, title=title)

    if args.once:
        try:
            if args.gateway:
                time.sleep(args.refresh)  # let the first quotes arrive
            console = Console()
            if not console.is_terminal:  # a pipe or file: wide enough for the table unless COLUMNS says otherwise
                console = Console(width=int(os.environ.get("COLUMNS") or 132))
            console.print(draw(feed.poll(now())))
        finally:
            feed.close()
        return 0
    return run_screen(feed, draw, refresh=args.refresh, clock=now)
