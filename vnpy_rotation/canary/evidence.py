"""What a stage measured, and the pure measures the gates compare with their thresholds.

Returns are daily fractions of capital (``0.01`` = +1 %); drawdowns are positive fractions of the equity at
the start of the window (``0.05`` = 5 % below the peak); basis points are 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import special

from ..risk.var import empirical_var_es

FloatArray = NDArray[np.float64]
BP = 1e4


def _array(values: object) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass(frozen=True, eq=False)  # arrays have no single truth value for ==
class StageEvidence:
    """The measured inputs over the CURRENT stage's sessions (the session just closed included).

    ``live_returns``: the candidate's realised daily returns on its own book; ``backtest_returns``: its own
    backtest at the stage's capital over the same sessions; ``backtest_history``: the version's daily
    returns over its research window (the drawdown distribution and the VaR come from it).
    ``slippage_bp`` / ``model_slippage_bp``: realised and modelled slippage, value-weighted over the stage's
    fills (None: no fill yet). ``submitted`` / ``filled``: order value of the candidate's part in CNY at the
    order's reference price (so a price move does not change the fill rate). ``halted``: the strategy's risk
    ladder was HALTED at some session of the stage.
    """

    sessions: int
    live_returns: FloatArray
    backtest_returns: FloatArray
    backtest_history: FloatArray
    slippage_bp: float | None = None
    model_slippage_bp: float | None = None
    submitted: float = 0.0
    filled: float = 0.0
    halted: bool = False

    def __post_init__(self) -> None:
        for name in ("live_returns", "backtest_returns", "backtest_history"):
            value = _array(getattr(self, name))
            if not np.isfinite(value).all():
                raise ValueError(f"{name}: NaN or infinite returns; align and clean them first")
            object.__setattr__(self, name, value)
        if self.sessions < 0 or len(self.live_returns) != self.sessions or len(self.backtest_returns) != self.sessions:
            raise ValueError(f"sessions: {self.sessions} sessions but {len(self.live_returns)} live and "
                             f"{len(self.backtest_returns)} backtest returns")
        # sums of many fills may exceed their orders' sum by a rounding error, never by more
        if self.submitted < 0 or not 0 <= self.filled <= self.submitted * (1 + 1e-9) + 1e-6:
            raise ValueError(f"filled/submitted: need 0 <= filled {self.filled} <= submitted {self.submitted}")


# ---------------------------------------------------------------- measures


def tracking_bp(live: FloatArray, backtest: FloatArray) -> float:
    """Mean |live − backtest| daily return difference, in basis points per session."""
    a, b = _array(live), _array(backtest)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError("live, backtest: non-empty series of the same length are needed")
    return float(np.mean(np.abs(a - b)) * BP)


def return_correlation(live: FloatArray, backtest: FloatArray) -> float | None:
    """Pearson correlation of the two series; None with fewer than two sessions or a constant series."""
    a, b = _array(live), _array(backtest)
    if len(a) != len(b):
        raise ValueError("live, backtest: series of the same length are needed")
    if len(a) < 2:
        return None
    # a flat series (or one whose spread underflows, e.g. 1e-310 apart) has no correlation
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = float(np.corrcoef(a, b)[0, 1])
    return corr if np.isfinite(corr) else None


def _window_drawdowns(windows: FloatArray) -> FloatArray:
    """Max drawdown of each row of returns, from an equity of 1 at the row's start (which counts as a peak)."""
    equity = np.cumprod(1.0 + windows, axis=-1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=-1), 1.0)
    return np.asarray(np.max(1.0 - equity / peak, axis=-1), dtype=np.float64)


def max_drawdown(returns: FloatArray) -> float:
    """Largest fall of equity below its running peak, as a fraction of the peak (0 for an empty series)."""
    r = _array(returns)
    return 0.0 if len(r) == 0 else max(float(_window_drawdowns(r[None, :])[0]), 0.0)


def rolling_drawdowns(history: FloatArray, horizon: int) -> FloatArray:
    """Max drawdown of every window of ``horizon`` consecutive sessions of ``history`` (O(n·h), vectorised)."""
    r = _array(history)
    if horizon < 1 or len(r) < horizon:
        raise ValueError(f"horizon: need 1 <= {horizon} <= {len(r)} sessions of history")
    return np.maximum(_window_drawdowns(sliding_window_view(r, horizon)), 0.0)


def rolling_drawdown_quantile(history: FloatArray, horizon: int, q: float) -> float:
    """The ``q``-quantile (linear interpolation) of the max drawdowns of every ``horizon``-session window."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q: must lie in [0, 1], got {q}")
    return float(np.quantile(rolling_drawdowns(history, horizon), q))


def historical_var(history: FloatArray, level: float) -> float:
    """One-day historical VaR of ``history`` at ``level`` (a positive loss fraction), as risk.var computes it."""
    r = np.sort(_array(history))
    if len(r) == 0:
        raise ValueError("history: no returns to take a VaR from")
    return float(empirical_var_es(r[None, :], level)[0][0])


def var_exceptions(returns: FloatArray, var: float) -> int:
    """Sessions whose loss exceeds VaR (``-return > var``), as risk.coverage counts them."""
    return int(np.sum(-_array(returns) > var))


def binomial_p_value(exceptions: int, sessions: int, level: float) -> float:
    """One-sided P(X >= exceptions), X ~ Binomial(sessions, 1 − level): how surprising this many is.

    ``special.bdtrc(k, n, p)`` is P(X > k), so P(X >= x) = bdtrc(x − 1, n, p) and 1 for x = 0.
    """
    if sessions < 0 or not 0 <= exceptions <= sessions:
        raise ValueError(f"exceptions/sessions: need 0 <= {exceptions} <= {sessions}")
    if exceptions == 0:
        return 1.0
    return float(min(max(special.bdtrc(exceptions - 1, sessions, 1.0 - level), 0.0), 1.0))


def value_weighted_bp(values: FloatArray, bps: FloatArray) -> float | None:
    """The traded-value-weighted mean of per-fill basis points (None when nothing traded)."""
    v, b = np.abs(_array(values)), _array(bps)
    if len(v) != len(b):
        raise ValueError("values, bps: one value per fill is needed")
    total = float(v.sum())
    return None if total <= 0.0 else float(np.dot(v, b) / total)
