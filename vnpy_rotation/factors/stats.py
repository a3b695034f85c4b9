"""Cross-sectional statistics of a long factor panel: coverage, zero variance, rank IC, duplicates.

Shared by the factor summary (``factor_summary_*.csv``) and the CI fuses, so the file and the checks
always agree. Everything is computed per date across the pool's members, because the panel feeds a
cross-sectional ranking: two factors that order the members identically on (nearly) every date are
duplicates for a rotation even if their levels differ (``rs_csi300_60`` is ``mom_60`` minus a
per-date constant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .library import FACTORS

# Thresholds of the factor panel's CI fuses (see fuses.py for why each value was chosen).
MAX_ABS_IC = 0.10  # |mean rank IC| against the next-session return must stay below ...
IC_STANDARD_ERRORS = 4.0  # ... max(MAX_ABS_IC, this × its standard error): short panels are noisier
MIN_COVERAGE = 0.80  # non-NaN share per date among members with a bar, after warm-up
MAX_COVERAGE_DROP = 0.20  # fall of coverage from one session to the next
MIN_EFFECTIVE = 8  # non-degenerate, non-duplicate factors
DUPLICATE_CORR = 0.99  # |mean cross-sectional rank correlation| with an earlier kept factor
ZERO_STD_RELATIVE = 1e-10  # cross-sectional std <= this × (1 + |mean|) counts as zero
ZERO_VARIANCE_SHARE = 0.5  # flagged when the std is zero on more than this share of dates
MAX_ZERO_VARIANCE = 10  # more flagged factors than this fails (the project's default alert level)

FORWARD = "__forward_return__"  # temporary column name, never a factor


@dataclass(frozen=True)
class Wide:
    """A long panel as date × symbol arrays: one per factor, plus where a row (a bar) exists."""

    dates: pd.DatetimeIndex
    symbols: list[str]
    present: np.ndarray  # bool: the member has a row (a bar) that date
    values: dict[str, np.ndarray]


def to_wide(frame: pd.DataFrame, columns: list[str] | None = None) -> Wide:
    """Unstack ``frame`` (index (date, vt_symbol)); duplicated rows keep the last, rows are sorted."""
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    columns = list(frame.columns) if columns is None else columns
    dates = pd.DatetimeIndex(frame.index.get_level_values(0).unique())
    symbols = sorted(frame.index.get_level_values(1).unique())
    codes_d = dates.get_indexer(frame.index.get_level_values(0))
    codes_s = pd.Index(symbols).get_indexer(frame.index.get_level_values(1))
    present = np.zeros((len(dates), len(symbols)), dtype=bool)
    present[codes_d, codes_s] = True
    values = {}
    for name in columns:
        array = np.full(present.shape, np.nan)
        array[codes_d, codes_s] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        values[name] = array
    return Wide(dates, symbols, present, values)


def _row_ranks(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.DataFrame(values).rank(axis=1).to_numpy(dtype=float, copy=True), dtype=float)


def rank_corr_by_date(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation across members on each date (NaN with < 2 pairs or no spread)."""
    both = np.isfinite(a) & np.isfinite(b)
    ra, rb = _row_ranks(np.where(both, a, np.nan)), _row_ranks(np.where(both, b, np.nan))
    count = both.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ra -= np.nansum(ra, axis=1, keepdims=True) / count
        rb -= np.nansum(rb, axis=1, keepdims=True) / count
        denominator = np.sqrt(np.nansum(ra * ra, axis=1) * np.nansum(rb * rb, axis=1))
        corr = np.nansum(ra * rb, axis=1) / denominator
    corr[(both.sum(axis=1) < 2) | ~(denominator > 0)] = np.nan
    return np.asarray(corr, dtype=float)


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def ic_limit(daily_ic: np.ndarray) -> float:
    """The |mean IC| a factor must stay below: MAX_ABS_IC, or more where few dates make it noisy."""
    finite = daily_ic[np.isfinite(daily_ic)]
    if len(finite) < 2:
        return MAX_ABS_IC
    return float(max(MAX_ABS_IC, IC_STANDARD_ERRORS * float(finite.std(ddof=1)) / np.sqrt(len(finite))))


def window_of(name: str, meta: dict[str, Any] | None = None) -> int:
    """Sessions of history the factor needs: from the panel's meta, the library, or 1 if unknown."""
    spec = ((meta or {}).get("factors") or {}).get(name)
    if isinstance(spec, dict) and isinstance(spec.get("window"), int):
        return int(spec["window"])
    return FACTORS[name].window if name in FACTORS else 1


def eligible(wide: Wide, name: str, window: int) -> np.ndarray:
    """Rows past the factor's warm-up: the member's k-th row with k >= min(window - 1, first valid k).

    Rows are counted per member, so a member without a bar on some sessions is judged later than its
    window strictly needs (conservative); a factor that starts early is judged from its first value.
    """
    k = np.cumsum(wide.present, axis=0) - 1
    valid = np.isfinite(wide.values[name]) & wide.present
    first_valid = np.where(valid.any(axis=0), np.where(valid, k, np.iinfo(np.int64).max).min(axis=0),
                           np.iinfo(np.int64).max)
    return wide.present & (k >= np.minimum(window - 1, first_valid))


def coverage_by_date(wide: Wide, name: str, window: int) -> np.ndarray:
    """Per date: non-NaN share among members with a bar past warm-up (NaN where none is eligible)."""
    judged = eligible(wide, name, window)
    count = judged.sum(axis=1)
    covered = (judged & np.isfinite(wide.values[name])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, covered / count, np.nan)


def coverage_problem(dates: pd.DatetimeIndex, coverage: np.ndarray) -> str | None:
    """Why a factor's per-date coverage fails (worst date below the floor, or the steepest drop)."""
    judged = np.isfinite(coverage)
    if not judged.any():
        return "no date past its warm-up"
    worst = int(np.nanargmin(coverage))
    if coverage[worst] < MIN_COVERAGE:
        below = int((coverage[judged] < MIN_COVERAGE).sum())
        return (f"coverage {coverage[worst]:.0%} on {dates[worst].date()} < {MIN_COVERAGE:.0%} "
                f"({below} of {int(judged.sum())} dates below)")
    drops = np.diff(coverage)  # NaN across a date without eligible members: no comparison there
    if np.isfinite(drops).any() and np.nanmin(drops) < -MAX_COVERAGE_DROP:
        at = int(np.nanargmin(drops)) + 1
        return (f"coverage fell {-drops[at - 1]:.0%} from {dates[at - 1].date()} to {dates[at].date()} "
                f"(> {MAX_COVERAGE_DROP:.0%})")
    return None


def zero_std_share(values: np.ndarray) -> float:
    """Share of dates with a value whose cross-sectional std is ~0 (a lone value has none); NaN if no value."""
    dated = np.isfinite(values).any(axis=1)
    if not dated.any():
        return float("nan")
    rows = values[dated]
    std = np.nanstd(rows, axis=1)  # every row has a finite value: no empty-slice warnings
    scale = 1.0 + np.abs(np.nanmean(rows, axis=1))
    return float((std <= ZERO_STD_RELATIVE * scale).mean())


def summarise(frame: pd.DataFrame, meta: dict[str, Any] | None = None,
              forward_return: pd.Series | None = None) -> pd.DataFrame:
    """One row per factor: coverage, moments, zero variance, mean rank IC, duplicate_of and verdicts.

    ``effective``: covered, not zero-variance and not a duplicate of an earlier effective factor.
    ``production``: effective and |mean rank IC| below ``ic_limit`` (or IC unknown).
    """
    names = list(frame.columns)
    future = None
    if forward_return is not None:
        unique = forward_return[~forward_return.index.duplicated(keep="last")]
        frame = frame.assign(**{FORWARD: unique.reindex(frame.index).to_numpy(dtype=float)})
    wide = to_wide(frame)
    if forward_return is not None:
        future = wide.values.pop(FORWARD)
    rows: list[dict[str, Any]] = []
    kept: list[str] = []
    for name in names:
        values = wide.values[name]
        finite = values[np.isfinite(values)]
        coverage = coverage_by_date(wide, name, window_of(name, meta))
        judged = eligible(wide, name, window_of(name, meta))
        problem = coverage_problem(wide.dates, coverage)
        share = zero_std_share(values)
        daily_ic = rank_corr_by_date(values, future) if future is not None else np.full(len(wide.dates), np.nan)
        ic, limit = _nanmean(daily_ic), ic_limit(daily_ic)
        duplicate = None
        degenerate = problem is not None or share > ZERO_VARIANCE_SHARE
        if not degenerate:
            for other in kept:
                if abs(_nanmean(rank_corr_by_date(values, wide.values[other]))) >= DUPLICATE_CORR:
                    duplicate = other
                    break
            if duplicate is None:
                kept.append(name)
        effective = not degenerate and duplicate is None
        rows.append({
            "factor": name,
            "coverage": float((judged & np.isfinite(values)).sum() / judged.sum()) if judged.any() else 0.0,
            "min_date_coverage": float(np.nanmin(coverage)) if np.isfinite(coverage).any() else 0.0,
            "mean": float(finite.mean()) if len(finite) else np.nan,
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else np.nan,
            "min": float(finite.min()) if len(finite) else np.nan,
            "max": float(finite.max()) if len(finite) else np.nan,
            "zero_std_share": share,
            "zero_variance": bool(share > ZERO_VARIANCE_SHARE),
            "mean_rank_ic": ic,
            "ic_limit": limit,
            "duplicate_of": duplicate or "",
            "coverage_problem": problem or "",
            "effective": effective,
            "production": effective and not (abs(ic) >= limit),
        })
    return pd.DataFrame(rows, columns=["factor", "coverage", "min_date_coverage", "mean", "std", "min", "max",
                                       "zero_std_share", "zero_variance", "mean_rank_ic", "ic_limit", "duplicate_of",
                                       "coverage_problem", "effective", "production"])
