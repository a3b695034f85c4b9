"""The few distribution functions the exception tests need on every backtest, in closed form without scipy.

scipy's import costs a ``run.py backtest`` about 0.2 s (more than the backtest itself), and the report's risk
section needs only these: the chi-squared survival function for one and two degrees of freedom, the binomial
cumulative distribution and ``x log y`` with 0 log 0 = 0. The closed forms are exact identities:

- chi2(1): P(X > x) = erfc(sqrt(x / 2)), since X = Z^2 with Z standard normal;
- chi2(2): P(X > x) = exp(-x / 2), the exponential law with mean 2;
- binomial: P(X = k + 1) / P(X = k) = (n - k) / (k + 1) * p / (1 - p), summed in log space from
  P(X = 0) = (1 - p)^n.

(Abramowitz & Stegun, "Handbook of Mathematical Functions" (1964), 26.4.4-26.4.5 for chi-squared; 26.1.20
for the binomial.) Tests compare each with scipy.special.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def xlogy(x: float, y: float) -> float:
    """x log y, 0 when x is 0 (whatever y)."""
    return 0.0 if x == 0 else x * math.log(y)


def xlog1py(x: float, y: float) -> float:
    """x log(1 + y), 0 when x is 0 (whatever y)."""
    return 0.0 if x == 0 else x * math.log1p(y)


def chi2_sf(dof: int, x: float) -> float:
    """P(X > x) for X chi-squared with ``dof`` (1 or 2) degrees of freedom."""
    if x <= 0.0:
        return 1.0
    if dof == 1:
        return math.erfc(math.sqrt(x / 2.0))
    if dof == 2:
        return math.exp(-x / 2.0)
    raise ValueError(f"dof: 1 or 2, got {dof}")


def binomial_cdf(n: int, p: float) -> NDArray[np.float64]:
    """P(X <= k) for k = 0 … n, X ~ Bin(n, p), 0 < p < 1."""
    if n < 0 or not 0.0 < p < 1.0:
        raise ValueError(f"binomial: need n >= 0 and 0 < p < 1, got n={n}, p={p}")
    k = np.arange(n, dtype=np.float64)
    steps = np.log((n - k) / (k + 1.0)) + (math.log(p) - math.log1p(-p))
    log_pmf = n * math.log1p(-p) + np.concatenate([[0.0], np.cumsum(steps)])
    cdf: NDArray[np.float64] = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)
    return cdf
