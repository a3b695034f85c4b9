"""``run.py backtest``: one backtest on the database's bars, written to ``--out``."""

from __future__ import annotations

import argparse
import time

from ..backtest.outputs import write_outputs
from ..backtest.runner import read_spec, run_backtest
from ..backtest.snapshots import keep_snapshot
from ..runtime import snapshot_folder

KPIS = (("total_return", "%"), ("annual_return", "%"), ("annual_volatility", "%"), ("sharpe", ""),
        ("max_drawdown", "%"), ("calmar", ""), ("monthly_win_rate", "%"), ("turnover", ""),
        ("total_cost", "CNY"), ("trade_count", ""), ("excess_return", "%"), ("information_ratio", ""))


def format_kpis(metrics: dict) -> str:
    lines = []
    for key, unit in KPIS:
        value = metrics.get(key)
        if value is None:
            text = "-"
        elif unit == "%":
            text = f"{value * 100:.2f} %"
        elif unit == "CNY":
            text = f"{value:,.2f} CNY"
        else:
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<20} {text:>16}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    spec = read_spec(args.strategy, args.config, args.start, args.end, args.capital)
    result = run_backtest(spec)
    paths = write_outputs(result, args.out)
    snapshot = keep_snapshot([p for p in paths if p.suffix in (".json", ".md") or p.name.startswith("pool_")],
                             snapshot_folder(args.strategy))
    m = result.metrics
    print(f"backtest {args.strategy}: {m['start']} … {m['end']}, benchmark {m.get('benchmark') or '-'}")
    print(format_kpis(m))
    failed = [c for c in result.identities + result.lookahead if not c.ok]
    for check in failed:
        print(f"CHECK FAILED: {getattr(check, 'name', 'look-ahead')}: {check.detail}")
    print(f"wrote {len(paths)} files to {args.out} in {time.perf_counter() - started:.1f}s "
          f"(report: {args.out / 'report.html'}; snapshot: {snapshot})")
    return 1 if failed else 0
