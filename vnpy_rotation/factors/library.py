"""The factor library: vectorised, point-in-time factors on adjusted prices.

Every function maps day × symbol arrays to a day × symbol array whose row t uses rows up to t only
(rolling windows end at t; nothing is centred or shifted backwards). Rows are the trading days of
the pool being scored (see :func:`on_rows`): a QDII fund's 20-day momentum spans 20 of its own
sessions, never a foreign holiday's stale price. NaN where the window is not full or the symbol
has no bar at t.

Each factor has a direction: +1 when higher is better for a long-only rotation, -1 when lower is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TRADING_DAYS = 252


@dataclass(frozen=True)
class FactorInputs:
    """Panels one pool's factors are computed from (rows: that pool's trading days)."""

    adj_close: np.ndarray  # backward-adjusted close, forward-filled over a symbol's own gaps
    has_bar: np.ndarray  # bool: the symbol traded that day
    volume: np.ndarray  # shares; NaN without a bar
    turnover: np.ndarray  # CNY; NaN without a bar
    benchmark: np.ndarray | None = None  # the benchmark's close on the same rows (CSI 300)


def _rolling(values: np.ndarray, window: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` over trailing windows ending at each row (axis -1 of the window view); NaN before full."""
    out = np.full(values.shape, np.nan)
    if len(values) >= window:
        out[window - 1:] = fn(sliding_window_view(values, window, axis=0))
    return out


def _lagged_ratio(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full(values.shape, np.nan)
    if len(values) > window:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[window:] = values[window:] / values[:-window] - 1.0
    return out


def _log_returns(adj: np.ndarray) -> np.ndarray:
    out = np.full(adj.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(adj[1:] / adj[:-1])
    return out


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing sums over ``window`` rows (NaN before full, and wherever the window holds a NaN)."""
    out = np.full(values.shape, np.nan)
    if len(values) >= window:
        pad = np.zeros((1,) + values.shape[1:])
        missing = np.cumsum(np.vstack([pad, ~np.isfinite(values)]), axis=0)
        total = np.cumsum(np.vstack([pad, np.where(np.isfinite(values), values, 0.0)]), axis=0)
        full = (missing[window:] - missing[:-window]) == 0
        out[window - 1:] = np.where(full, total[window:] - total[:-window], np.nan)
    return out


def momentum(x: FactorInputs, window: int) -> np.ndarray:
    """Total return over ``window`` sessions."""
    return _lagged_ratio(x.adj_close, window)


def volatility(x: FactorInputs, window: int) -> np.ndarray:
    """Annualised standard deviation of daily log returns over ``window`` sessions."""
    r = _log_returns(x.adj_close)
    total, squares = _rolling_sum(r, window), _rolling_sum(r * r, window)
    variance = np.maximum(squares - total * total / window, 0.0) / (window - 1)
    return np.asarray(np.sqrt(variance * TRADING_DAYS), dtype=float)


def risk_adjusted_momentum(x: FactorInputs, window: int) -> np.ndarray:
    """Momentum divided by annualised volatility over the same window."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(momentum(x, window) / volatility(x, window), dtype=float)


def trend_quality(x: FactorInputs, window: int) -> np.ndarray:
    """Annualised OLS slope of log price on time, times the fit's R² (a steady trend scores highest).

    Closed form from trailing sums: with t = 0..n-1 inside the window, slope = S_ty_c / S_tt_c and
    R² = slope² S_tt_c / S_yy_c, where ``_c`` marks sums of centred products.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(x.adj_close)
    n = float(window)
    t_mean = (n - 1) / 2
    s_tt = ((np.arange(window) - t_mean) ** 2).sum()
    rows = np.arange(len(y), dtype=float).reshape((-1,) + (1,) * (y.ndim - 1))
    sum_y = _rolling_sum(y, window)
    sum_yy = _rolling_sum(y * y, window)
    # Σ t·y with t counted from the window's first row: Σ (row − first)·y = Σ row·y − first·Σ y.
    first = rows - (window - 1)
    sum_ty = _rolling_sum(rows * y, window) - first * sum_y
    s_ty = sum_ty - t_mean * sum_y
    s_yy = sum_yy - sum_y * sum_y / n
    slope = s_ty / s_tt
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(s_yy > 1e-14, np.clip(slope * slope * s_tt / s_yy, 0.0, 1.0), 0.0)
    return np.where(np.isfinite(sum_y), slope * TRADING_DAYS * r2, np.nan)


def max_drawdown(x: FactorInputs, window: int) -> np.ndarray:
    """Worst peak-to-trough fall inside the window (≤ 0)."""
    def worst(w: np.ndarray) -> np.ndarray:
        return np.asarray((w / np.maximum.accumulate(w, axis=-1) - 1.0).min(axis=-1), dtype=float)

    return _rolling(x.adj_close, window, worst)


def moving_average_gap(x: FactorInputs, window: int) -> np.ndarray:
    """Close over its ``window``-session moving average, minus one (> 0: above the trend filter)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(x.adj_close / _rolling(x.adj_close, window, lambda w: w.mean(axis=-1)) - 1.0, dtype=float)


def _intensity(values: np.ndarray, short: int, long: int) -> np.ndarray:
    # A session without a bar traded nothing; before the first bar the fund did not exist (NaN, not 0,
    # so a young fund's long mean is not diluted by days it was not listed).
    finite = np.isfinite(values)
    filled = np.where(finite, values, np.where(np.maximum.accumulate(finite, axis=0), 0.0, np.nan))
    short_mean = _rolling(filled, short, lambda w: w.mean(axis=-1))
    long_mean = _rolling(filled, long, lambda w: w.mean(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(long_mean > 0, short_mean / long_mean, np.nan)


def turnover_intensity(x: FactorInputs, short: int, long: int) -> np.ndarray:
    """Mean turnover (CNY) over ``short`` sessions relative to ``long`` sessions."""
    return _intensity(x.turnover, short, long)


def turnover_change(x: FactorInputs, short: int, long: int) -> np.ndarray:
    """Change of the turnover intensity over ``short`` sessions (rising or fading participation)."""
    return _lagged_ratio(turnover_intensity(x, short, long), short)


def volume_intensity(x: FactorInputs, short: int, long: int) -> np.ndarray:
    """Mean volume (shares) over ``short`` sessions relative to ``long`` sessions."""
    return _intensity(x.volume, short, long)


def relative_strength(x: FactorInputs, window: int) -> np.ndarray:
    """Momentum minus the benchmark's momentum over the same sessions (NaN without a benchmark)."""
    if x.benchmark is None:
        return np.full(x.adj_close.shape, np.nan)
    bench = _lagged_ratio(x.benchmark.reshape(-1, 1), window)
    return np.asarray(momentum(x, window) - bench, dtype=float)


@dataclass(frozen=True)
class FactorSpec:
    name: str
    direction: int  # +1 higher is better, -1 lower is better
    compute: Callable[[FactorInputs], np.ndarray]
    window: int  # sessions of history needed
    description: str
    needs_benchmark: bool = False  # all NaN when the inputs carry no benchmark close


def _spec(name: str, direction: int, window: int, fn: Callable[..., np.ndarray], *args: Any, description: str,
          needs_benchmark: bool = False) -> FactorSpec:
    return FactorSpec(name, direction, lambda x: fn(x, *args), window, description, needs_benchmark)


FACTORS: dict[str, FactorSpec] = {s.name: s for s in (
    _spec("mom_20", 1, 21, momentum, 20, description="20-session total return"),
    _spec("mom_60", 1, 61, momentum, 60, description="60-session total return"),
    _spec("mom_120", 1, 121, momentum, 120, description="120-session total return"),
    _spec("risk_adj_mom_60", 1, 61, risk_adjusted_momentum, 60, description="60-session return / volatility"),
    _spec("trend_60", 1, 60, trend_quality, 60, description="slope × R² of log price, 60 sessions"),
    _spec("vol_20", -1, 21, volatility, 20, description="annualised volatility, 20 sessions"),
    _spec("vol_60", -1, 61, volatility, 60, description="annualised volatility, 60 sessions"),
    _spec("mdd_60", 1, 60, max_drawdown, 60, description="max drawdown inside 60 sessions (≤ 0)"),
    _spec("ma_gap_120", 1, 120, moving_average_gap, 120, description="close / 120-session MA − 1"),
    _spec("turnover_int_20_120", 1, 120, turnover_intensity, 20, 120,
          description="mean turnover 20 / 120 sessions"),
    _spec("turnover_chg_5_60", 1, 65, turnover_change, 5, 60,
          description="5-session change of turnover intensity 5/60"),
    _spec("volume_int_5_60", 1, 60, volume_intensity, 5, 60, description="mean volume 5 / 60 sessions"),
    _spec("rs_csi300_60", 1, 61, relative_strength, 60, description="60-session return minus CSI 300's",
          needs_benchmark=True),
)}


def compute_factors(inputs: FactorInputs, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The named factors (default: all), NaN wherever the symbol has no bar that session.

    Non-finite results (a ratio over a zero denominator: no turnover in the reference window, zero
    volatility) are undefined values and come out as NaN, never ±inf.
    """
    out = {}
    for name in names or list(FACTORS):
        values = FACTORS[name].compute(inputs)
        out[name] = np.where(inputs.has_bar & np.isfinite(values), values, np.nan)
    return out


def on_rows(rows: np.ndarray, n_days: int, values: np.ndarray) -> np.ndarray:
    """Spread values computed on a pool's own sessions (``rows``) back onto the full day axis (NaN elsewhere)."""
    full = np.full((n_days,) + values.shape[1:], np.nan)
    full[rows] = values
    return full
