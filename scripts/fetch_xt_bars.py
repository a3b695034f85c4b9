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

from vnpy_rotation.errors import InputRejected, PlatformUnsupported, RotationError  # noqa: E402
from vnpy_rotation.runtime import settle_runtime  # noqa: E402

EXIT_PLATFORM = 3


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fetch_xt_bars.py", description=__doc__.splitlines()[0])
    parser.add_argument("symbols", nargs="+", metavar="CODE.EXCHANGE", help="e.g. 510300.SSE 159915.SZSE")
    parser.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=_date, default=None, help="last day (default: today)")
    parser.add_argument("--home", type=Path, default=None, help="runtime folder holding .vntrader (default: cwd)")
    login = parser.add_mutually_exclusive_group()
    login.add_argument("--token", help="XT data-service token (default: datafeed.password in vt_setting.json)")
    login.add_argument("--client", action="store_true", help="use a running MiniQMT client instead of a token")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settle_runtime(args.home or Path.cwd())  # before anything imports vnpy
        from vnpy_rotation.data import xt_fetch

        instruments = xt_fetch.resolve(args.symbols)
        datafeed = xt_fetch.load_datafeed(args.token, args.client)
        from vnpy_rotation.data.store import BarStore

        reports = xt_fetch.fetch_into_database(instruments, args.start, args.end or date.today(), BarStore(), datafeed)
    except PlatformUnsupported as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PLATFORM
    except InputRejected as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except RotationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    for report in reports:
        if report.ok:
            print(f"ok   {report.vt_symbol} [xt, {report.basis}] {report.rows} rows {report.first} … {report.last}, "
                  f"suspended {report.suspended}, corporate actions {len(report.events)}")
            for jump in report.jumps:
                print(f"     ! {jump.day}: {jump.move:+.1%} beyond the ±{jump.limit:.0%} limit, not a market move")
            for warning in report.warnings:
                print(f"     ! {warning}")
        else:
            print(f"FAIL {report.vt_symbol}: nothing written ({len(report.problems)} problem(s))", file=sys.stderr)
            for problem in report.problems[:20]:
                print(f"  {problem}", file=sys.stderr)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
