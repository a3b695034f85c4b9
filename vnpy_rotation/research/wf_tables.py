"""The walk-forward's results as tables and JSON documents (what the CSV files and the reports show)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ..backtest.engine import TRADE_COLUMNS
from ..backtest.metrics import _plain, compute_metrics
from .walkforward import (
    TEST_METRICS,
    Evaluation,
    WalkForwardResult,
    benchmark_series,
    most_chosen,
    stitched_equity,
)

HOLDOUT_RULE = ("the combination chosen in the most windows; a tie goes to the one chosen most recently")


def param_names(result: WalkForwardResult) -> list[str]:
    return list(result.spec.grid)


def windows_table(result: WalkForwardResult) -> pd.DataFrame:
    """One row per window: spans, the chosen parameters, the train objective and the test metrics."""
    objective = result.spec.options.objective
    rows = []
    for o in result.windows:
        w = o.window
        rows.append({"window": w.number, "train_start": w.train.start, "train_end": w.train.end,
                     "test_start": w.test.start, "test_end": w.test.end, **o.chosen, "objective": objective,
                     "train_objective": o.train_objective,
                     **{f"test_{k}": o.test.metrics.get(k) for k in TEST_METRICS}})
    return pd.DataFrame(rows)


def grid_table(result: WalkForwardResult) -> pd.DataFrame:
    """Every combination's train metrics in every window (``chosen`` marks each window's choice)."""
    frames = [o.grid.assign(window=o.window.number, train_start=o.window.train.start, train_end=o.window.train.end)
              for o in result.windows]
    frame = pd.concat(frames, ignore_index=True)
    first = ["window", "train_start", "train_end"]
    return frame[first + [c for c in frame.columns if c not in first]]


def stability_table(result: WalkForwardResult) -> pd.DataFrame:
    """Per parameter: the value each window chose, the most chosen value (ties: the most recent), the share
    of windows choosing it, the population standard deviation (numeric parameters) and the holdout's value."""
    rows = []
    for name in param_names(result):
        values = [o.chosen[name] for o in result.windows]
        mode = most_chosen([{name: v} for v in values])[name]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        rows.append({"parameter": name, **{f"window_{o.window.number}": v for o, v in zip(result.windows, values)},
                     "mode": mode, "mode_share": Counter(map(repr, values))[repr(mode)] / len(values),
                     "std": float(np.std(np.asarray(values, dtype=float))) if numeric else None,
                     "holdout": result.holdout_params[name]})
    return pd.DataFrame(rows)


def holdout_share(result: WalkForwardResult) -> float:
    """Share of windows that chose the holdout's parameters."""
    return sum(o.chosen == result.holdout_params for o in result.windows) / len(result.windows)


def evaluation_count(result: WalkForwardResult) -> int:
    """Backtests run: the grid in every window, each test window and the holdout."""
    return len(result.spec.combos) * len(result.windows) + len(result.evaluations)


def trades_table(result: WalkForwardResult) -> pd.DataFrame:
    """Every out-of-sample fill (test windows, then the holdout) with its segment and reason."""
    frames = [e.result.trades.assign(segment=e.segment) for e in result.evaluations]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TRADE_COLUMNS)
    return frame[["segment", *[c for c in frame.columns if c != "segment"]]]


def equity_table(result: WalkForwardResult) -> pd.DataFrame:
    return stitched_equity(result.evaluations)


def tests_metrics(result: WalkForwardResult) -> dict[str, Any]:
    """Metrics of the test windows chained into one out-of-sample record (no return across two windows)."""
    tests = [o.test for o in result.windows]
    chained = stitched_equity(tests).set_index("date")[["equity"]]
    trades = pd.concat([e.result.trades for e in tests], ignore_index=True)
    return compute_metrics(chained, trades=trades, benchmark=benchmark_series(result.market))


def _span(evaluation: Evaluation | None) -> dict[str, str] | None:
    if evaluation is None:
        return None
    return {"start": evaluation.span.start.isoformat(), "end": evaluation.span.end.isoformat()}


def holdout_document(result: WalkForwardResult) -> dict[str, Any]:
    holdout = result.holdout
    return _plain({"span": _span(holdout), "params": result.holdout_params, "params_rule": HOLDOUT_RULE,
                   "windows_choosing_params": holdout_share(result), "last_window_params": result.last_params,
                   "metrics": None if holdout is None else holdout.metrics,
                   "lookahead_ok": all(c.ok for c in result.lookahead)})


def summary_document(result: WalkForwardResult) -> dict[str, Any]:
    o = result.spec.options
    combos = len(result.spec.combos)
    tests = tests_metrics(result)
    return _plain({
        "strategy": result.spec.run.strategy_name,
        "span": {"start": result.span.start.isoformat(), "end": result.span.end.isoformat()},
        "windows": len(result.windows), "mode": o.mode, "train_years": o.train_years, "test_years": o.test_years,
        "holdout": _span(result.holdout), "objective": o.objective,
        "grid": {k: list(v) for k, v in result.spec.grid.items()}, "grid_source": result.spec.grid_source,
        "trials": combos, "evaluations": evaluation_count(result),
        "holdout_params": result.holdout_params, "last_window_params": result.last_params,
        "walk_forward_tests": {k: tests.get(k) for k in ("total_return", "annual_return", "sharpe", "max_drawdown")},
        "overfit": result.overfit.to_dict(), "deflated_sharpe": result.deflated.to_dict(),
        "lookahead_ok": all(c.ok for c in result.lookahead), "warnings": result.warnings,
    })


def write_json(path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
