"""Walk-forward optimisation with a final holdout and an overfit check.

For each window the grid is swept on the train span (:func:`~vnpy_rotation.backtest.sweep.sweep` with a
span: decisions on the market cut at the train end), the best combination by the objective is chosen, and
that choice is backtested on the test span that follows. The holdout then runs the combination chosen
most often over the windows (a tie goes to the one chosen most recently) on the last ``holdout_years``,
which no choice saw. Every evaluation of (settings, span) decides on the market truncated at the span's
end and simulates the span's days only, starting in cash.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from ..backtest.lookahead import LookaheadCheck, check_lookahead
from ..backtest.metrics import TRADING_DAYS, compute_metrics
from ..backtest.result import BacktestResult
from ..backtest.sweep import run_span, sweep
from ..data.market_data import MarketData
from ..errors import InputRejected, Problem
from .cluster import ClusterSweeper
from .deflated import DeflatedSharpe, deflated_sharpe
from .wf_config import WalkForwardSpec
from .windows import Span, Window, make_windows

if TYPE_CHECKING:
    from ..backtest.runner import Clipped, RunSpec

HOLDOUT = "holdout"
TEST_METRICS = ("total_return", "annual_return", "sharpe", "max_drawdown", "trade_count")


@dataclass
class Evaluation:
    """One combination backtested on one span."""

    segment: str  # "window_<n>" or "holdout"
    span: Span
    params: dict[str, Any]
    result: BacktestResult
    metrics: dict[str, Any]


@dataclass
class WindowOutcome:
    window: Window
    grid: pd.DataFrame  # one row per combination: its parameters and train metrics (sweep.quick_metrics)
    chosen: dict[str, Any]
    train_objective: float
    test: Evaluation


@dataclass(frozen=True)
class OverfitCheck:
    """Overfit check: the holdout's annual return against the mean of the walk-forward tests'."""

    holdout_annual_return: float | None
    mean_test_annual_return: float | None
    threshold: float
    measure: str = ("annual_return: geometric, 252 trading days a year, of each segment's own equity; the "
                    "walk-forward figure is the arithmetic mean over the test windows")

    @property
    def gap(self) -> float | None:
        if self.holdout_annual_return is None or self.mean_test_annual_return is None:
            return None
        return self.holdout_annual_return - self.mean_test_annual_return

    @property
    def flagged(self) -> bool | None:
        """True when |gap| > threshold; None when there is no holdout or a return is unknown."""
        return None if self.gap is None else abs(self.gap) > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"holdout_annual_return": self.holdout_annual_return,
                "mean_test_annual_return": self.mean_test_annual_return, "gap": self.gap,
                "threshold": self.threshold, "flagged": self.flagged, "measure": self.measure}


@dataclass
class WalkForwardResult:
    spec: WalkForwardSpec
    market: MarketData  # what the decisions were taken on (warm-up to end)
    span: Span  # the walk-forward's start and end (holdout included)
    windows: list[WindowOutcome]
    holdout: Evaluation | None
    holdout_params: dict[str, Any]
    last_params: dict[str, Any]
    lookahead: list[LookaheadCheck]
    overfit: OverfitCheck
    deflated: DeflatedSharpe
    benchmark: str | None = None
    prepared: bool = False  # the strategy adds its own point-in-time data (prepare_market)
    warnings: list[str] = field(default_factory=list)

    @property
    def evaluations(self) -> list[Evaluation]:
        """The out-of-sample segments in time order: each test window, then the holdout."""
        return [w.test for w in self.windows] + ([self.holdout] if self.holdout else [])


def choose(scores: Sequence[float | None]) -> int:
    """Position of the best score: higher wins, NaN/None loses, a tie goes to the first."""
    values = [v if v is not None and math.isfinite(v) else -math.inf for v in scores]
    return max(range(len(values)), key=lambda k: (values[k], -k))


def most_chosen(choices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The combination chosen most often; a tie goes to the one chosen most recently."""
    keys = [json.dumps(c, sort_keys=True) for c in choices]
    counts = Counter(keys)
    best = max(counts.values())
    return next(choices[k] for k in reversed(range(len(keys))) if counts[keys[k]] == best)


def overfit_check(test_annual_returns: Sequence[float | None], holdout_annual_return: float | None,
                  threshold: float) -> OverfitCheck:
    known = [r for r in test_annual_returns if r is not None]
    mean = float(np.mean(known)) if known and len(known) == len(test_annual_returns) else None
    return OverfitCheck(holdout_annual_return, mean, threshold)


def benchmark_series(market: MarketData) -> pd.Series | None:
    """The benchmark's close attached to ``market`` (metrics align it to each run's days)."""
    return None if market.benchmark is None else pd.Series(market.benchmark, index=market.days)


def evaluate(market: MarketData, spec: WalkForwardSpec, params: dict[str, Any], span: Span,
             segment: str) -> Evaluation:
    """``params`` (over the base settings) backtested on ``span``, with the full metrics."""
    from ..strategies import create_strategy

    strategy = create_strategy(spec.run.strategy_name, {**spec.run.strategy_settings, **params}, segment)
    result = run_span(market, strategy, spec.run.config, span.as_tuple()).to_result()
    metrics = compute_metrics(result.equity, trades=result.trades, benchmark=benchmark_series(market))
    return Evaluation(segment, span, dict(params), result, metrics)


def resolve_span(market: MarketData, spec: WalkForwardSpec, warmup_days: int) -> Span:
    """``--start``/``--end``, else the first day with the warm-up behind it and the data's last day."""
    days = market.days
    start = spec.run.start or days[min(warmup_days, len(days) - 1)].date()
    return Span(start, spec.run.end or days[-1].date())


def plan_windows(market: MarketData, spec: WalkForwardSpec, span: Span) -> tuple[list[Window], Span | None]:
    """The windows and holdout, each span checked to hold at least two trading days of ``market``."""
    o = spec.options
    source = spec.run.source
    try:
        windows, holdout = make_windows(span.start, span.end, o.train_years, o.test_years, o.holdout_years, o.mode)
    except ValueError as exc:
        raise InputRejected(Problem(source, None, f"walkforward: {exc}")) from None
    if not windows:
        need = o.train_years + o.test_years + o.holdout_years
        raise InputRejected(Problem(source, None, f"walkforward: {span} is too short for one window: it needs "
                                    f"{need} years (train {o.train_years} + test {o.test_years} + holdout "
                                    f"{o.holdout_years})"))
    named = [(f"window {w.number} {part}", getattr(w, part)) for w in windows for part in ("train", "test")]
    named += [("holdout", holdout)] if holdout else []
    days = market.days
    problems = [Problem(source, None, f"walkforward: {name} {s}: fewer than 2 trading days in the data "
                        f"({days[0].date()} … {days[-1].date()})")
                for name, s in named if ((days >= pd.Timestamp(s.start)) & (days <= pd.Timestamp(s.end))).sum() < 2]
    if problems:
        raise InputRejected(problems)
    return windows, holdout


def walk_forward(market: MarketData, spec: WalkForwardSpec, executor: Executor | None = None,
                 benchmark: str | None = None, sweeper: ClusterSweeper | None = None) -> WalkForwardResult:
    """The walk-forward on ``market`` (loaded from the warm-up before the first train span to the end).

    ``executor`` runs each train grid in parallel chunks (see :func:`sweep`), or ``sweeper`` on a Dask
    cluster (``market`` scattered once, each window's span cut on the workers); ``benchmark`` names the
    benchmark attached to ``market``, for the report.
    """
    from ..strategies import create_strategy

    run = spec.run
    combos = spec.combos
    strategies = [create_strategy(run.strategy_name, {**run.strategy_settings, **c}, spec.grid_source) for c in combos]
    if len({frozenset(s.symbols) for s in strategies}) > 1:
        raise InputRejected(Problem(spec.grid_source, None, "the grid changes the strategy's symbols; "
                                    "a walk-forward needs one universe"))
    warmup = max(s.warmup_days for s in strategies)
    span = resolve_span(market, spec, warmup)
    windows, holdout_span = plan_windows(market, spec, span)
    outcomes = []
    for window in windows:
        if sweeper is not None:
            frame = sweeper.sweep(market, run.strategy_name, combos, run.config, base=run.strategy_settings,
                                  span=window.train.as_tuple())
        else:
            frame = sweep(market, run.strategy_name, combos, run.config, base=run.strategy_settings,
                          executor=executor, span=window.train.as_tuple())
        objective = frame[spec.options.objective].tolist()
        best = choose(objective)
        test = evaluate(market, spec, combos[best], window.test, f"window_{window.number}")
        outcomes.append(WindowOutcome(window, frame.assign(chosen=frame.index == best), combos[best],
                                      objective[best], test))
    choices = [o.chosen for o in outcomes]
    holdout_params = most_chosen(choices)
    holdout = evaluate(market, spec, holdout_params, holdout_span, HOLDOUT) if holdout_span else None
    final = create_strategy(run.strategy_name, {**run.strategy_settings, **holdout_params}, HOLDOUT)
    lookahead = check_lookahead(final, market.window(None, (holdout_span or windows[-1].test).end), run.config)
    overfit = overfit_check([o.test.metrics["annual_return"] for o in outcomes],
                            holdout.metrics["annual_return"] if holdout else None, spec.options.overfit_threshold)
    segments = [o.test for o in outcomes] + ([holdout] if holdout else [])
    deflated = deflated_sharpe(out_of_sample_returns(segments), len(combos), trial_sharpe_variance(outcomes))
    warnings = []
    history = int((market.days < pd.Timestamp(span.start)).sum())
    if history < warmup:
        warnings.append(f"only {history} trading days of data before the first train span ({span.start}); the "
                        f"strategy's warm-up is {warmup}: its first decisions lack history")
    return WalkForwardResult(spec, market, span, outcomes, holdout, holdout_params, choices[-1], lookahead,
                             overfit, deflated, benchmark, strategies[0].has_own_inputs, warnings)


def out_of_sample_returns(segments: Sequence[Evaluation]) -> np.ndarray:
    """Daily returns of the segments, each within its own span (no return across the gap between two)."""
    parts = [e.result.equity["equity"].to_numpy(dtype=float) for e in segments]
    return np.concatenate([p[1:] / p[:-1] - 1 for p in parts]) if parts else np.array([])


def trial_sharpe_variance(outcomes: Sequence[WindowOutcome]) -> float:
    """Variance (ddof 1) of the grid's daily train Sharpe ratios within each window, averaged over windows:
    the spread between trials, without the spread between market regimes."""
    variances = []
    for outcome in outcomes:
        daily = outcome.grid["sharpe"].to_numpy(dtype=float) / math.sqrt(TRADING_DAYS)
        daily = daily[np.isfinite(daily)]
        if len(daily) > 1:
            variances.append(float(daily.var(ddof=1)))
    return float(np.mean(variances)) if variances else 0.0


def stitched_equity(segments: Sequence[Evaluation]) -> pd.DataFrame:
    """The out-of-sample segments chained: each segment's equity scaled to start where the previous ended.

    Columns ``date, segment, equity`` (chained) and ``segment_equity`` (the segment's own run from capital).
    """
    frames, level = [], None
    for e in segments:
        own = e.result.equity["equity"].astype(float)
        chained = own if level is None else own * (level / own.iloc[0])
        level = float(chained.iloc[-1])
        frames.append(pd.DataFrame({"date": own.index, "segment": e.segment, "equity": chained.to_numpy(),
                                    "segment_equity": own.to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def run_walkforward(spec: WalkForwardSpec, store=None, executor: Executor | None = None,
                    sweeper: ClusterSweeper | None = None) -> WalkForwardResult:
    """Load the data (``market_for``: bars, benchmark, the strategy's own inputs) and walk forward."""
    from ..backtest.loader import load_benchmark
    from ..data.store import BarStore

    store = store or BarStore()
    run = spec.run
    clipped, loader = grid_market(run, spec.combos, spec.grid_source, store)
    market = clipped.market
    spec = replace(spec, run=replace(run, start=clipped.start, end=clipped.end))  # the span the data allows
    reference = load_benchmark(market.days, store, run.benchmark)
    result = walk_forward(market, spec, executor, benchmark=None if reference is None else reference[0],
                          sweeper=sweeper)
    result.warnings += clipped.warnings + list(loader.data_warnings)
    return result


def grid_market(run: RunSpec, combos: list[dict[str, Any]], grid_source: str, store: Any) -> tuple[Clipped, Any]:
    """The market every combination of a grid decides on (``market_for`` of the combination with the longest
    warm-up, cut to the stored bars) and that combination's strategy; shared by the walk-forward and
    ``run.py sweep``."""
    from ..backtest.loader import market_for
    from ..backtest.runner import clip_to_bars
    from ..strategies import create_strategy

    strategies = [create_strategy(run.strategy_name, {**run.strategy_settings, **c}, grid_source) for c in combos]
    loader = max(strategies, key=lambda s: s.warmup_days)
    return clip_to_bars(market_for(loader, run.start, run.end, store, run.benchmark), run.start, run.end), loader
