"""``run.py dashboard --run OUT``: the read-only web dashboard of a trade run, in the foreground; and the
``--dashboard [HOST:]PORT`` option of ``run.py trade``, which serves it on a thread of the trading daemon.

This module adds its parsers without importing vnpy or the web stack (``run.py`` builds its parser first).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_BIND = "127.0.0.1:8765"


def add_parsers(commands: Any, home: argparse.ArgumentParser) -> None:
    dash = commands.add_parser("dashboard", parents=[home],
                               help="a read-only web page of a trade run: KPIs, risk state, canary, plan, fills, alerts")
    dash.add_argument("--run", type=Path, required=True, help="the trade run's folder (run.py trade --out OUT)")
    dash.add_argument("--bind", default=DEFAULT_BIND, metavar="[HOST:]PORT",
                      help=f"where to listen (default {DEFAULT_BIND}); any non-loopback address needs --token")
    add_token(dash)
    dash.add_argument("--refresh", type=int, default=30, help="seconds between the page's refreshes (default 30)")
    dash.set_defaults(handler="vnpy_rotation.cli.dashboard_cmd:run")


def add_token(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="every request must carry it (Authorization: Bearer T, or ?token=T once); "
                                        "default: $ROTATION_DASHBOARD_TOKEN")


def add_trade_option(trade: argparse.ArgumentParser) -> None:
    """``run.py trade --dashboard [HOST:]PORT [--token T]``."""
    trade.add_argument("--dashboard", metavar="[HOST:]PORT",
                       help="serve the read-only dashboard of --out while the daemon runs (loopback unless --token)")
    add_token(trade)


def _token(args: argparse.Namespace) -> str | None:
    from ..web.server import TOKEN_ENV

    return args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None


def run(args: argparse.Namespace) -> int:
    from ..errors import InputRejected, Problem
    from ..web.data import PARAMETERS_FILE, RunFolder
    from ..web.server import DashboardServer, parse_bind

    if not args.run.is_dir():
        raise InputRejected(Problem("--run", None, f"{args.run} is not a folder (give a trade run's --out folder)"))
    if not (args.run / "state" / PARAMETERS_FILE).is_file():  # the daemon writes it first: e.g. not a backtest's
        raise InputRejected(Problem("--run", None, f"{args.run} is not a trade run's folder (no state/{PARAMETERS_FILE}; "
                                                   "give the --out folder of run.py trade)"))
    if args.refresh < 1:
        raise InputRejected(Problem("--refresh", None, f"{args.refresh} is not a positive number of seconds"))
    server = DashboardServer(RunFolder(args.run), parse_bind(args.bind), _token(args), args.refresh)
    print(f"dashboard of {args.run} on {server.url} (read-only; Ctrl-C stops it)", flush=True)
    server.serve()
    return 0


@contextmanager
def beside_daemon(args: argparse.Namespace, claim: Callable[[], str]) -> Iterator[None]:
    """Claim the run folder (``claim``: it writes the run's parameters; its message is printed), then serve the
    folder's dashboard on a background thread for as long as the block runs (the trading daemon), when
    ``--dashboard`` was given. The address is checked and bound before the folder is claimed (a bad one leaves no
    state); pages are served only after (a request never finds the folder without its run's parameters: one made
    in between waits in the socket's queue)."""
    if not getattr(args, "dashboard", None):
        print(claim())
        yield
        return
    from ..web.data import RunFolder
    from ..web.server import DashboardServer, parse_bind

    server = DashboardServer(RunFolder(args.out), parse_bind(args.dashboard, "--dashboard"), _token(args),
                             flag="--dashboard")
    try:
        print(claim())
        server.start()
        print(f"dashboard of {args.out} on {server.url} (read-only)", flush=True)
        yield
    finally:
        server.stop()
