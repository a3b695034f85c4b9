"""Adjustment factors from real data, and detection of moves no factor explains (pure).

A factor ``F`` on ex-date ``t`` is ``close[t-1] / reference_price[t]``: the multiplier that makes a
holding's value continuous across a split or a cash distribution. Backward-adjusted prices are
``price[t] * prod(F for ex-dates <= t)``, so adding later data never changes earlier adjusted values
(point-in-time safe).

Sources, best first:

- ``preclose``: Baostock's ``preclose`` is the exchange's ex-rights reference price, so
  ``F = close[t-1] / preclose[t]`` is exact on every ex-date.
- ``qfq_pair``: an Eastmoney ``qfq`` series of the same fund. Eastmoney qfq is piecewise *affine*:
  between corporate actions ``qfq = a * unadjusted + b`` (splits scale ``a``, cash distributions shift
  ``b``). We split the history into segments where one ``(a, b)`` fits within quote rounding, and on
  each boundary recover the reference price ``P* = (qfq[t-1] - b_after) / a_after``.
- ``inferred``: for funds only, a one-day move beyond the price limit that no factor explains can only
  be a unit split or consolidation; its factor is inferred as ``close[t-1] / open[t]`` and reported.
  Stocks are never inferred (IPO days and resumptions can legitimately exceed the limit): they are
  reported as unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

QUOTE_STEP = 0.001  # both series are quoted to 0.001 CNY (fund tick)
MIN_EFFECT = 1e-3  # factors within 0.1 % of 1 are quote rounding, not corporate actions
SPLIT_FIT_DAYS = 20  # days used to fit a new (a, b) after a split boundary


@dataclass(frozen=True)
class AdjustmentEvent:
    ex_date: date
    factor: float
    source: str  # preclose | qfq_pair | inferred
    note: str = ""


@dataclass(frozen=True)
class Jump:
    """A one-day move beyond the price limit that no known factor explains."""

    day: date
    move: float
    limit: float


def from_preclose(dates: pd.Series, close: np.ndarray, preclose: np.ndarray) -> list[AdjustmentEvent]:
    """Events where the exchange's reference price differs from the previous close."""
    close = np.asarray(close, dtype=float)
    preclose = np.asarray(preclose, dtype=float)
    prev = close[:-1]
    ref = preclose[1:]
    # preclose is quoted to 0.01 (stocks); anything within half a tick is the same price.
    differs = np.isfinite(ref) & (ref > 0) & (np.abs(prev - ref) > 0.005 + 1e-9)
    events = []
    for k in np.flatnonzero(differs):
        factor = prev[k] / ref[k]
        if abs(factor - 1) > MIN_EFFECT:
            events.append(AdjustmentEvent(pd.Timestamp(dates.iloc[k + 1]).date(), float(factor), "preclose",
                                          f"close {prev[k]:g} → reference {ref[k]:g}"))
    return events


def _fit(u: np.ndarray, q: np.ndarray, a_default: float = 1.0) -> tuple[float, float]:
    """Least-squares ``q = a * u + b``; with too few distinct prices keep ``a_default``."""
    if len(u) < 3 or np.ptp(u) == 0:
        return a_default, float(np.mean(q - a_default * u))
    a, b = np.polyfit(u, q, 1)
    return float(a), float(b)


def _tolerance(a: float) -> float:
    # Both prices are rounded to QUOTE_STEP: residuals stay within half a step of each, scaled by a.
    return 1.1 * QUOTE_STEP * (1 + abs(a))


def from_qfq_pair(unadjusted: pd.Series, qfq: pd.Series, limit: float = 0.10) -> list[AdjustmentEvent]:
    """Events recovered from an unadjusted close series and an Eastmoney qfq close series.

    Both series are indexed by date; only common dates are used. ``limit`` is the fund's daily price
    limit: an unadjusted move beyond it with no matching qfq move marks a split, after which the
    scale ``a`` is re-fitted. Resolution: both series are rounded to 0.001, so a cash distribution
    smaller than about two quote steps (0.002 CNY per unit) cannot be told from rounding and is not
    recovered; splits must be at least ``SPLIT_FIT_DAYS`` apart.
    """
    both = pd.concat({"u": unadjusted, "q": qfq}, axis=1, join="inner").dropna().sort_index()
    if len(both) < 2:
        return []
    u = both["u"].to_numpy(dtype=float)
    q = both["q"].to_numpy(dtype=float)
    days = both.index
    n = len(u)

    seg_end = n  # the segment being grown backwards is [t + 1, seg_end)
    a, b = _fit(u[max(0, n - SPLIT_FIT_DAYS):], q[max(0, n - SPLIT_FIT_DAYS):])
    events: list[AdjustmentEvent] = []
    for t in range(n - 2, -1, -1):
        if abs(q[t] - (a * u[t] + b)) <= _tolerance(a):
            continue
        # Maybe only the fit was imprecise: refit the whole segment including t.
        a2, b2 = _fit(u[t:seg_end], q[t:seg_end], a)
        if np.max(np.abs(q[t:seg_end] - (a2 * u[t:seg_end] + b2))) <= _tolerance(a2):
            a, b = a2, b2
            continue
        # Boundary between t and t+1: the ex-date is days[t+1]; fit the later segment precisely.
        a, b = _fit(u[t + 1:seg_end], q[t + 1:seg_end], a)
        reference = (q[t] - b) / a
        factor = u[t] / reference
        split = abs(u[t + 1] / u[t] - 1) > limit and abs(q[t + 1] / q[t] - 1) <= limit
        if abs(factor - 1) > MIN_EFFECT:
            kind = "split or large distribution" if split else "distribution"
            events.append(AdjustmentEvent(pd.Timestamp(days[t + 1]).date(), float(factor), "qfq_pair",
                                          f"{kind}: reference price {reference:.4f}"))
        seg_end = t + 1
        if split:
            lo = max(0, t - SPLIT_FIT_DAYS + 1)
            a, b = _fit(u[lo:t + 1], q[lo:t + 1], a)
        else:
            b = q[t] - a * u[t]
    return sorted(events, key=lambda e: e.ex_date)


def cumulative_factor(days: pd.DatetimeIndex, events: list[AdjustmentEvent]) -> np.ndarray:
    """Backward adjustment multiplier for each day: product of factors with ex-date <= day."""
    out = np.ones(len(days))
    for event in events:
        out[days >= pd.Timestamp(event.ex_date)] *= event.factor
    return out


def find_jumps(days: pd.DatetimeIndex, close: np.ndarray, events: list[AdjustmentEvent],
               limit_of, skip_first: int = 5, slack: float = 0.005) -> list[Jump]:
    """Close-to-close moves (after known factors) beyond ``limit_of(day)`` plus ``slack``.

    ``limit_of`` returns the price-limit fraction for a day, or None where there is none. The first
    ``skip_first`` rows (listing days, often without limits) are not checked.
    """
    close = np.asarray(close, dtype=float)
    adjusted = close * cumulative_factor(days, events)
    moves = adjusted[1:] / adjusted[:-1] - 1
    jumps = []
    for k in range(max(0, skip_first - 1), len(moves)):
        day = days[k + 1].date()
        limit = limit_of(day)
        if limit is not None and abs(moves[k]) > limit + slack:
            jumps.append(Jump(day, float(moves[k]), limit))
    return jumps


def infer_from_jumps(jumps: list[Jump], days: pd.DatetimeIndex, close: np.ndarray, open_: np.ndarray) -> list[AdjustmentEvent]:
    """Split factors for funds' unexplained jumps: previous close over the day's open."""
    position = {d.date(): i for i, d in enumerate(days)}
    events = []
    for jump in jumps:
        i = position[jump.day]
        factor = close[i - 1] / open_[i]
        events.append(AdjustmentEvent(jump.day, float(factor), "inferred",
                                      f"{jump.move:+.1%} close-to-close beyond the ±{jump.limit:.0%} limit"))
    return events
