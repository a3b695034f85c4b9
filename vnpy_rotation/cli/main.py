"""``run.py``: argument parsing, runtime-folder settling and user-facing error handling.

vnpy is imported only after ``--home`` has been settled, so every subcommand's vnpy-dependent code
is imported lazily inside its handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from ..errors import InputRejected, RotationError
from ..runtime import settle_runtime


def parse_date(text: str) -> date:
    """argparse type for YYYY-MM-DD dates."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", type=Path, default=argparse.SUPPRESS,
                      help="runtime folder holding .vntrader (settings and the SQLite database); default: current directory")
    parser = argparse.ArgumentParser(prog="run.py", parents=[home],
                                     description="vnpy_rotation: A-share ETF rotation and VQM on VeighNa")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", parents=[home], help="import the bundled real data and summarise it")
    demo.set_defaults(handler="vnpy_rotation.cli.demo:run")

    imp = commands.add_parser("import", parents=[home], help="validate and import bar files into the database")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)")
    imp.add_argument("--format", dest="fmt", default="auto", choices=["auto", "akshare", "tdx", "baostock", "csv"])
    imp.add_argument("--symbol", help="CODE.EXCHANGE for every file, e.g. 510300.SSE (default: from name or content)")
    imp.add_argument("--adjust", dest="adjustment", choices=["none", "qfq"],
                     help="price basis of the files (default: qfq when the path says qfq / Baostock adjustflag 2)")
    imp.add_argument("--start", type=parse_date, help="ignore rows before this date")
    imp.add_argument("--end", type=parse_date, help="ignore rows after this date")
    imp.add_argument("--replace", action="store_true", help="overwrite stored bars that differ (each day is reported)")
    imp.set_defaults(handler="vnpy_rotation.cli.import_cmd:run")

    bt = commands.add_parser("backtest", parents=[home], help="run one backtest and write its reports")
    bt.add_argument("--strategy", required=True, help="built-in strategy name, e.g. equal_weight")
    bt.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest:, benchmark:")
    bt.add_argument("--start", type=parse_date, help="first trading day of the simulation")
    bt.add_argument("--end", type=parse_date, help="last trading day of the simulation")
    bt.add_argument("--capital", type=float, help="initial capital in CNY (overrides the config)")
    bt.add_argument("--out", type=Path, required=True, help="output folder (created)")
    bt.set_defaults(handler="vnpy_rotation.cli.backtest_cmd:run")

    wf = commands.add_parser("walkforward", parents=[home],
                             help="walk-forward optimisation with a final holdout, overfit and deflated-Sharpe checks")
    wf.add_argument("--strategy", required=True, help="built-in strategy name, e.g. momentum_topn")
    wf.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest:, benchmark:, walkforward:")
    wf.add_argument("--start", type=parse_date,
                    help="first day of the first train span (default: walkforward.start, else data start + warm-up)")
    wf.add_argument("--end", type=parse_date,
                    help="last day of the holdout (default: walkforward.end, else the data's last day)")
    wf.add_argument("--train-years", type=int, help="train span length in years (default 3)")
    wf.add_argument("--test-years", type=int, help="test span length and step in years (default 1)")
    wf.add_argument("--holdout-years", type=int, help="final holdout no choice sees, in years (default 1; 0: none)")
    wf.add_argument("--mode", choices=["rolling", "expanding"], help="train span: rolling (default) or from start")
    wf.add_argument("--objective", choices=["sharpe", "annual_return", "calmar", "total_return"],
                    help="what the train grid maximises (default sharpe)")
    wf.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                    help="values to search (repeatable; replaces the YAML grid and the strategy's search_space)")
    wf.add_argument("--workers", type=int, default=1, help="processes running each train grid (default 1: serial)")
    wf.add_argument("--capital", type=float, help="initial capital in CNY (overrides the config)")
    wf.add_argument("--out", type=Path, required=True, help="output folder (created)")
    wf.set_defaults(handler="vnpy_rotation.cli.walkforward_cmd:run")

    panel = commands.add_parser("panel", parents=[home], help="produce each pool's factor panel and run the CI fuses")
    panel.add_argument("--pools", type=Path, help="pools file (default configs/etf_pools.yaml)")
    panel.add_argument("--pool", action="extend", nargs="+", metavar="NAME", help="only these pools (default all)")
    panel.add_argument("--start", type=parse_date, help="first date of the panel (earlier bars are warm-up)")
    panel.add_argument("--end", type=parse_date, help="last date of the panel")
    panel.add_argument("--out", type=Path, required=True, help="output folder: one panel_<POOL>/ per pool")
    panel.set_defaults(handler="vnpy_rotation.cli.panel_cmd:run")

    trade = commands.add_parser("trade", parents=[home],
                                help="the trading daemon: replay history in paper mode, or trade live through XT")
    trade.add_argument("--gateway", choices=["replay", "xt"], required=True,
                       help="replay: the database's bars day by day (paper); xt: vnpy_xt's XtGateway (MiniQMT)")
    trade.add_argument("--strategy", required=True, help="built-in strategy name, e.g. etf_rotation")
    trade.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest: (costs and rules), live:")
    trade.add_argument("--start", type=parse_date, help="replay: first session; live: first day of data to decide on")
    trade.add_argument("--end", type=parse_date, help="replay: last session")
    trade.add_argument("--capital", type=float, help="replay: initial capital in CNY (overrides the config)")
    trade.add_argument("--once", action="store_true", help="live: run the rest of one session (or its close) and exit")
    trade.add_argument("--out", type=Path, required=True,
                       help="output folder: trades.csv, orders.csv, daily_summary.csv, journal/, state/")
    trade.set_defaults(handler="vnpy_rotation.cli.trade_cmd:run")

    gui = commands.add_parser("gui", parents=[home], help="VeighNa Trader with the rotation app, CTA apps and RiskManager")
    gui.set_defaults(handler="vnpy_rotation.cli.gui_cmd:run")
    return parser


def run_guarded(action: Callable[[], int], exit_codes: dict[type[RotationError], int] | None = None) -> int:
    """Run ``action``; a user mistake becomes ``error: ...`` lines and an exit code, never a traceback.

    ``exit_codes`` maps more specific :class:`RotationError` subclasses to their own exit codes.
    """
    try:
        return action()
    except RotationError as exc:
        code = next((c for kind, c in (exit_codes or {}).items() if isinstance(exc, kind)), 2)
        for line in (exc.problems if isinstance(exc, InputRejected) else [exc]):
            print(f"error: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = getattr(args, "home", None) or Path.cwd()

    def dispatch() -> int:
        settle_runtime(home)
        module_name, func_name = args.handler.split(":")
        module = __import__(module_name, fromlist=[func_name])
        return int(getattr(module, func_name)(args) or 0)

    return run_guarded(dispatch)
