"""``run.py risk status``, ``risk reset`` and ``risk clear``: the risk app's persisted state in a home, read,
reset (a rung back to ACTIVE) and cleared (a raised fail-safe flag).

The state is ``HOME/.vntrader/rotation_risk/risk_state.json`` (a live home), or ``--state DIR/risk_state.json``
(e.g. a trade run's ``OUT/state``). A reset needs a reason and is written atomically as an audit row and a
history row. Stop the trading daemon first: a running RiskEngine keeps its own copy and saves it at the
next change, which would drop a reset written meanwhile.

This module adds its parsers without importing vnpy (``run.py`` builds its parser before ``--home`` is settled).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any


def add_parsers(actions: Any, home: argparse.ArgumentParser) -> None:
    """``status``, ``reset`` and ``clear`` under the ``risk`` command's subparsers ``actions``."""
    state_help = "folder holding risk_state.json (default: HOME/.vntrader/rotation_risk; a trade run: OUT/state)"
    status = actions.add_parser("status", parents=[home], help="each scope's rung, since, reason and flags")
    status.add_argument("--state", type=Path, help=state_help)
    status.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    status.set_defaults(handler="vnpy_rotation.cli.risk_cmd:status")
    reset = actions.add_parser("reset", parents=[home], help="return a ladder to ACTIVE (needs a reason; audited)")
    reset.add_argument("--strategy", required=True, metavar="NAME|account", help="a strategy's name, or account")
    reset.add_argument("--reason", required=True, help="why (kept in the audit rows)")
    reset.add_argument("--state", type=Path, help=state_help)
    reset.set_defaults(handler="vnpy_rotation.cli.risk_cmd:reset")
    clear = actions.add_parser("clear", parents=[home], help="clear a raised fail-safe flag (needs a reason; audited)")
    clear.add_argument("--flag", required=True, help="release_freeze, downgrade_request or forced_retrain")
    clear.add_argument("--strategy", required=True, metavar="NAME|account", help="the scope the flag is raised on")
    clear.add_argument("--reason", required=True, help="why (kept in the audit rows)")
    clear.add_argument("--state", type=Path, help=state_help)
    clear.set_defaults(handler="vnpy_rotation.cli.risk_cmd:clear")
    from .risk_report_cmd import add_report_parser  # report: VaR/ES, exception tests, drift, ladder, stops

    add_report_parser(actions, [home])


def _book(args: argparse.Namespace) -> Any:
    """The persisted risk state; a clear error when there is none."""
    from vnpy.trader.utility import TEMP_DIR  # settled by run.py --home

    from ..apps.risk.engine import STATE_FOLDER
    from ..apps.risk.state_file import STATE_FILENAME, RiskStateFile
    from ..errors import InputRejected, Problem

    folder = args.state or Path(TEMP_DIR) / STATE_FOLDER
    if not (folder / STATE_FILENAME).is_file():
        raise InputRejected(Problem(str(folder / STATE_FILENAME), None,
                                    "no risk state here: the risk app has not run in this home (or give --state)"))
    return RiskStateFile(folder)


def status(args: argparse.Namespace) -> int:
    book = _book(args)
    rows = book.rows()
    if args.json:
        print(json.dumps({"path": str(book.path), "last_close": book.last_day, "rows": rows, "audit": book.audit,
                          "flags": book.flags}, ensure_ascii=False, default=str))
        return 0
    print(f"{book.path}  (last close evaluated: {book.last_day or '-'})")
    table = [("scope", "rung", "since", "drawdown", "VaR zone", "reason", "flags")]
    for r in rows:
        drawdown = "-" if r["drawdown"] is None else f"{r['drawdown']:+.2%}"
        table.append((r["scope"], r["rung"], r["since"] or "-", drawdown, r["zone"] or "-", "; ".join(r["reasons"]) or "-",
                      ", ".join(r["flags"]) or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def reset(args: argparse.Namespace) -> int:
    book = _book(args)
    change = book.reset(args.strategy, args.reason, datetime.now(), who="cli")
    book.save()
    print(f"{change.scope}: {change.before} -> {change.after} ({change.reason}); audit row written to {book.path}")
    return 0


def clear(args: argparse.Namespace) -> int:
    book = _book(args)
    book.clear_flag(args.flag, args.strategy, args.reason, datetime.now(), who="cli")
    book.save()
    print(f"{args.strategy}: {args.flag} cleared ({args.reason.strip()}); audit row written to {book.path}")
    return 0
