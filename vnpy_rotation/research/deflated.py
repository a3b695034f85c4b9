"""The deflated Sharpe ratio (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection
Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014).

Every Sharpe ratio here is per observation (daily, not annualised), as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def expected_max_sharpe(trial_variance: float, n_trials: int) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less trials reaches by luck (paper, eq. 2)::

        E[max SR_n] ≈ sqrt(V[SR_n]) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))

    with γ the Euler–Mascheroni constant and ``V[SR_n]`` the variance of the trials' Sharpe ratios.
    One trial has nothing to be lucky against: 0.
    """
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1 or trial_variance <= 0:
        return 0.0
    inverse = _NORMAL.inv_cdf
    z = (1 - EULER_GAMMA) * inverse(1 - 1 / n_trials) + EULER_GAMMA * inverse(1 - 1 / (n_trials * math.e))
    return math.sqrt(trial_variance) * z


def probabilistic_sharpe(sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (PSR; paper, eq. 9 with SR₀ = benchmark)::

        PSR(SR₀) = Φ( (SR − SR₀) · sqrt(T − 1) / sqrt(1 − γ₃ SR + (γ₄ − 1)/4 · SR²) )

    ``n_obs`` is T, the number of returns; ``skew`` γ₃ and ``kurtosis`` γ₄ (not excess: 3 for a normal) are
    those of the returns. NaN when it cannot be computed.
    """
    if n_obs < 2 or not all(map(math.isfinite, (sharpe, benchmark, skew, kurtosis))):
        return math.nan
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe ** 2
    if spread <= 0:
        return math.nan
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread))


@dataclass(frozen=True)
class DeflatedSharpe:
    sharpe: float  # daily Sharpe ratio of the returns
    n_obs: int
    skew: float
    kurtosis: float
    n_trials: int
    trial_variance: float  # variance of the trials' daily Sharpe ratios
    expected_max_sharpe: float  # SR₀: the daily Sharpe the best of n_trials reaches by luck
    psr: float  # PSR(0): probability the true Sharpe is above 0
    dsr: float  # PSR(SR₀): the deflated Sharpe ratio

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in asdict(self).items()}


def deflated_sharpe(returns: Sequence[float] | np.ndarray, n_trials: int, trial_variance: float) -> DeflatedSharpe:
    """DSR of ``returns`` (the chosen strategy's per-period returns) after ``n_trials`` trials whose Sharpe
    ratios have variance ``trial_variance`` (paper, eq. 10: DSR = PSR(E[max SR_n]))."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    std = float(r.std(ddof=1)) if len(r) > 1 else math.nan
    sharpe = float(r.mean()) / std if std > 1e-12 else math.nan
    central = r - r.mean() if len(r) else r
    m2 = float((central ** 2).mean()) if len(r) else math.nan
    skew = float((central ** 3).mean()) / m2 ** 1.5 if m2 > 0 else math.nan
    kurtosis = float((central ** 4).mean()) / m2 ** 2 if m2 > 0 else math.nan
    benchmark = expected_max_sharpe(trial_variance, n_trials)
    return DeflatedSharpe(sharpe, len(r), skew, kurtosis, n_trials, float(trial_variance), benchmark,
                          probabilistic_sharpe(sharpe, 0.0, len(r), skew, kurtosis),
                          probabilistic_sharpe(sharpe, benchmark, len(r), skew, kurtosis))
