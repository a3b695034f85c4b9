"""Load market data and a benchmark from the project's database (the only vnpy-touching step here)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from ..bundled import bundled_files, bundled_stock_files, manifest
from ..data.importer import import_paths
from ..data.market_data import MarketData, build_market_data
from ..data.panels import describe_coverage, load_panels
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..fundamentals.dividends import stored_records

if TYPE_CHECKING:
    from ..protocol import TargetStrategy

# CSI 300 total-return index first (dividends reinvested, a fair yardstick), then the price index.
BENCHMARKS = ("H00300.SSE", "000300.SSE")


def ensure_bundled(vt_symbols: list[str], store: BarStore) -> bool:
    """Import the bundled real data when a requested bundled symbol has no bars yet (first run).

    The ETF/index part and the stock part (bars, fundamentals, index membership) are imported separately,
    each only when one of its symbols is wanted and missing.
    """
    info = manifest()
    parts = [({s for members in info["pools"].values() for s in members}, bundled_files),
             (set(info.get("stocks", [])), bundled_stock_files)]
    imported = False
    for symbols, files in parts:
        wanted = [s for s in vt_symbols if s in symbols]
        if not wanted or set(wanted) <= set(store.check_blocks(set(wanted)).vt_symbols):
            continue
        result = import_paths(files(), store, progress=False)
        if not result.ok:
            raise InputRejected([p for _, problems in result.failures for p in problems])
        imported = True
    return imported


def load_market(vt_symbols: list[str], start: date | None = None, end: date | None = None,
                warmup_days: int = 0, store: BarStore | None = None) -> MarketData:
    """Market data for ``vt_symbols`` from ``warmup_days`` trading days before ``start`` to ``end``."""
    store = store or BarStore()
    first = None if start is None else start - timedelta(days=int(warmup_days * 7 / 5) + 15)
    panels = load_panels(vt_symbols, first, end, store=store)
    missing = [s for s in vt_symbols if panels.close[s].isna().all()]
    if not len(panels.days):
        raise InputRejected(Problem("--start/--end", None, "no stored bar on the requested dates: "
                                    f"{describe_coverage(vt_symbols, store)}"))
    if missing:
        raise InputRejected(Problem("database", None, f"no bars for {', '.join(missing)} on the requested dates "
                                    f"({describe_coverage(missing, store)}); import them first "
                                    "(python run.py import PATH) or choose dates inside the data"))
    return build_market_data(panels, records=stored_records(store.database, vt_symbols))


def load_benchmark(days: pd.DatetimeIndex, store: BarStore | None = None,
                   candidates: tuple[str, ...] = BENCHMARKS) -> tuple[str, pd.Series] | None:
    """The first candidate index with bars covering ``days``: (vt_symbol, close on those days)."""
    store = store or BarStore()
    for vt_symbol in candidates:
        panels = load_panels([vt_symbol], days[0].date(), days[-1].date(), store=store)
        close = panels.close[vt_symbol].reindex(days).ffill()
        if close.notna().mean() > 0.95:
            return vt_symbol, close.astype(float)
    return None



def with_benchmark(market: MarketData, store: BarStore | None = None,
                   candidates: tuple[str, ...] = BENCHMARKS) -> tuple[MarketData, str | None]:
    """``market`` with the first covering benchmark's close attached (for relative-strength signals; it is
    point-in-time like every other column and the look-ahead harness perturbs it), and that benchmark."""
    reference = load_benchmark(market.days, store, candidates)
    if reference is None:
        return market, None
    return dataclasses.replace(market, benchmark=reference[1].to_numpy(dtype=float)), reference[0]


def market_for(strategy: "TargetStrategy", start: date | None = None, end: date | None = None,
               store: BarStore | None = None, benchmark: tuple[str, ...] = BENCHMARKS) -> MarketData:
    """Everything ``strategy`` decides on, from its warm-up before ``start`` to ``end``: bars, the benchmark,
    and whatever the strategy adds in ``prepare_market(market, store)`` (VQM: point-in-time fundamentals).

    The one loading path of ``run.py backtest``, ``walkforward`` and the benchmarks.
    """
    store = store or BarStore()
    if ensure_bundled(strategy.symbols + list(benchmark), store):
        print("imported the bundled real data into the database (first run)")
    market = load_market(strategy.symbols, start, end, strategy.warmup_days, store)
    market, _ = with_benchmark(market, store, benchmark)
    return strategy.prepare_market(market, store)
