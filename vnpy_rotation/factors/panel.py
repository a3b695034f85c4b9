"""The factor panel of one pool: a long table and its files.

A panel holds one row per (date, vt_symbol) for the pool's own sessions on which the member has a
bar, one float column per factor, computed point-in-time by :mod:`.library`. ``write_panel`` writes
four files::

    panel_FULL_<start>_<end>.parquet   the panel (index date, vt_symbol)
    factor_summary_<start>_<end>.csv   per factor: coverage, moments, zero variance, rank IC, duplicate_of
    panel_meta.json                    pool, members, span, sizes, factor specs, versions, data source
    production_factors.txt             the effective factors that pass the fuses, one per line

Pure: no vnpy import (the caller loads :class:`MarketData`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..data.market_data import MarketData
from ..errors import InputRejected, Problem
from .inputs import pool_inputs
from .library import FACTORS, compute_factors
from .stats import summarise

INDEX_NAMES = ["date", "vt_symbol"]
META_KEYS = ("pool", "members", "start", "end", "n_dates", "n_symbols", "factors", "production_factors",
             "created_at", "code_version", "data_source")


@dataclass(frozen=True)
class FactorPanel:
    """One pool's factor values (``frame``), its metadata, and the realised next-session returns.

    ``forward_return`` (same index as ``frame``: the member's return from its bar at t to its next bar)
    is future data by construction: it exists only to measure rank ICs and is never written as a factor.
    """

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    forward_return: pd.Series | None = None

    @property
    def factors(self) -> list[str]:
        return list(self.frame.columns)

    def summary(self) -> pd.DataFrame:
        """The per-factor statistics written to ``factor_summary_*.csv``."""
        return summarise(self.frame, self.meta, self.forward_return)


def default_factors(market: MarketData) -> tuple[list[str], dict[str, str]]:
    """Every library factor the market can feed, and the skipped ones with the reason."""
    skipped = {n: "no benchmark close in the market data" for n, s in FACTORS.items()
               if s.needs_benchmark and market.benchmark is None}
    return [n for n in FACTORS if n not in skipped], skipped


def _forward_returns(adj_close: np.ndarray, has_bar: np.ndarray) -> np.ndarray:
    """Per member: adjusted close at its next bar over the close at this bar, minus one."""
    out = np.full(adj_close.shape, np.nan)
    for j in range(adj_close.shape[1]):
        rows = np.nonzero(has_bar[:, j])[0]
        if len(rows) > 1:
            out[rows[:-1], j] = adj_close[rows[1:], j] / adj_close[rows[:-1], j] - 1.0
    return out


def panel_frame(market: MarketData, members: list[str], names: list[str], start: date | None = None,
                end: date | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The long factor table and the next-session returns on the same (date, vt_symbol) rows."""
    sessions, inputs = pool_inputs(market, list(members))
    values = compute_factors(inputs, list(names))
    days = market.days[sessions]
    in_window = np.ones(len(sessions), dtype=bool)
    if start is not None:
        in_window &= days >= pd.Timestamp(start)
    if end is not None:
        in_window &= days <= pd.Timestamp(end)
    rows, cols = np.nonzero(inputs.has_bar & in_window[:, None])
    index = pd.MultiIndex.from_arrays([days[rows], np.asarray(members, dtype=object)[cols]], names=INDEX_NAMES)
    frame = pd.DataFrame({n: values[n][rows, cols].astype(np.float64) for n in names}, index=index)
    forward = pd.Series(_forward_returns(inputs.adj_close, inputs.has_bar)[rows, cols], index=index,
                        name="forward_return")
    order = np.lexsort((index.get_level_values(1).to_numpy(dtype=str), rows))  # by date, then symbol
    return frame.iloc[order], forward.iloc[order]


def produce_panel(market: MarketData, pool_name: str, members: list[str], names: list[str] | None = None, *,
                  start: date | None = None, end: date | None = None,
                  source: str = "MarketData in memory") -> FactorPanel:
    """The pool's factor panel, computed on all of ``market`` and kept for ``start..end``.

    ``names`` default to every library factor the market can feed (benchmark-relative ones need
    ``market.benchmark``). Rows outside the window still serve as warm-up history.
    """
    skipped: dict[str, str] = {}
    if names is None:
        names, skipped = default_factors(market)
    unknown = [n for n in names if n not in FACTORS]
    if unknown:
        raise InputRejected(Problem(pool_name, None, f"unknown factors {unknown}; available: {', '.join(FACTORS)}"))
    frame, forward = panel_frame(market, members, names, start, end)
    if not len(frame):
        raise InputRejected(Problem(pool_name, None, "no session with a member's bar in the requested span"))

    dates = frame.index.get_level_values(0)
    meta = {
        "pool": pool_name,
        "members": list(members),
        "start": str(dates[0].date()),
        "end": str(dates[-1].date()),
        "n_dates": int(dates.nunique()),
        "n_symbols": int(frame.index.get_level_values(1).nunique()),
        "factors": {n: {"direction": FACTORS[n].direction, "window": FACTORS[n].window,
                        "description": FACTORS[n].description} for n in names},
        "skipped_factors": skipped,
        "production_factors": [],
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": __version__,
        "data_source": source,
        "benchmark": market.benchmark is not None,
        "sessions": "the pool's own sessions: days on which more than half of its listed members traded",
    }
    panel = FactorPanel(frame, meta, forward)
    summary = panel.summary()
    meta["production_factors"] = summary.loc[summary["production"], "factor"].tolist()
    return panel


def panel_file_names(meta: dict[str, Any]) -> tuple[str, str]:
    """``panel_FULL_<start>_<end>.parquet`` and ``factor_summary_<start>_<end>.csv`` (YYYYMMDD)."""
    span = f"{meta['start'].replace('-', '')}_{meta['end'].replace('-', '')}"
    return f"panel_FULL_{span}.parquet", f"factor_summary_{span}.csv"


def write_panel(panel: FactorPanel, out_dir: Path | str) -> list[Path]:
    """The panel's four files in ``out_dir`` (created); earlier panels/summaries there are replaced."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parquet_name, summary_name = panel_file_names(panel.meta)
    for pattern in ("panel_FULL_*.parquet", "factor_summary_*.csv"):  # one panel per folder
        for stale in out.glob(pattern):
            if stale.name not in (parquet_name, summary_name):
                stale.unlink()
    paths = [out / parquet_name, out / summary_name, out / "panel_meta.json", out / "production_factors.txt"]
    panel.frame.to_parquet(paths[0], engine="pyarrow")
    panel.summary().to_csv(paths[1], index=False, float_format="%.6g")
    paths[2].write_text(json.dumps(panel.meta, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    paths[3].write_text("".join(f"{n}\n" for n in panel.meta.get("production_factors", [])), encoding="utf-8")
    return paths


def read_panel(out_dir: Path | str) -> FactorPanel:
    """A panel written by :func:`write_panel` (without the forward returns, which are not written)."""
    out = Path(out_dir)
    meta = json.loads((out / "panel_meta.json").read_text(encoding="utf-8"))
    frame = pd.read_parquet(out / panel_file_names(meta)[0], engine="pyarrow")
    return FactorPanel(frame, meta)
