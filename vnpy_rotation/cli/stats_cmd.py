"""``run.py stats --run OUT``: the execution statistics of a trade run (logic in ops/execution_run.py).

Per strategy and account, for a session (default: the last one journaled) and cumulated: fill rate, time to
fill, slippage against the decision price, the open and the VWAP, refusals by reason, fees per CNY traded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from ..errors import InputRejected, Problem


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Callable[[str], Any]) -> None:
    stats = commands.add_parser("stats", parents=[home], help="execution statistics of a trade run's --out folder")
    stats.add_argument("--run", type=Path, required=True, metavar="OUT", help="a run.py trade --out folder")
    stats.add_argument("--day", type=parse_date, help="the session (default: the last one journaled)")
    stats.add_argument("--account", help="the account's name in the figures (default: the run's gateway)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of markdown tables")
    stats.set_defaults(handler="vnpy_rotation.cli.stats_cmd:run")


def run(args: argparse.Namespace) -> int:
    from ..apps.risk.state_file import DENIAL_LOG
    from ..apps.rotation.daemon import PARAMETERS_FILE
    from ..attribution.execution import render_json, render_markdown
    from ..ops.execution_run import JOURNAL, run_stats

    out: Path = args.run
    if not (out / JOURNAL).is_dir():
        raise InputRejected(Problem(str(out), None, f"no {JOURNAL}/ folder: not the --out folder of a run.py trade run"))
    account = args.account
    if not account:
        parameters = json.loads((out / "state" / PARAMETERS_FILE).read_text(encoding="utf-8")) \
            if (out / "state" / PARAMETERS_FILE).exists() else {}
        account = str((parameters.get("parameters") or {}).get("gateway") or "account")
    stats = run_stats(out, account, args.day, denial_log=out / "state" / DENIAL_LOG)
    if not stats:
        raise InputRejected(Problem(str(out / JOURNAL), None, "no closed session journaled yet"))
    print(render_json(stats) if args.json else render_markdown(stats), end="")
    return 0
