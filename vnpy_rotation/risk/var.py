"""One-day Value-at-Risk and Expected Shortfall from a daily return series, rolling and point-in-time.

Every figure is a positive fraction of capital lost (``0.021`` = a 2.1 % loss). The forecast for day ``t``
uses the returns up to day ``t-1`` only: row ``t`` of a series is what was known at the close of ``t-1``,
so comparing it with the return of day ``t`` is an honest out-of-sample backtest.

Methods (formulas and sources in ``docs/risk/var.md``):

- ``historical``: the empirical distribution of the last ``window`` returns. VaR is its lower quantile,
  ES the exact expected shortfall of that discrete distribution (Acerbi & Tasche 2002, "On the coherence
  of expected shortfall", J. Banking & Finance 26, eq. for the sample ES), so ES >= VaR always.
- ``normal``: window mean and standard deviation, closed form.
- ``student_t``: window mean and standard deviation, a unit-variance Student t whose degrees of freedom are
  set or fitted per window by maximum likelihood; ES by the closed form of McNeil, Frey & Embrechts,
  "Quantitative Risk Management" (2005), p. 45.
- ``ewma``: zero-mean normal with the RiskMetrics exponentially weighted variance (J.P. Morgan/Reuters,
  "RiskMetrics -- Technical Document", 4th ed. 1996, lambda 0.94 for daily data).
- ``fhs``: filtered historical simulation (Barone-Adesi, Giannopoulos & Vosper 1999; Hull & White 1998):
  the window's EWMA-standardised returns rescaled by today's EWMA volatility, then ``historical``.

Vectorised over days (``numpy.lib.stride_tricks.sliding_window_view``); the only Python loops run over
methods, levels and optimiser iterations, never over days.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

Method = Literal["historical", "normal", "student_t", "ewma", "fhs"]
METHODS: tuple[Method, ...] = get_args(Method)

# The fitted degrees of freedom stay in (2, 2 + 200]: above 2 the unit-variance t exists; at 200 it is a
# normal distribution to four decimals of its quantiles, so a larger value changes nothing.
DOF_BOUNDS = (2.05, 202.0)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class VarConfig:
    """What to compute: methods x levels over a rolling window of sessions."""

    methods: tuple[Method, ...] = METHODS
    levels: tuple[float, ...] = (0.95, 0.99)
    window: int = 250
    ewma_lambda: float = 0.94
    # None: fit the Student t degrees of freedom per window by maximum likelihood
    t_dof: float | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods: {unknown or 'empty'} not among {', '.join(METHODS)}")
        for level in self.levels:
            _check_level(level)
        if not self.levels:
            raise ValueError("levels: at least one confidence level is needed")
        if not isinstance(self.window, int) or self.window < 10:
            raise ValueError(f"window: an integer number of sessions >= 10 is needed, got {self.window!r}")
        if not 0.0 < self.ewma_lambda < 1.0:
            raise ValueError(f"ewma_lambda: must lie in (0, 1), got {self.ewma_lambda}")
        if self.t_dof is not None and not DOF_BOUNDS[0] <= self.t_dof <= DOF_BOUNDS[1]:
            raise ValueError(f"t_dof: must lie in [{DOF_BOUNDS[0]}, {DOF_BOUNDS[1]}] or be None, got {self.t_dof}")


@dataclass(frozen=True)
class VarEstimate:
    """The one-day forecast for the session after ``as_of``."""

    method: Method
    level: float
    var: float
    es: float
    window: int
    as_of: pd.Timestamp | None


def _check_level(level: float) -> None:
    if not 0.5 < level < 1.0:
        raise ValueError(f"levels: a confidence level must lie in (0.5, 1), got {level}")


# ---------------------------------------------------------------- closed forms (also the golden references)


def normal_var_es(level: float, mean: FloatArray | float = 0.0,
                  sd: FloatArray | float = 1.0) -> tuple[FloatArray, FloatArray]:
    """VaR and ES of a loss ``-R`` when the return ``R ~ N(mean, sd^2)``.

    VaR = sd z - mean, ES = sd phi(z) / (1 - level) - mean, with z = Phi^-1(level).
    """
    from scipy import special  # lazily: scipy's import costs a backtest more than its VaR

    z = float(special.ndtri(level))
    tail = float(np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)) / (1.0 - level)
    mean_a = np.asarray(mean, dtype=np.float64)
    sd_a = np.asarray(sd, dtype=np.float64)
    return sd_a * z - mean_a, sd_a * tail - mean_a


def student_t_var_es(level: float, dof: FloatArray | float, mean: FloatArray | float = 0.0,
                     sd: FloatArray | float = 1.0) -> tuple[FloatArray, FloatArray]:
    """VaR and ES of ``-R`` when ``R = mean + sd * T`` and ``T`` is a unit-variance Student t(``dof``).

    For the standard t with quantile q = t_nu^-1(level) and density g_nu (McNeil, Frey & Embrechts,
    "Quantitative Risk Management", 2005, p. 45): ES = g_nu(q) / (1 - level) * (nu + q^2) / (nu - 1).
    The unit-variance t is the standard t times sqrt((nu - 2) / nu).
    """
    nu = np.asarray(dof, dtype=np.float64)
    from scipy import stats  # lazily (see normal_var_es)

    q = stats.t.ppf(level, nu)
    unit = np.sqrt((nu - 2.0) / nu)
    es_std = stats.t.pdf(q, nu) / (1.0 - level) * (nu + q * q) / (nu - 1.0)
    mean_a = np.asarray(mean, dtype=np.float64)
    sd_a = np.asarray(sd, dtype=np.float64)
    return sd_a * unit * q - mean_a, sd_a * unit * es_std - mean_a


def empirical_var_es(sorted_returns: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """VaR and ES of the empirical distribution of each row of ``sorted_returns`` (ascending).

    With n returns and tail mass m = n (1 - level), k = floor(m) whole observations lie beyond VaR:
    VaR = -r_(k+1), ES = -(r_(1) + ... + r_(k) + (m - k) r_(k+1)) / m (Acerbi & Tasche 2002).
    """
    n = sorted_returns.shape[-1]
    mass = n * (1.0 - level)
    # the guard keeps 10 * (1 - 0.8) = 1.9999999999999996 at two whole observations, not one
    whole = int(np.floor(mass + 1e-9))
    if whole >= n:
        raise ValueError(f"level {level}: the tail holds the whole window of {n} returns")
    fraction = max(mass - whole, 0.0)
    var = -sorted_returns[..., whole]
    head = sorted_returns[..., :whole].sum(axis=-1)
    es = -(head + fraction * sorted_returns[..., whole]) / (whole + fraction)
    return var, es


# ---------------------------------------------------------------- Student t degrees of freedom


def _t_loglik(z2: FloatArray, nu: FloatArray) -> FloatArray:
    """Mean log-likelihood per observation of unit-variance t(nu) for squared standardised data z2."""
    c = nu - 2.0
    from scipy import special  # lazily (see normal_var_es)

    const = special.gammaln((nu + 1.0) / 2.0) - special.gammaln(nu / 2.0) - 0.5 * np.log(np.pi * c)
    return np.asarray(const - (nu + 1.0) / 2.0 * np.log1p(z2 / c[:, None]).mean(axis=1), dtype=np.float64)


def fit_t_dof(standardised: FloatArray, grid: int = 14, refine: int = 14) -> FloatArray:
    """Maximum-likelihood degrees of freedom of a unit-variance t, one per row of ``standardised``.

    The rows are already centred and scaled by their sample mean and standard deviation, so this is the
    profile likelihood in nu alone. A coarse grid in log(nu - 2) brackets the maximum, then golden-section
    search narrows all rows at once (precision ~0.2 % of nu - 2).
    """
    z2 = np.square(standardised)
    rows = z2.shape[0]
    lo, hi = np.log(DOF_BOUNDS[0] - 2.0), np.log(DOF_BOUNDS[1] - 2.0)
    u = np.linspace(lo, hi, grid)
    ll = np.stack([_t_loglik(z2, np.full(rows, 2.0 + np.exp(x))) for x in u], axis=1)
    best = ll.argmax(axis=1)
    a = u[np.maximum(best - 1, 0)]
    b = u[np.minimum(best + 1, grid - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc = _t_loglik(z2, 2.0 + np.exp(c))
    fd = _t_loglik(z2, 2.0 + np.exp(d))
    for _ in range(refine):
        left = fc >= fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
        fnew = _t_loglik(z2, 2.0 + np.exp(new))
        c, d, fc, fd = (np.where(left, new, d), np.where(left, c, new),
                        np.where(left, fnew, fd), np.where(left, fc, fnew))
    return np.asarray(2.0 + np.exp((a + b) / 2.0), dtype=np.float64)


# ---------------------------------------------------------------- rolling engine


def ewma_variance(returns: FloatArray, lam: float, seed_window: int) -> FloatArray:
    """RiskMetrics variance forecasts: element t (0..n) uses returns[:t] only.

    sigma2[t] = lam sigma2[t-1] + (1 - lam) r[t-1]^2, started at the mean square of the first
    ``seed_window`` returns. Forecasts before ``seed_window`` lean on that seed, so callers discard them.
    """
    seed = float(np.mean(np.square(returns[:seed_window])))
    from scipy import signal  # lazily (see normal_var_es)

    tail = signal.lfilter([1.0 - lam], [1.0, -lam], np.square(returns), zi=[lam * seed])[0]
    return np.concatenate([[seed], np.asarray(tail, dtype=np.float64)])


class _Rolling:
    """Per-window statistics of one return array, computed once and shared by methods and levels.

    Row j of every array is the forecast for position j + window (0..n), made from returns[j:j+window].
    """

    def __init__(self, returns: FloatArray, config: VarConfig) -> None:
        self.returns = returns
        self.config = config
        self.windows = sliding_window_view(returns, config.window)

    @cached_property
    def sorted(self) -> FloatArray:
        return np.sort(self.windows, axis=1)

    @cached_property
    def moments(self) -> tuple[FloatArray, FloatArray]:
        return self.windows.mean(axis=1), self.windows.std(axis=1, ddof=1)

    @cached_property
    def dof(self) -> FloatArray:
        if self.config.t_dof is not None:
            return np.full(self.windows.shape[0], float(self.config.t_dof))
        mean, sd = self.moments
        safe = np.where(sd > 0.0, sd, 1.0)
        return fit_t_dof((self.windows - mean[:, None]) / safe[:, None])

    @cached_property
    def ewma_sd(self) -> FloatArray:
        """EWMA volatility forecast for every position 0..n."""
        return np.sqrt(ewma_variance(self.returns, self.config.ewma_lambda, self.config.window))

    @cached_property
    def fhs_sorted(self) -> FloatArray:
        """The windows of EWMA-standardised returns, sorted."""
        sd = self.ewma_sd[:-1]
        residual = self.returns / np.where(sd > 0.0, sd, np.inf)
        return np.sort(sliding_window_view(residual, self.config.window), axis=1)

    def compute(self, method: Method, level: float) -> tuple[FloatArray, FloatArray]:
        """VaR and ES for positions window..n (one per window)."""
        if method == "historical":
            return empirical_var_es(self.sorted, level)
        if method == "normal":
            return normal_var_es(level, *self.moments)
        if method == "student_t":
            return student_t_var_es(level, self.dof, *self.moments)
        sd_now = self.ewma_sd[self.config.window:]
        if method == "ewma":
            return normal_var_es(level, 0.0, sd_now)
        var, es = empirical_var_es(self.fhs_sorted, level)
        return var * sd_now, es * sd_now


def _forecasts(returns: pd.Series, config: VarConfig) -> tuple[pd.Series, dict[tuple[Method, float], tuple[FloatArray, FloatArray]]]:
    """Forecasts for positions 0..n of the valid returns (NaN before the first full window)."""
    if not isinstance(returns, pd.Series):
        raise TypeError("returns: a pandas Series of daily returns is needed")
    clean = returns.dropna().astype(np.float64)
    # a forecast uses the rows before it: out-of-order or repeated dates would leak the future into it
    if not (clean.index.is_monotonic_increasing and clean.index.is_unique):
        raise ValueError("returns: the index must be strictly increasing (one row per session, in date order)")
    values = clean.to_numpy()
    if not np.isfinite(values).all():
        bad = clean.index[~np.isfinite(values)][0]
        raise ValueError(f"returns: an infinite return on {bad}")
    size = len(values) + 1
    out: dict[tuple[Method, float], tuple[FloatArray, FloatArray]] = {}
    rolling = _Rolling(values, config) if len(values) >= config.window else None
    for method in config.methods:
        for level in config.levels:
            var = np.full(size, np.nan)
            es = np.full(size, np.nan)
            if rolling is not None:
                v, e = rolling.compute(method, level)
                var[config.window:] = v
                es[config.window:] = e
            out[(method, level)] = (var, es)
    return clean, out


def var_es_frame(returns: pd.Series, config: VarConfig | None = None) -> pd.DataFrame:
    """VaR and ES for every day of ``returns``: columns (method, level, "var"|"es"), index as ``returns``.

    Row t uses the returns before t only; the first ``window`` valid days are NaN, and so are days whose
    own return is NaN (missing days are skipped, not filled).
    """
    config = config or VarConfig()
    clean, out = _forecasts(returns, config)
    data: dict[tuple[str, float, str], FloatArray] = {}
    for (method, level), (var, es) in out.items():
        data[(method, level, "var")] = var[:-1]
        data[(method, level, "es")] = es[:-1]
    frame = pd.DataFrame(data, index=clean.index)
    frame.columns = pd.MultiIndex.from_tuples(list(data), names=["method", "level", "measure"])
    return frame.reindex(returns.index)


def var_es_series(returns: pd.Series, method: Method, level: float, window: int = 250, *,
                  ewma_lambda: float = 0.94, t_dof: float | None = None) -> pd.DataFrame:
    """One method at one level: a frame with columns ``var`` and ``es`` indexed as ``returns``."""
    config = VarConfig(methods=(method,), levels=(level,), window=window, ewma_lambda=ewma_lambda,
                       t_dof=t_dof)
    frame = var_es_frame(returns, config)[method][level]
    frame.columns = list(frame.columns)
    return frame


def var_es_next(returns: pd.Series, config: VarConfig | None = None) -> list[VarEstimate]:
    """Tomorrow's forecasts, from every return up to the last one (the live figure after a close)."""
    config = config or VarConfig()
    clean, out = _forecasts(returns, config)
    as_of = pd.Timestamp(clean.index[-1]) if len(clean) and isinstance(clean.index, pd.DatetimeIndex) else None
    return [VarEstimate(method=method, level=level, var=float(var[-1]), es=float(es[-1]),
                        window=config.window, as_of=as_of)
            for (method, level), (var, es) in out.items()]
