#!/usr/bin/env python
"""Fetch daily bars from XT (vnpy_xt datafeed) into vnpy's database, like ``run.py import`` does for files.

    python scripts/fetch_xt_bars.py 510300.SSE 159915.SZSE --start 2020-01-01 [--end D] [--home DIR]
                                    [--token TOKEN | --client]

Exit codes: 0 all stored, 1 some series rejected (nothing written for them), 2 bad arguments or
setup, 3 XT unavailable on this platform (xtquant / MiniQMT is Windows-only).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vnpy_rotation.cli.main import parse_date, run_guarded  # noqa: E402
from vnpy_rotation.errors import PlatformUnsupported  # noqa: E402
from vnpy_rotation.runtime import settle_runtime  # noqa: E402

EXIT_PLATFORM = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fetch_xt_bars.py", description=__doc__.splitlines()[0])
    parser.add_argument("symbols", nargs="+", metavar="CODE.EXCHANGE", help="e.g. 510300.SSE 159915.SZSE")
    parser.add_argument("--start", type=parse_date, required=True, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=parse_date, default=None, help="last day (default: today)")
    parser.add_argument("--home", type=Path, default=None, help="runtime folder holding .vntrader (default: cwd)")
    login = parser.add_mutually_exclusive_group()
    login.add_argument("--token", help="XT data-service token (default: datafeed.password in vt_setting.json)")
    login.add_argument("--client", action="store_true", help="use a running MiniQMT client instead of a token")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _fetch(args), {PlatformUnsupported: EXIT_PLATFORM})


def _fetch(args: argparse.Namespace) -> int:
    settle_runtime(args.home or Path.cwd())  # before anything imports vnpy
    from vnpy_rotation.cli.import_cmd import print_findings, print_rejection
    from vnpy_rotation.data import xt_fetch
    from vnpy_rotation.data.store import BarStore

    instruments = xt_fetch.resolve(args.symbols)
    datafeed = xt_fetch.load_datafeed(args.token, args.client)
    reports = xt_fetch.fetch_into_database(instruments, args.start, args.end or date.today(), BarStore(), datafeed)
    for report in reports:
        if report.ok:
            print(f"ok   {report.vt_symbol} [xt, {report.basis}] {report.rows} rows {report.first} … {report.last}, "
                  f"suspended {report.suspended}, corporate actions {len(report.events)}")
            print_findings(report.jumps, report.warnings)
        else:
            print_rejection(report.vt_symbol, report.problems)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
