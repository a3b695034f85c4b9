"""The CI fuses on a factor panel: each returns a :class:`FuseResult` saying why, with numbers.

=====================  =====================================================================================
``t1_shift``           (a) |mean cross-sectional rank IC| of each factor at t against the member's return
                       from t to its next bar < max(0.10, 4 standard errors of that mean); (b) with the
                       market: values up to a cut are identical after every later bar is perturbed (3 cuts)
``coverage``           per factor and date, non-NaN share among members with a bar past the factor's warm-up
                       >= 80 %, and no fall of more than 20 percentage points from one session to the next
``effective_factors``  >= 8 factors that are covered, not zero-variance, and not a duplicate (|mean rank
                       correlation| >= 0.99 with an earlier kept factor)
``zero_variance``      factors whose cross-sectional std is ~0 on more than half of the dates are listed;
                       fails only when more than 10 are (the project's default)
``index_format``       index (date, vt_symbol), sorted, unique; tz-naive midnight dates inside the market's
                       days (or the meta span); members only; float64 columns; no ±inf
``metadata``           every required meta key present and consistent with the panel
=====================  =====================================================================================

Why these IC numbers: honest factors on the bundled ETFs have |mean daily rank IC| <= 0.06 (the
largest is OTHER's volatility, 0.057, a two-member pool); a one-session peek inside an n-session return
adds about 1/sqrt(n) to it (0.16-0.17 for a peeking ``mom_20``). A panel of a few hundred dates is
noisier (QDII's ``mdd_60`` reaches 0.077 over 2020-2021), hence the floor of four standard errors. The
statistical screen catches short peeks; the perturbation (b) is the exact test for any peek and runs
whenever the market is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..data.market_data import MarketData
from ..data.perturbation import perturb_after
from ..errors import RotationError
from . import stats
from .panel import INDEX_NAMES, META_KEYS, FactorPanel, panel_frame

LOOKAHEAD_CUTS = (0.3, 0.6, 0.85)  # where in the panel's span the perturbation cuts are placed


@dataclass(frozen=True)
class FuseResult:
    name: str
    ok: bool
    detail: str


class FuseBlown(RotationError):
    """At least one CI fuse failed; the message lists every failed fuse with its reason."""

    def __init__(self, failed: list[FuseResult], label: str = "") -> None:
        self.failed = list(failed)
        prefix = f"{label}: " if label else ""
        self.problems = [f"{prefix}{r.name}: {r.detail}" for r in self.failed]
        super().__init__("\n".join(self.problems))


def require_fuses(results: list[FuseResult], label: str = "") -> None:
    """Raise :class:`FuseBlown` naming every failed fuse (``label``: e.g. the pool) when any failed."""
    failed = [r for r in results if not r.ok]
    if failed:
        raise FuseBlown(failed, label)


def _summary(panel: FactorPanel) -> pd.DataFrame:
    return stats.summarise(panel.frame, panel.meta, panel.forward_return)


def _lookahead(panel: FactorPanel, market: MarketData, members: list[str]) -> list[str]:
    """Recompute the panel from markets perturbed after each cut; name what changed up to the cut."""
    frame = panel.frame[~panel.frame.index.duplicated(keep="last")].sort_index()
    dates = frame.index.get_level_values(0).unique()
    problems = []
    for k, share in enumerate(LOOKAHEAD_CUTS):
        day = dates[int(share * (len(dates) - 1))]
        cut = int(market.days.get_indexer([day])[0])
        if cut < 0:
            problems.append(f"cut {day.date()} is not a market day")
            continue
        other, _ = panel_frame(perturb_after(market, cut, seed=k), members, panel.factors)
        before = frame[frame.index.get_level_values(0) <= day]
        redone = other.reindex(before.index)
        changed = [n for n in panel.factors
                   if not np.array_equal(before[n].to_numpy(float), redone[n].to_numpy(float), equal_nan=True)]
        if changed:
            problems.append(f"values up to {day.date()} changed when later bars were perturbed: {', '.join(changed)}")
    return problems


def t1_shift(panel: FactorPanel, market: MarketData | None = None, members: list[str] | None = None,
             summary: pd.DataFrame | None = None) -> FuseResult:
    """No factor knows the next session: a small rank IC against it, and values immune to later bars."""
    summary = _summary(panel) if summary is None else summary
    problems, notes = [], []
    table = summary.set_index("factor")
    ic, limit = table["mean_rank_ic"], table["ic_limit"]
    if ic.notna().any():
        peeking = ic[ic.abs() >= limit]
        problems += [f"{n}: mean rank IC {v:+.3f} vs the next-session return, |IC| >= {limit[n]:.3f}"
                     for n, v in peeking.items()]
        worst = ic.abs().idxmax()
        notes.append(f"max |mean rank IC| {abs(ic[worst]):.3f} ({worst}) < {limit[worst]:.3f}")
    else:
        notes.append("rank IC not measured (no next-session returns)")
    if market is not None and members is not None:
        found = _lookahead(panel, market, list(members))
        problems += found
        if not found:
            notes.append(f"values unchanged up to {len(LOOKAHEAD_CUTS)} cuts when later bars are perturbed")
    else:
        notes.append("perturbation skipped (no market)")
    return FuseResult("t1_shift", not problems, "; ".join(problems or notes))


def coverage(panel: FactorPanel, summary: pd.DataFrame | None = None) -> FuseResult:
    """Per-date coverage after warm-up >= 80 % per factor, without a sudden drop; names the worst."""
    summary = _summary(panel) if summary is None else summary
    bad = summary[summary["coverage_problem"] != ""]
    if len(bad):
        return FuseResult("coverage", False, "; ".join(f"{r.factor}: {r.coverage_problem}" for r in bad.itertuples()))
    worst = summary.loc[summary["min_date_coverage"].idxmin()]
    return FuseResult("coverage", True, f"{len(summary)} factors; lowest date coverage "
                      f"{worst['min_date_coverage']:.0%} ({worst['factor']}), overall >= {summary['coverage'].min():.1%}")


def effective_factors(panel: FactorPanel, summary: pd.DataFrame | None = None) -> FuseResult:
    """At least 8 covered, varying, non-duplicate factors."""
    summary = _summary(panel) if summary is None else summary
    effective = summary.loc[summary["effective"], "factor"].tolist()
    dropped = [f"{r.factor} (duplicate of {r.duplicate_of})" if r.duplicate_of else
               f"{r.factor} ({'zero variance' if r.zero_variance else 'coverage'})"
               for r in summary.itertuples() if not r.effective]
    detail = f"{len(effective)} effective of {len(summary)} (need >= {stats.MIN_EFFECTIVE})"
    if dropped:
        detail += "; not effective: " + ", ".join(dropped)
    return FuseResult("effective_factors", len(effective) >= stats.MIN_EFFECTIVE, detail)


def zero_variance(panel: FactorPanel, summary: pd.DataFrame | None = None) -> FuseResult:
    """Flags factors constant across members on most dates; fails above 10 of them."""
    summary = _summary(panel) if summary is None else summary
    flagged = summary.loc[summary["zero_variance"], "factor"].tolist()
    ok = len(flagged) <= stats.MAX_ZERO_VARIANCE
    detail = (f"{len(flagged)} zero-variance factors (fails above {stats.MAX_ZERO_VARIANCE})"
              + (f": {', '.join(flagged)}" if flagged else ""))
    return FuseResult("zero_variance", ok, detail)


def index_format(panel: FactorPanel, market: MarketData | None = None) -> FuseResult:
    """The panel's index and dtypes follow the contract every reader relies on."""
    frame, problems = panel.frame, []
    index = frame.index
    if list(index.names) != INDEX_NAMES:
        problems.append(f"index names {list(index.names)} != {INDEX_NAMES}")
    if not index.is_unique:
        problems.append(f"{int(index.duplicated().sum())} duplicated rows")
    if not index.is_monotonic_increasing:
        problems.append("rows not sorted by (date, vt_symbol)")
    if isinstance(index, pd.MultiIndex) and index.nlevels == 2:
        dates = index.get_level_values(0)
        if not isinstance(dates, pd.DatetimeIndex):
            problems.append(f"dates are {dates.dtype}, not timestamps")
        else:
            if dates.tz is not None:
                problems.append(f"dates carry a time zone ({dates.tz})")
            if len(dates) and not (dates == dates.normalize()).all():
                problems.append("dates have a time of day")
            if market is not None:
                outside = ~dates.normalize().tz_localize(None).isin(market.days)
            else:
                meta = panel.meta
                lo, hi = pd.Timestamp(meta.get("start", dates.min())), pd.Timestamp(meta.get("end", dates.max()))
                outside = (dates.tz_localize(None) < lo) | (dates.tz_localize(None) > hi)
            if outside.any():
                problems.append(f"{int(outside.sum())} rows on dates outside the "
                                f"{'market days' if market is not None else 'meta span'}")
        members = set(panel.meta.get("members") or [])
        strangers = sorted(set(index.get_level_values(1)) - members) if members else []
        if strangers:
            problems.append(f"symbols outside the pool: {strangers}")
    else:
        problems.append(f"index has {index.nlevels} level(s), not (date, vt_symbol)")
    not_float = [c for c in frame.columns if frame[c].dtype != np.float64]
    if not_float:
        problems.append(f"columns not float64: {not_float}")
    numeric = frame.select_dtypes(include=[np.number])
    infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    if infinite:
        problems.append(f"±inf in {infinite}")
    return FuseResult("index_format", not problems, "; ".join(problems) or
                      f"{len(frame)} rows, {frame.shape[1]} float64 columns, (date, vt_symbol) sorted and unique")


def metadata(panel: FactorPanel) -> FuseResult:
    """The required meta keys are there and agree with the panel."""
    meta, frame, problems = panel.meta, panel.frame, []
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        problems.append(f"missing keys {missing}")
    if isinstance(frame.index, pd.MultiIndex) and len(frame):
        dates, symbols = frame.index.get_level_values(0), frame.index.get_level_values(1)
        expected = {"n_dates": int(dates.nunique()), "n_symbols": int(symbols.nunique()),
                    "start": str(pd.Timestamp(dates.min()).date()), "end": str(pd.Timestamp(dates.max()).date())}
        problems += [f"{k} is {meta[k]!r}, panel has {v!r}" for k, v in expected.items() if k in meta and meta[k] != v]
    if "factors" in meta and list(meta["factors"] or []) != list(frame.columns):
        problems.append(f"factors {list(meta['factors'] or [])} != columns {list(frame.columns)}")
    if "production_factors" in meta:
        unknown = sorted(set(meta["production_factors"] or []) - set(frame.columns))
        if unknown:
            problems.append(f"production factors not in the panel: {unknown}")
    for key in ("pool", "code_version", "created_at", "data_source"):
        if key in meta and not (isinstance(meta[key], str) and meta[key]):
            problems.append(f"{key} is empty")
    return FuseResult("metadata", not problems, "; ".join(problems) or
                      f"{len(META_KEYS)} required keys present and consistent")


def _guarded(name: str, check: Callable[[], FuseResult]) -> FuseResult:
    try:
        return check()
    except Exception as exc:  # a panel broken enough to crash a check fails that check, with the reason
        return FuseResult(name, False, f"could not be evaluated: {type(exc).__name__}: {exc}")


def run_fuses(panel: FactorPanel, market: MarketData | None = None,
              members: list[str] | None = None) -> list[FuseResult]:
    """Every fuse, in the order of the table above (the look-ahead perturbation runs only with the market)."""
    try:
        summary = _summary(panel)
    except Exception:
        summary = None  # each statistical fuse then reports why it could not be evaluated
    members = members if members is not None else (panel.meta.get("members") if market is not None else None)
    checks: list[tuple[str, Callable[[], FuseResult]]] = [
        ("t1_shift", lambda: t1_shift(panel, market, members, summary)),
        ("coverage", lambda: coverage(panel, summary)),
        ("effective_factors", lambda: effective_factors(panel, summary)),
        ("zero_variance", lambda: zero_variance(panel, summary)),
        ("index_format", lambda: index_format(panel, market)),
        ("metadata", lambda: metadata(panel)),
    ]
    return [_guarded(name, check) for name, check in checks]
