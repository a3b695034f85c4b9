"""``run.py weekly-audit --run OUT [--week W] --out DIR``: the week's five operating deliverables, the quarterly
targets and one index page (:mod:`vnpy_rotation.ops.weekly_audit`). Exit 0 when every measurable target
passes, 1 when one fails."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Callable[[str], date]) -> None:
    audit = commands.add_parser("weekly-audit", parents=[home],
                                help="the weekly operating audit of a replay/live run: KPI snapshot, VaR/ES "
                                     "exceptions, attribution, change and rollback log, ADR skeleton, targets")
    audit.add_argument("--run", type=Path, required=True, metavar="OUT",
                       help="the --out folder of `run.py trade` (replay or live)")
    audit.add_argument("--week", help="ISO week (2024-W37) or a date in it (default: the last complete week "
                                      "of the run)")
    audit.add_argument("--out", type=Path, required=True, help="output folder (created)")
    audit.set_defaults(handler="vnpy_rotation.cli.weekly_audit_cmd:run")


def run(args: argparse.Namespace) -> int:
    from ..ops.weekly_audit import parse_week, run_audit

    started = time.perf_counter()
    result = run_audit(args.run, args.out, parse_week(args.week) if args.week else None)
    print(f"weekly audit {result.week.label} ({result.week.start} … {result.week.end}) of {args.run}")
    for target in result.targets:
        print(f"  {target.name:<28} {target.shown():>8}  {target.goal:<8} {target.status}")
    print(f"wrote {args.out / 'index.md'} (and index.html) in {time.perf_counter() - started:.1f}s: "
          f"{'every measurable target passes' if result.passed else 'a target fails'}")
    return 0 if result.passed else 1
