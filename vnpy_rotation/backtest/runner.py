"""One complete backtest: load, decide, simulate, measure and check — what ``run.py backtest`` runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import read_yaml, validate_section
from ..data.market_data import MarketData
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..protocol import TargetStrategy
from .alerts import evaluate_alerts, triggered
from .config import BacktestConfig
from .drift_response import skipped as drift_skipped
from .engine import TargetPlan, simulate
from .identities import IdentityCheck, check_identities
from .limits import skipped
from .loader import BENCHMARKS, load_benchmark, market_for
from .lookahead import LookaheadCheck, check_lookahead
from .metrics import compute_metrics
from .result import BacktestResult
from .sweep import plan_within


@dataclass(frozen=True)
class RunSpec:
    """Everything a backtest run is configured with, validated."""

    strategy_name: str
    strategy_settings: dict[str, Any]
    config: BacktestConfig
    benchmark: tuple[str, ...] = BENCHMARKS
    start: date | None = None
    end: date | None = None
    source: str = "command line"  # where the settings came from, for error messages


@dataclass
class BacktestRun:
    strategy: TargetStrategy
    spec: RunSpec
    market: MarketData
    plan: TargetPlan
    result: BacktestResult
    metrics: dict[str, Any]
    benchmark: tuple[str, pd.Series] | None
    identities: list[IdentityCheck]
    lookahead: list[LookaheadCheck]
    pool_metrics: pd.DataFrame | None = None  # one row per pool sleeve plus the portfolio (pooled strategies)
    read: MarketData | None = None  # everything the run read: ``market`` plus the warm-up before it


def read_sections(config_file: Path | None, capital: float | None, extra: tuple[str, ...] = ()
                  ) -> tuple[dict, str, BacktestConfig, tuple[str, ...]]:
    """A run's YAML: (raw sections, source name, validated ``backtest:``, ``benchmark:`` candidates).

    Sections other than strategy, backtest, benchmark, release, kpi and ``extra`` are rejected, naming the file.
    ``release:`` holds the thresholds of ``run.py release check`` (validated by ``version create``), so a
    version's config file runs unchanged everywhere else; so does ``kpi:`` (the daily KPI thresholds, validated by
    ``run.py trade`` and ``run.py kpi snapshot``).
    """
    raw = read_yaml(config_file) if config_file else {}
    source = str(config_file) if config_file else "command line"
    allowed = ("strategy", "backtest", "benchmark", "release", "kpi", *extra)
    unknown = set(raw) - set(allowed)
    if unknown:
        raise InputRejected(Problem(source, None, f"unknown sections {sorted(unknown)}; allowed: {', '.join(allowed)}"))
    backtest = dict(raw.get("backtest") or {})
    if capital is not None:
        validate_section(BacktestConfig, {"capital": capital}, "--capital")  # names the flag, not the file
        backtest["capital"] = capital
    config = validate_section(BacktestConfig, backtest, f"{source}: backtest")
    benchmark = raw.get("benchmark", list(BENCHMARKS))
    return raw, source, config, tuple([benchmark] if isinstance(benchmark, str) else benchmark)


def read_spec(strategy: str, config_file: Path | None, start: date | None, end: date | None,
              capital: float | None) -> RunSpec:
    """Merge the config file's sections with command-line overrides; errors name the file and field."""
    raw, source, config, benchmark = read_sections(config_file, capital)
    if start and end and start > end:
        raise InputRejected(Problem("--start/--end", None, f"start {start} is after end {end}"))
    return RunSpec(strategy, dict(raw.get("strategy") or {}), config, benchmark, start, end, source)


def run_backtest(spec: RunSpec, store: BarStore | None = None, lookahead_cuts: int = 3) -> BacktestRun:
    from ..strategies import create_strategy

    store = store or BarStore()
    strategy = create_strategy(spec.strategy_name, spec.strategy_settings, f"{spec.source}: strategy")
    full = market_for(strategy, spec.start, spec.end, store, spec.benchmark)
    clipped = clip_to_bars(full, spec.start, spec.end)
    full = clipped.market
    decided = strategy.targets(full)  # on everything read: the look-ahead harness compares against it
    market = full.window(spec.start, None)
    if not len(market.days):  # e.g. --start after the last stored bar: nothing to trade, nothing to measure
        stored = f"the stored bars end {full.days[-1].date()}" if len(full.days) else "no bars are stored"
        raise InputRejected(Problem("--start/--end", None, f"no trading day with bars in {spec.start or '…'} … "
                                    f"{spec.end or '…'} ({stored}): import newer bars or choose another window"))
    plan = plan_within(decided, market.days)
    result = simulate(market, plan, spec.config, full).to_result()
    benchmark = load_benchmark(market.days, store, spec.benchmark)
    metrics = _metrics(result, benchmark)
    metrics["benchmark"] = None if benchmark is None else benchmark[0]
    # e.g. a span clipped to the stored bars, survivorship of the universe
    metrics["data_warnings"] = clipped.warnings + list(strategy.data_warnings)
    for why in (skipped(plan, spec.config), drift_skipped(plan, spec.config)):
        if why is not None:
            metrics["data_warnings"].append(why)
    pool_metrics = _pool_metrics(strategy, full, market, spec, metrics, benchmark)
    return BacktestRun(strategy, spec, market, plan, result, metrics, benchmark,
                       check_identities(result), check_lookahead(strategy, full, spec.config, lookahead_cuts, base_plan=decided),
                       pool_metrics, full)


def clipped_warning(flag: str, given: date, edge: date) -> str:
    """What a run says when ``flag``'s date reached past the stored bars and was moved to ``edge``."""
    if flag == "--end":
        return (f"--end {given} is after the last stored bar ({edge}): the run ends on {edge}; "
                "import newer bars to extend it")
    return f"--start {given} is before the first stored bar ({edge}): the run starts on {edge}"


@dataclass(frozen=True)
class Clipped:
    """A market cut to its stored bars: the dates the run really covers and what was said about the cut."""

    market: MarketData
    start: date | None  # the given --start, or the first bar's day when it was before it
    end: date | None  # the given --end, or the last bar's day when it was after it
    warnings: list[str]


def clip_to_bars(market: MarketData, start: date | None, end: date | None) -> Clipped:
    """``market`` without the leading and trailing days on which no symbol has a bar, with a warning for each
    side an explicit ``start``/``end`` reached past the data.

    The calendar goes on where the database stops; simulated days there are flat cash that would dilute
    annualised returns, volatility and the monthly win rate without a word.
    """
    has_bar = np.isfinite(market.close).any(axis=1)
    if not has_bar.any():
        return Clipped(market, start, end, [])
    days = market.days
    first, last = days[has_bar.argmax()], days[len(has_bar) - 1 - has_bar[::-1].argmax()]
    warnings = []
    if end is not None and ((days > last) & (days <= pd.Timestamp(end))).any():
        warnings.append(clipped_warning("--end", end, last.date()))
        end = last.date()
    if start is not None and ((days >= pd.Timestamp(start)) & (days < first)).any():
        warnings.append(clipped_warning("--start", start, first.date()))
        start = first.date()
    if first != days[0] or last != days[-1]:
        market = market.window(first.date(), last.date())
    return Clipped(market, start, end, warnings)


def _metrics(result: BacktestResult, benchmark: tuple[str, pd.Series] | None) -> dict[str, Any]:
    metrics = compute_metrics(result.equity, trades=result.trades,
                              benchmark=None if benchmark is None else benchmark[1],
                              symbol_pnl=result.symbol_pnl)
    metrics["alerts"] = evaluate_alerts(metrics)
    return metrics


POOL_COLUMNS = ("total_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown", "calmar",
                "monthly_win_rate", "turnover", "total_cost", "trade_count")


def _pool_metrics(strategy: TargetStrategy, full: MarketData, market: MarketData, spec: RunSpec,
                  metrics: dict[str, Any], benchmark: tuple[str, pd.Series] | None) -> pd.DataFrame | None:
    """Each pool sleeve backtested alone on its share of the capital, then the whole portfolio."""
    pool_plans = strategy.pool_plans(full)
    if pool_plans is None:
        return None
    shares = strategy.pools_config.shares(strategy.pool_names)
    rows = []
    for pool, plan in pool_plans.items():
        plan = plan_within(plan, market.days)
        config = spec.config.model_copy(update={"capital": spec.config.capital * shares[pool]})
        pool_result = simulate(market, plan, config, full).to_result()
        m = _metrics(pool_result, benchmark)
        rows.append({"pool": pool, "capital_share": shares[pool], **{k: m.get(k) for k in POOL_COLUMNS},
                     "alerts": ";".join(triggered(m["alerts"]))})
    rows.append({"pool": "PORTFOLIO", "capital_share": 1.0, **{k: metrics.get(k) for k in POOL_COLUMNS},
                 "alerts": ";".join(triggered(metrics["alerts"]))})
    return pd.DataFrame(rows)
