"""``run.py panel``: each pool's factor panel (four files) and the CI fuses, one line per fuse.

Exit status 0 when every fuse of every pool holds, 1 when any fails (each failure and its reason on
stderr; the files are written anyway, for inspection), 2 for a bad input (pools file, dates, data).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..backtest.loader import BENCHMARKS, ensure_bundled, load_market, with_benchmark
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..factors.fuses import FuseBlown, FuseResult, require_fuses, run_fuses
from ..factors.library import FACTORS
from ..factors.panel import produce_panel, write_panel
from ..rotation.pools import read_pools

WARMUP_SESSIONS = max(spec.window for spec in FACTORS.values()) + 5


def _selected(config_pools: dict[str, list[str]], wanted: list[str] | None, source: str) -> list[str]:
    unknown = [p for p in wanted or [] if p not in config_pools]
    if unknown:
        raise InputRejected(Problem("--pool", None, f"unknown pools {unknown}; {source} defines "
                                    f"{', '.join(config_pools)}"))
    return list(dict.fromkeys(wanted)) if wanted else list(config_pools)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    source = str(args.pools) if args.pools else "configs/etf_pools.yaml"
    config = read_pools(args.pools)
    if args.start and args.end and args.start > args.end:
        raise InputRejected(Problem("--start/--end", None, f"start {args.start} is after end {args.end}"))
    pools = _selected(config.pools, args.pool, source)
    store = BarStore()
    home = Path(getattr(args, "home", None) or Path.cwd()).resolve()
    if ensure_bundled([s for p in pools for s in config.pools[p]] + list(BENCHMARKS), store):
        print("imported the bundled real data into the database (first run)")

    failures: list[FuseBlown] = []
    for pool in pools:
        members = config.pools[pool]
        market = load_market(members, args.start, args.end, WARMUP_SESSIONS, store)
        market, benchmark = with_benchmark(market, store)
        note = (f"vnpy database under {home}/.vntrader: daily bars × backward adjustment factors; "
                f"benchmark {benchmark or 'none'}; pools from {source}")
        panel = produce_panel(market, pool, members, start=args.start, end=args.end, source=note)
        results = run_fuses(panel, market, members)
        panel.meta["fuses"] = [dataclasses.asdict(r) for r in results]
        paths = write_panel(panel, args.out / f"panel_{pool}")
        meta = panel.meta
        print(f"{pool}: {meta['n_dates']} sessions × {meta['n_symbols']} funds, {meta['start']} … {meta['end']}, "
              f"{len(panel.factors)} factors, {len(meta['production_factors'])} in production → {paths[0].parent}")
        for result in results:
            print(_line(pool, result))
        try:
            require_fuses(results, pool)
        except FuseBlown as blown:
            failures.append(blown)
    for blown in failures:
        for problem in blown.problems:
            print(f"error: fuse failed: {problem}", file=sys.stderr)
    print(f"{len(pools)} pools in {time.perf_counter() - started:.1f}s; "
          f"{'every fuse holds' if not failures else f'{len(failures)} pool(s) with failed fuses'}")
    return 1 if failures else 0


def _line(pool: str, result: FuseResult) -> str:
    return f"  {pool:<10} {result.name:<18} {'ok' if result.ok else 'FAILED':<6} {result.detail}"
