"""``run.py backtest``: one backtest on the database's bars, written to ``--out``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..backtest.alerts import triggered
from ..backtest.outputs import write_outputs
from ..backtest.runner import RunSpec, read_spec, run_backtest
from ..backtest.snapshots import keep_snapshot
from ..ops.experiments import Tracker, start_inputs, track
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
    spec = read_spec(args.strategy, args.config, args.start, args.end, args.capital)
    inputs = start_inputs(spec.strategy_name, spec.strategy_settings, args.config, spec.start, spec.end, spec.source,
                          backtest=spec.config.model_dump(mode="json"))
    with track("backtest", inputs, out=args.out) as experiment:
        experiment.exit_code = backtest_and_report(spec, args.out, experiment, args.config)
    return experiment.exit_code


def backtest_and_report(spec: RunSpec, out: Path, experiment: Tracker | None = None,
                        config_file: Path | None = None) -> int:
    """Run ``spec``, write its files and a snapshot, print the KPI table; 1 when a check failed."""
    started = time.perf_counter()
    result = run_backtest(spec)
    if experiment is not None:
        experiment.backtest_done(result, config_file)
    paths = write_outputs(result, out)
    snapshot = keep_snapshot([p for p in paths if p.suffix in (".json", ".md") or p.name.startswith("pool_")],
                             snapshot_folder(spec.strategy_name))
    m = result.metrics
    print(f"backtest {spec.strategy_name}: {m['start']} … {m['end']}, benchmark {m.get('benchmark') or '-'}")
    print(format_kpis(m))
    for warning in m.get("data_warnings") or []:
        print(f"  WARNING: {warning}")
    alerts = triggered(m.get("alerts") or [])
    print(f"  alerts (default rules): {', '.join(alerts) if alerts else 'none'}")
    failed = [c for c in result.identities + result.lookahead if not c.ok]
    for check in failed:
        print(f"CHECK FAILED: {getattr(check, 'name', 'look-ahead')}: {check.detail}")
    print(f"wrote {len(paths)} files to {out} in {time.perf_counter() - started:.1f}s "
          f"(report: {out / 'report.html'}; snapshot: {snapshot})")
    return 1 if failed else 0
