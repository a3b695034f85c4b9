"""``run.py attribution``: the P&L attribution of a backtest, replay or live run folder, written to ``--out``.

The parser is added without importing vnpy (``run.py`` builds its parser before ``--home`` is settled).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    attribution = commands.add_parser(
        "attribution", parents=[home],
        help="P&L attribution of a backtest, replay or live run: shortfall, fees, Brinson-Fachler, markouts")
    attribution.add_argument("--run", type=Path, required=True, metavar="DIR",
                             help="the --out folder of `run.py backtest` or of `run.py trade` (replay or live)")
    attribution.add_argument("--out", type=Path, required=True, help="output folder (created)")
    attribution.add_argument("--start", type=parse_date, help="first day attributed (default: the run's first)")
    attribution.add_argument("--end", type=parse_date, help="last day attributed (default: the run's last)")
    attribution.add_argument("--by", choices=["day", "symbol", "segment"], default="segment",
                             help="the table printed and written as attribution_by_<BY>.csv (default segment)")
    attribution.add_argument("--industry", type=Path, metavar="FILE",
                             help="Baostock query_stock_industry CSV: stock segments by industry (replay/live runs)")
    attribution.set_defaults(handler="vnpy_rotation.cli.attribution_cmd:run")


def run(args: argparse.Namespace) -> int:
    from ..attribution.industry import read_industries
    from ..errors import InputRejected, Problem
    from ..ops.attribution_run import attribute_folder

    run_dir, out_dir = args.run.resolve(), args.out.resolve()
    if out_dir == run_dir or run_dir in out_dir.parents:  # would overwrite the run's own attribution tables
        raise InputRejected(Problem("--out", None, f"{args.out} is the run folder {args.run} or inside it: "
                                    "give another folder"))
    industries = read_industries(args.industry) if args.industry else None
    report = attribute_folder(args.run, args.start, args.end, industries)
    written = report.write(args.out)
    table = report.table(args.by)
    by_path = args.out / f"attribution_by_{args.by}.csv"
    table.to_csv(by_path, index=False)
    print(report.markdown())
    print(f"## by {args.by}\n")
    shown = table.round(6 if args.by == "segment" else 2).round({c: 2 for c in table.columns if c.endswith("_cny")})
    numeric = shown.select_dtypes("number").columns
    shown[numeric] = shown[numeric] + 0.0  # no "-0.0"
    print(shown.to_string(index=False, max_rows=40))
    print(f"\nwrote {len(written) + 1} files to {args.out}")
    return 0
