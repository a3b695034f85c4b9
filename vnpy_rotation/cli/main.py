"""``run.py``: argument parsing, runtime-folder settling and user-facing error handling.

vnpy is imported only after ``--home`` has been settled, so every subcommand's vnpy-dependent code
is imported lazily inside its handler.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from ..errors import InputRejected, Problem, RotationError
from ..runtime import runtime_folder, settle_runtime
from . import (
    attribution_cmd,
    backup_cmd,
    canary_cmd,
    dashboard_cmd,
    experiments_cmd,
    kpi_cmd,
    monitor_cmd,
    regress_cmd,
    replay_week_cmd,
    risk_cmd,
    stats_cmd,
    sweep_cmd,
    version_cmd,
    weekly_audit_cmd,
)


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

    inst = commands.add_parser("instruments", parents=[home],
                               help="show how a code is classified and traded; add or re-classify one")
    inst_actions = inst.add_subparsers(dest="action", required=True)
    inst_show = inst_actions.add_parser("show", parents=[home], help="kind, rules, source and verification of a code")
    inst_show.add_argument("symbol", metavar="CODE[.EXCHANGE]", help="e.g. 159901 or 159901.SZSE")
    inst_show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    inst_add = inst_actions.add_parser("add", parents=[home],
                                       help="add or re-classify a code in HOME/.vntrader/instruments.yaml")
    inst_add.add_argument("symbol", metavar="CODE.EXCHANGE", help="e.g. 159901.SZSE")
    inst_add.add_argument("--kind", required=True, help="e.g. equity_etf, chinext_etf, cross_border_etf, lof "
                                                        "(a wrong value lists them all)")
    inst_add.add_argument("--name", default="", help="the fund's or stock's short name")
    inst_add.add_argument("--rules", help="a rule set of instruments.yaml (default: the kind's)")
    inst.set_defaults(handler="vnpy_rotation.cli.instruments_cmd:run")

    imp = commands.add_parser("import", parents=[home], help="validate and import bar files into the database")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)")
    imp.add_argument("--format", dest="fmt", default="auto", choices=["auto", "akshare", "tdx", "baostock", "tushare", "choice", "wind", "csv"])
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
    bt.set_defaults(handler="vnpy_rotation.cli.backtest_cmd:run", arrow_text=False)

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
    sweep_cmd.add_cluster_option(wf)  # --cluster tcp://HOST:PORT|local:N
    wf.set_defaults(handler="vnpy_rotation.cli.walkforward_cmd:run")
    sweep_cmd.add_parsers(commands, home, parse_date)  # sweep --strategy NAME [--grid ...] [--cluster ...] --out DIR

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
    trade.add_argument("--strategy", help="built-in strategy name, e.g. etf_rotation (required unless --config has "
                       "top-level accounts: and strategies:, which name the strategies: then it is ignored)")
    trade.add_argument("--config", type=Path, help="YAML with sections strategy:, backtest: (costs and rules), live:; "
                       "or accounts: and strategies: (several strategies across several accounts)")
    trade.add_argument("--start", type=parse_date, help="replay: first session; live: first day of data to decide on")
    trade.add_argument("--end", type=parse_date, help="replay: last session")
    trade.add_argument("--capital", type=float, help="replay: initial capital in CNY (overrides the config)")
    trade.add_argument("--once", action="store_true", help="live: run the rest of one session (or its close) and exit")
    trade.add_argument("--fresh", action="store_true",
                       help="start over in --out (its earlier run's state and files are removed); without it, a rerun "
                            "with the same parameters resumes and one with other parameters is refused")
    trade.add_argument("--out", type=Path, required=True,
                       help="output folder: trades.csv, orders.csv, daily_summary.csv, journal/, state/")
    dashboard_cmd.add_trade_option(trade)  # --dashboard [HOST:]PORT, --token
    trade.set_defaults(handler="vnpy_rotation.cli.trade_cmd:run")

    risk = commands.add_parser("risk", parents=[home], help="the risk engine: ladders and fail-safe flags in a home (status, reset, clear) and the risk report of a history")
    risk_actions = risk.add_subparsers(dest="action", required=True)
    risk_cmd.add_parsers(risk_actions, home)  # status, reset, clear, report

    version_cmd.add_parsers(commands, home, parse_date)  # version create|list|show|diff|alias|history, release check
    canary_cmd.add_parsers(commands, home, parse_date)  # canary drill|status|approve|reject, rollback
    dashboard_cmd.add_parsers(commands, home)  # dashboard --run OUT
    experiments_cmd.add_parsers(commands, home, parse_date)  # experiments list|show|compare
    attribution_cmd.add_parsers(commands, home, parse_date)  # attribution --run DIR --out OUT
    weekly_audit_cmd.add_parsers(commands, home, parse_date)  # weekly-audit
    regress_cmd.add_parsers(commands, home, parse_date)  # regress: the daily regression gate
    replay_week_cmd.add_parsers(commands, home, parse_date)  # replay-week: the week's live sessions replayed
    kpi_cmd.add_parsers(commands, home, parse_date)  # kpi snapshot|history
    backup_cmd.add_parsers(commands, home)  # backup --out FILE, restore FILE
    monitor_cmd.add_parsers(commands, home)  # monitor [--ticks FILE|--gateway xt] [--once]
    stats_cmd.add_parsers(commands, home, parse_date)  # stats --run OUT: execution statistics of a trade run

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


def check_arguments(args: argparse.Namespace, home: Path) -> None:
    """What can be refused before the runtime folder is settled: folders that are files, inverted dates and
    dates the trading calendar does not reach (so a mistake leaves a fresh home untouched)."""
    from ..market.calendar import default_calendar  # pure: no vnpy

    for flag, path in (("--home", home), ("--home", runtime_folder(home)), ("--out", getattr(args, "out", None))):
        if path is not None and path.exists() and not path.is_dir():
            raise InputRejected(Problem(flag, None, f"{path} is a file; give a folder (created when missing)"))
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if args.command == "import":
        return  # import's --start/--end filter file rows; they need not be trading days
    if start and end and start > end:
        raise InputRejected(Problem("--start/--end", None, f"start {start} is after end {end}"))
    calendar = default_calendar()
    for flag, day in (("--start", start), ("--end", end)):
        if day and not (day <= calendar.last if flag == "--start" else day >= calendar.first):
            raise InputRejected(Problem(flag, None, f"{day} is outside the trading calendar, which covers "
                                        f"{calendar.first} … {calendar.last}"))


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; one that cannot be looked at (an unreadable parent) counts as existing, so this
    run never takes it for its own and removes it."""
    try:
        return path.exists()
    except OSError:
        return True


def _remove_created(paths: list[Path]) -> None:
    """Remove the folders this run created (each absent before it started); nothing that existed before."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file():
            path.unlink()


# Arrow's default allocator (mimalloc in the pyarrow wheels) keeps the pages pandas' string columns freed: a
# ``run.py backtest`` with Arrow text peaked 23–25 MB higher with it (12 ETFs: 182 → 159 MB; 265 stocks: 367 →
# 342 MB; that command now runs without pyarrow, the others keep Arrow text). Arrow reads this variable once,
# when pandas first imports it, so it is set before any command imports pandas; a value the user set is kept.
# Processes this one starts (Dask workers, the daemon) inherit it.
ARROW_POOL_VARIABLE, ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL", "system"


def import_pandas_without_arrow() -> None:
    """Import pandas with pyarrow out of its sight, so its text columns are Python strings, when neither is
    imported yet (otherwise nothing changes: one process keeps one kind of text).

    pandas imports pyarrow at its own import whenever pyarrow is installed (~40 MB and ~0.1 s of CPU with
    ``pyarrow.compute``) and keeps text in Arrow arrays. A ``run.py backtest`` needs neither: its tables are
    numeric, and its files are the same bytes with either kind of text (the attribution CSVs are written
    without pyarrow, in Arrow's format). pyarrow stays importable afterwards for code that asks for it; pandas
    keeps Python strings for the rest of the process.
    """
    if "pandas" in sys.modules or "pyarrow" in sys.modules:
        return
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        import pandas  # noqa: F401
    finally:
        del sys.modules["pyarrow"]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault(ARROW_POOL_VARIABLE, ARROW_POOL)
    args = build_parser().parse_args(argv)
    if not getattr(args, "arrow_text", True):
        import_pandas_without_arrow()
    home = Path(getattr(args, "home", None) or Path.cwd()).absolute()
    for name, value in vars(args).items():  # vnpy's MainEngine changes directory: relative paths would move
        if isinstance(value, Path):
            setattr(args, name, value.absolute())
    # Outermost first: removing a created home removes everything under it.
    created = [p for p in (home, runtime_folder(home), getattr(args, "out", None)) if p is not None and not _exists(p)]
    created_inside: Callable[[], list[Path]] = list
    try:
        if runtime_folder(home).is_dir():  # an existing runtime folder: what this run adds to it (database.db, log/)
            before = set(runtime_folder(home).iterdir())
            created_inside = lambda: [p for p in runtime_folder(home).iterdir() if p not in before]  # noqa: E731
    except OSError:
        pass  # an unreadable home: the command says so below; nothing in it counts as created

    def dispatch() -> int:
        try:
            try:
                check_arguments(args, home)
            except OSError as exc:  # e.g. a --home that cannot be read
                raise InputRejected(Problem(str(exc.filename or home), None, exc.strerror or str(exc))) from None
            if getattr(args, "settle", True):  # backup/restore read or fill a home without settling vnpy in it
                settle_runtime(home)
            module_name, func_name = args.handler.split(":")
            module = __import__(module_name, fromlist=[func_name])
            return int(getattr(module, func_name)(args) or 0)
        except RotationError:
            if getattr(args, "clean_up", True):  # a refused command leaves the folders as it found them
                _remove_created(created + created_inside())
            raise

    return run_guarded(dispatch)
