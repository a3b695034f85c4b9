"""``run.py import PATH...``."""

from __future__ import annotations

import argparse
import sys

from ..data.importer import ImportOptions, ImportResult, import_paths
from ..data.store import BarStore

MAX_PROBLEMS_SHOWN = 20


def print_findings(jumps, warnings, out=sys.stdout) -> None:
    """The indented notes under a stored series: unexplained jumps and warnings."""
    for jump in jumps:
        print(f"     ! {jump.day}: {jump.move:+.1%} beyond the ±{jump.limit:.0%} limit, not a market move", file=out)
    for warning in warnings:
        print(f"     ! {warning}", file=out)


def print_rejection(source: str, problems) -> None:
    print(f"FAIL {source}: nothing written ({len(problems)} problem(s))", file=sys.stderr)
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  {problem}", file=sys.stderr)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)


def print_table(report, out=sys.stdout) -> None:
    """The ``ok`` line of a fundamentals / index-membership file."""
    if report.skipped:
        print(f"ok   {report.source}: unchanged since its last import", file=out)
        return
    moves = f" ({report.taken_in} in, {report.dropped} out)" if report.taken_in or report.dropped else ""
    print(f"ok   {report.source} → {report.target} [{report.label}] {report.rows} rows{moves}, "
          f"{report.codes} codes, {report.first} … {report.last}", file=out)


def print_result(result: ImportResult, out=sys.stdout) -> None:
    for report in result.reports:
        counts = (f"{report.new} new, {report.unchanged} unchanged, "
                  f"{len(report.replaced) + report.standins} replaced")
        if report.skipped:
            print(f"ok   {report.source}: unchanged since its last import ({counts})", file=out)
        else:
            print(f"ok   {report.source} → {report.vt_symbol} [{report.fmt}, {report.basis}] "
                  f"{report.rows} rows {report.first} … {report.last} ({counts}), suspended {report.suspended}, "
                  f"corporate actions {len(report.events)}", file=out)
        for bar in report.replaced:
            why = "provisional bar" if bar.why == "provisional" else "replaced"
            print(f"     ~ {bar.day}: {why} (was {bar.stored}, now {bar.file})", file=out)
        print_findings(report.jumps, report.warnings, out)
    for table in result.tables:
        print_table(table, out)
    for source, problems in result.failures:
        print_rejection(source, problems)
    bars = result.reports
    done = [*bars, *result.tables]
    gap_days = len({(r.vt_symbol, day) for r in bars for day in r.gaps})
    print(f"summary: {len(done)} file(s) imported ({sum(r.skipped for r in done)} unchanged since their last "
          f"import), {len(result.failures)} refused; rows: {sum(r.new for r in bars)} new, "
          f"{sum(r.unchanged for r in bars)} unchanged, {sum(len(r.replaced) + r.standins for r in bars)} replaced; "
          f"{gap_days} gap day(s)", file=out)


def run(args: argparse.Namespace) -> int:
    options = ImportOptions(args.fmt, args.symbol, args.adjustment, args.start, args.end,
                            args.replace)
    result = import_paths(args.paths, BarStore(), options)
    print_result(result)
    return 0 if result.ok else 1
