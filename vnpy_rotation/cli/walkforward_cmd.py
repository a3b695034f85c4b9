"""``run.py walkforward``: walk-forward optimisation with a final holdout, written to ``--out``."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

from ..backtest.report_md import format_value
from ..errors import InputRejected, Problem
from ..ops.experiments import start_inputs, track
from ..research.cluster import ClusterSweeper, ClusterTarget, open_client, parse_cluster
from ..research.walkforward import WalkForwardResult, run_walkforward
from ..research.wf_config import read_walkforward_spec
from ..research.wf_report import write_report

OPTIONS = ("train_years", "test_years", "holdout_years", "mode", "objective")


def summary_lines(result: WalkForwardResult) -> list[str]:
    """The console table: one line per window, the holdout, and the verdicts."""
    def line(name: str, span: str, params: dict, metrics: dict) -> str:
        chosen = ", ".join(f"{k}={v}" for k, v in params.items())
        return (f"  {name:<10} {span:<25} {chosen:<28} annual {format_value(metrics.get('annual_return'), 'pct'):>9}"
                f"  sharpe {format_value(metrics.get('sharpe'), 'num'):>6}"
                f"  max dd {format_value(metrics.get('max_drawdown'), 'pct'):>9}")

    lines = [line(f"window {o.window.number}", str(o.window.test), o.chosen, o.test.metrics) for o in result.windows]
    if result.holdout:
        lines.append(line("holdout", str(result.holdout.span), result.holdout_params, result.holdout.metrics))
    o, d = result.overfit, result.deflated
    verdict = {None: "not evaluated", True: "FLAGGED (possible overfit)", False: "passed"}[o.flagged]
    lines.append(f"  overfit check: {verdict} (holdout − mean test annual return = {format_value(o.gap, 'pct')}, "
                 f"threshold ±{o.threshold * 100:g} pp)")
    lines.append(f"  deflated Sharpe ratio: {format_value(d.dsr, 'num')} over {d.n_trials} trials "
                 f"(PSR(0) {format_value(d.psr, 'num')})")
    return lines


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.workers < 1:
        raise InputRejected(Problem("--workers", None, f"{args.workers}: must be at least 1"))
    target = parse_cluster(args.cluster) if args.cluster else None
    if target is not None and args.workers > 1:
        raise InputRejected(Problem("--workers", None, "give --workers (local processes) or --cluster, not both"))
    spec = read_walkforward_spec(args.strategy, args.config, args.start, args.end, args.capital,
                                 {name: getattr(args, name) for name in OPTIONS}, args.grid)
    inputs = start_inputs(spec.run.strategy_name, spec.run.strategy_settings, args.config, spec.run.start,
                          spec.run.end, spec.run.source, backtest=spec.run.config.model_dump(mode="json"),
                          grid={k: list(v) for k, v in spec.grid.items()})
    with track("walkforward", inputs, out=args.out) as experiment:
        experiment.exit_code = _run(spec, args, target, started, experiment)
    return experiment.exit_code


def _run(spec, args: argparse.Namespace, target: ClusterTarget | None, started: float, experiment) -> int:
    if target is not None:
        with open_client(target) as client:
            result = run_walkforward(spec, sweeper=ClusterSweeper(client))
    else:
        pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else nullcontext()
        with pool as executor:
            result = run_walkforward(spec, executor=executor)
    paths = write_report(result, args.out)
    experiment.walkforward_done(result, args.config, args.out)
    print(f"walkforward {spec.run.strategy_name}: {result.span}, {len(result.windows)} windows, "
          f"{len(spec.combos)} combinations ({spec.grid_source}), objective {spec.options.objective}")
    print("\n".join(summary_lines(result)))
    for warning in result.warnings:
        print(f"warning: {warning}")
    failed = [c for c in result.lookahead if not c.ok]
    for check in failed:
        print(f"CHECK FAILED: look-ahead: {check.detail}")
    print(f"wrote {len(paths)} files to {args.out} in {time.perf_counter() - started:.1f}s "
          f"(report: {args.out / 'report.md'}, {args.out / 'report.html'})")
    return 1 if failed else 0
