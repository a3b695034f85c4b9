"""Performance metrics of one backtest, from its daily equity (pure: numpy and pandas only).

Conventions (they matter when comparing with other tools):

- Returns are simple daily returns of ``equity``; the first day has none, so a backtest of N trading
  days has N - 1 returns, and a year is ``TRADING_DAYS`` of them.
- ``risk_free`` is an annual rate, turned into a daily one geometrically: ``(1 + rf) ** (1 / 252) - 1``.
- Sharpe and Sortino follow empyrical: mean daily excess return over its standard deviation (ddof=1),
  resp. over the downside deviation ``sqrt(mean(min(excess, 0) ** 2))``, times ``sqrt(252)``.
- VaR and ES are historical and one-day, reported as returns (negative numbers are losses):
  ``var_95 = np.quantile(r, 0.05)`` (linear interpolation) and ``es_95 = mean(r[r <= var_95])``.
- A ratio whose denominator is zero (flat equity, no losing day, no drawdown) is ``None``, not inf.
- Months are calendar months; the first month is measured from the first day's equity.
- The max drawdown's peak is the last running high before its (first) trough; its duration counts trading
  days from that peak to the first day back at the peak level, or to the last day if never recovered.
- Turnover is one-sided and annualised: traded value / 2 / mean equity / years.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

TRADING_DAYS = 252
COST_COLUMNS = ("commission", "stamp_duty", "transfer_fee", "slippage")
# Below this a standard deviation is float noise (e.g. a constant growth rate), not risk.
_TINY = 1e-12


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple daily returns ``e[t] / e[t-1] - 1``; the first day, which has no return, is dropped."""
    values = equity.astype(float)
    return (values / values.shift(1) - 1).iloc[1:]  # not pct_change: no NaN padding on any pandas


def monthly_returns(equity: pd.Series) -> pd.Series:
    """Compounded calendar-month returns, indexed by monthly ``Period``.

    Each month runs from the previous month's last equity to this month's last equity; the first month
    starts from the first day's equity (the capital before it is not part of ``equity``).
    """
    if equity.empty:
        return pd.Series(dtype=float, index=pd.PeriodIndex([], freq="M"))
    month_end, base = _month_bounds(equity.astype(float))
    return month_end / base - 1


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional distance below the running peak, ``equity / cummax - 1`` (always <= 0)."""
    values = equity.astype(float)
    return values / values.cummax() - 1


def rolling_sharpe(equity: pd.Series, window: int = 126) -> pd.Series:
    """Annualised Sharpe ratio (no risk-free rate) over a trailing window of daily returns.

    NaN until ``window`` returns exist, and where the window's returns do not vary.
    """
    r = daily_returns(equity)
    rolling = r.rolling(window, min_periods=window)
    std = rolling.std(ddof=1)
    return (rolling.mean() / std.where(std > _TINY)) * math.sqrt(TRADING_DAYS)


def compute_metrics(equity: pd.DataFrame, *, trades: pd.DataFrame | None = None,
                    benchmark: pd.Series | None = None, symbol_pnl: pd.DataFrame | None = None,
                    risk_free: float = 0.0, top_months: int = 3) -> dict[str, Any]:
    """Summary statistics of one backtest as a flat, JSON-serialisable dict (NaN becomes ``None``).

    ``equity`` is the engine's frame (one row per trading day; ``equity, cash, market_value``),
    ``trades`` its fills, ``benchmark`` a price or index level on dates (forward-filled onto the equity
    dates), ``symbol_pnl`` days × vt_symbols daily CNY profit used to attribute the best and worst months.
    """
    if equity is None or equity.empty or "equity" not in equity:
        raise ValueError("compute_metrics needs a non-empty equity frame with an 'equity' column")
    frame = equity.copy()
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index))
    frame = frame.sort_index()
    values = frame["equity"].astype(float)
    if not (np.isfinite(values.to_numpy()).all() and (values > 0).all()):
        raise ValueError("equity must be finite and positive on every day")
    r = daily_returns(values)
    n = len(r)
    years = n / TRADING_DAYS
    initial, final = float(values.iloc[0]), float(values.iloc[-1])
    total_return = final / initial - 1
    annual_return = _annualise(final / initial, n)

    rf_daily = (1 + risk_free) ** (1 / TRADING_DAYS) - 1
    excess = r - rf_daily
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    downside = math.sqrt(float((np.minimum(excess, 0) ** 2).mean())) if n else math.nan
    sharpe = excess.mean() / std * math.sqrt(TRADING_DAYS) if std > _TINY else None
    sortino = excess.mean() / downside * math.sqrt(TRADING_DAYS) if downside > _TINY else None

    months = monthly_returns(values)
    wins, losses = r[r > 0], r[r < 0]
    metrics: dict[str, Any] = {
        "start": values.index[0].date().isoformat(),
        "end": values.index[-1].date().isoformat(),
        "days": len(values),
        "initial_equity": initial,
        "final_equity": final,
        "total_return": total_return,
        "annual_return": annual_return,
        "annual_volatility": std * math.sqrt(TRADING_DAYS),
        "sharpe": sharpe,
        "sortino": sortino,
        **_drawdown_stats(values),
        "daily_win_rate": len(wins) / (len(wins) + len(losses)) if len(wins) + len(losses) else None,
        "monthly_win_rate": float((months > 0).mean()) if len(months) else None,
        "profit_loss_ratio": wins.mean() / abs(losses.mean()) if len(wins) and len(losses) else None,
        "exposure": _exposure(frame),
        **_tail_risk(r),
        **_trade_stats(trades, mean_equity=float(values.mean()), years=years),
        **_benchmark_stats(r, values.index, benchmark, annual_return),
    }
    mdd = metrics["max_drawdown"]
    metrics["calmar"] = annual_return / abs(mdd) if annual_return is not None and mdd < 0 else None
    contributions = _month_contributions(values, symbol_pnl)
    for key, ascending in (("best_months", False), ("worst_months", True)):
        ranked = months.sort_values(ascending=ascending, kind="stable").head(top_months)
        metrics[key] = [_month_entry(p, ret, contributions) for p, ret in ranked.items()]
    return {key: _plain(value) for key, value in metrics.items()}


def _annualise(growth: float, n: int) -> float | None:
    """Geometric annual rate of a growth factor earned over ``n`` daily returns (inf → None)."""
    if n == 0:
        return None
    with np.errstate(over="ignore"):  # a huge rate over a few days overflows: report None, not raise
        rate = float(np.power(growth, TRADING_DAYS / n)) - 1
    return rate if math.isfinite(rate) else None


def _months(index: pd.Index) -> pd.PeriodIndex:
    return pd.DatetimeIndex(index).to_period("M")


def _month_bounds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per month: the last equity, and the equity it is measured from (previous month's last)."""
    month_end = values.groupby(_months(values.index)).last()
    base = month_end.shift(1)
    base.iloc[0] = values.iloc[0]
    return month_end, base


def _drawdown_stats(values: pd.Series) -> dict[str, Any]:
    """The deepest drawdown, its peak, trough, recovery and length in trading days."""
    dd = drawdown(values)
    trough_pos = int(np.argmin(dd.to_numpy()))  # the first time the deepest point is reached
    depth = float(dd.iloc[trough_pos])
    if depth >= 0:
        return {"max_drawdown": 0.0, "max_drawdown_peak": None, "max_drawdown_trough": None,
                "max_drawdown_recovery": None, "max_drawdown_duration": 0}
    at_peak = dd.to_numpy() == 0  # exactly 0 where equity equals its running max
    # The peak is the last new high before the trough; recovery the first return to that level after it.
    peak_pos = int(np.flatnonzero(at_peak[:trough_pos])[-1])
    after = np.flatnonzero(at_peak[trough_pos:])
    recovery_pos = trough_pos + int(after[0]) if len(after) else None
    dates = values.index
    return {
        "max_drawdown": depth,
        "max_drawdown_peak": dates[peak_pos].date().isoformat(),
        "max_drawdown_trough": dates[trough_pos].date().isoformat(),
        "max_drawdown_recovery": None if recovery_pos is None else dates[recovery_pos].date().isoformat(),
        "max_drawdown_duration": (len(values) - 1 if recovery_pos is None else recovery_pos) - peak_pos,
    }


def _exposure(frame: pd.DataFrame) -> float | None:
    if "market_value" not in frame:
        return None
    return float((frame["market_value"].astype(float) / frame["equity"].astype(float)).mean())


def _tail_risk(r: pd.Series) -> dict[str, float | None]:
    """Historical one-day VaR and expected shortfall as return quantiles (negative = loss)."""
    out: dict[str, float | None] = {}
    for level, tail in ((95, 0.05), (99, 0.01)):  # literal tails: 1 - 0.95 is not exactly 0.05
        if r.empty:
            out[f"var_{level}"] = out[f"es_{level}"] = None
            continue
        var = float(np.quantile(r.to_numpy(), tail))
        out[f"var_{level}"] = var
        out[f"es_{level}"] = float(r[r <= var].mean())
    return out


def _trade_stats(trades: pd.DataFrame | None, *, mean_equity: float, years: float) -> dict[str, Any]:
    """Cost totals, fill count and annualised one-sided turnover."""
    if trades is None or trades.empty:
        return {"total_cost": 0.0, **{f"cost_{c}": 0.0 for c in COST_COLUMNS}, "trade_count": 0,
                "turnover": 0.0}
    costs = {f"cost_{c}": float(trades[c].sum()) if c in trades else 0.0 for c in COST_COLUMNS}
    traded = float(trades["value"].abs().sum())
    # One-sided: a full switch from A to B sells and buys the book once each, which counts as 1×.
    turnover = traded / 2 / mean_equity / years if years > 0 and mean_equity > 0 else None
    return {"total_cost": sum(costs.values()), **costs, "trade_count": len(trades), "turnover": turnover}


def _benchmark_stats(r: pd.Series, dates: pd.DatetimeIndex, benchmark: pd.Series | None,
                     annual_return: float | None) -> dict[str, float | None]:
    keys = ("benchmark_total_return", "benchmark_annual_return", "excess_return", "tracking_error",
            "information_ratio", "beta")
    out: dict[str, float | None] = dict.fromkeys(keys)
    if benchmark is None:
        return out
    level = benchmark.astype(float).copy()
    level.index = pd.DatetimeIndex(pd.to_datetime(level.index))
    level = level[~level.index.duplicated(keep="last")].sort_index().dropna()
    # A date the benchmark lacks takes its last known level (a flat day), also when the benchmark
    # carries dates the strategy did not trade; dates before its first level stay NaN.
    aligned = level.reindex(level.index.union(dates)).ffill().reindex(dates)
    valid = aligned.dropna()
    if len(valid) < 1:
        return out
    total = float(valid.iloc[-1] / valid.iloc[0] - 1)
    n = len(valid) - 1
    out["benchmark_total_return"] = total
    if n:
        out["benchmark_annual_return"] = _annualise(1 + total, n)
        if annual_return is not None and out["benchmark_annual_return"] is not None:
            out["excess_return"] = annual_return - out["benchmark_annual_return"]
    b = (aligned / aligned.shift(1) - 1).iloc[1:]
    both = pd.concat([r, b], axis=1, keys=["r", "b"]).dropna()
    if len(both) < 2:
        return out
    active = both["r"] - both["b"]
    te = float(active.std(ddof=1)) * math.sqrt(TRADING_DAYS)
    out["tracking_error"] = te
    out["information_ratio"] = float(active.mean()) * TRADING_DAYS / te if te > _TINY else None
    var_b = float(both["b"].var(ddof=1))
    out["beta"] = float(both["r"].cov(both["b"], ddof=1)) / var_b if var_b > _TINY ** 2 else None
    return out


def _month_contributions(values: pd.Series, symbol_pnl: pd.DataFrame | None) -> pd.DataFrame | None:
    """Months × symbols: each symbol's profit in the month over the equity the month started from.

    The first day's profit (the move from the initial capital to the first equity) is left out, as the
    first month is measured from the first day's equity: contributions then sum to the month's return.
    """
    if symbol_pnl is None:
        return None
    pnl = symbol_pnl.copy()
    pnl.index = pd.DatetimeIndex(pd.to_datetime(pnl.index))
    pnl = pnl[pnl.index > values.index[0]].astype(float).fillna(0.0)
    month_end, base = _month_bounds(values)
    by_month = pnl.groupby(_months(pnl.index)).sum().reindex(month_end.index, fill_value=0.0)
    return by_month.div(base, axis=0)


def _month_entry(period: pd.Period, ret: float, contributions: pd.DataFrame | None) -> dict[str, Any]:
    shares: dict[str, float] = {}
    if contributions is not None:  # largest first; symbols that did nothing that month are left out
        row = contributions.loc[period]
        shares = {str(sym): float(v) for sym, v in row[row != 0].sort_values(ascending=False).items()}
    return {"month": str(period), "return": float(ret), "contributions": shares}


def _plain(value: Any) -> Any:
    """Plain JSON types: numpy scalars to float/int, non-finite floats to None, recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
