"""``run.py kpi snapshot`` and ``run.py kpi history``: the daily KPI page of a trade run and the KPI history.

The parsers are added without importing vnpy; the handlers import the database when they run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    """``kpi`` (snapshot, history) under ``commands``."""
    kpi = commands.add_parser("kpi", parents=[home], help="daily KPIs of a trade run: snapshot with thresholds, history")
    actions = kpi.add_subparsers(dest="action", required=True)
    snap = actions.add_parser("snapshot", parents=[home],
                              help="one page of KPIs per strategy and for the account; exit 1 when a KPI breached")
    snap.add_argument("--run", type=Path, required=True, metavar="OUT", help="a trade run's folder (run.py trade --out)")
    snap.add_argument("--date", type=parse_date, help="the session (default: the run's last closed session)")
    snap.add_argument("--config", type=Path, help="YAML with a kpi: section (thresholds, windows)")
    snap.add_argument("--replace", action="store_true",
                      help="record values that differ from those already recorded for that date")
    snap.set_defaults(handler="vnpy_rotation.cli.kpi_cmd:snapshot")
    history = actions.add_parser("history", parents=[home], help="the recorded KPIs, one row per date, scope and KPI")
    history.add_argument("--scope", help="a strategy's name or account")
    history.add_argument("--since", type=parse_date, help="from this date on")
    history.set_defaults(handler="vnpy_rotation.cli.kpi_cmd:history")


def _notifier() -> Any:
    """The runtime folder's notifier (HOME/.vntrader/rotation_notify.json; no vnpy channel without a MainEngine)."""
    from vnpy.trader.utility import TEMP_DIR

    from ..notify import Notifier, load_notify_config

    return Notifier(load_notify_config(TEMP_DIR / "rotation_notify.json"))


def snapshot(args: argparse.Namespace) -> int:
    from ..ops.kpi_config import load_kpi_thresholds
    from ..ops.kpi_daily import daily_kpis

    thresholds = load_kpi_thresholds(args.config)
    notifier = _notifier()
    try:
        done = daily_kpis(args.run, args.date, thresholds, replace=args.replace, notify=notifier.notify)
    finally:
        notifier.close()
    print(done.snapshot.markdown(), end="")
    print(f"\nwrote {done.files[0]} and {done.files[1]}; {done.recorded} history rows recorded; "
          f"{done.alerts} breach alerts to the notifier")
    return 1 if done.snapshot.breaches else 0


def history(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..ops.kpi_store import kpi_history

    frame = kpi_history(args.scope, args.since)
    if frame.empty:
        print("no KPI recorded yet")
        return 0
    frame = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(frame.to_string(index=False, na_rep="–"))
    return 0
