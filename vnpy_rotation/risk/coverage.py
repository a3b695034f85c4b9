"""Exception backtests of VaR and ES forecasts: is the model's risk figure honest?

An exception is a day whose loss exceeds that day's VaR (``-return > var``; VaR and ES are positive loss
fractions as :mod:`vnpy_rotation.risk.var` produces them). The tests, their formulas and thresholds are
described in ``docs/risk/var.md``:

- Kupiec (1995) proportion of failures: the exception count against the binomial(T, 1 - level);
- Christoffersen (1998) independence and conditional coverage: do exceptions cluster?
- the Basel traffic light (250 days at 99 %: green 0-4, yellow 5-9, red >= 10) and its binomial
  generalisation to other sample sizes and levels;
- Acerbi & Szekely (2014) Z2: does ES cover the size of the losses beyond VaR?

Every test is a pure function returning a frozen record; :func:`backtest_report` runs them all and
:func:`weekly_reports` repeats that at every ISO week's last session over a trailing window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vnpy_rotation.risk.distributions import binomial_cdf, chi2_sf, xlog1py, xlogy
from vnpy_rotation.risk.var import normal_var_es, student_t_var_es

FloatArray = NDArray[np.float64]
# draws (scenarios x days) of one-day losses; the second argument is the number of scenarios
LossSampler = Callable[[np.random.Generator, int], FloatArray]

DEFAULT_TEST_LEVEL = 0.95


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: must lie in (0, 1), got {value}")


def _bernoulli_loglik(hits: float, misses: float, p: float) -> float:
    """log L = hits log p + misses log(1 - p), with 0 log 0 = 0."""
    return xlogy(hits, p) + xlog1py(misses, -p)


def _lr(restricted: float, unrestricted: float) -> float:
    # rounding can push a zero statistic a hair below zero; the LR statistic is >= 0 by construction
    return max(-2.0 * (restricted - unrestricted), 0.0)


@dataclass(frozen=True)
class CoverageConfig:
    """How the tests decide: the VaR tests' confidence and the ES test's simulation."""

    test_level: float = DEFAULT_TEST_LEVEL
    significance: float = 0.05
    scenarios: int = 10_000
    seed: int = 0
    distribution: Literal["normal", "student_t"] = "normal"
    dof: float = 5.0

    def __post_init__(self) -> None:
        _check_probability("test_level", self.test_level)
        _check_probability("significance", self.significance)
        if self.scenarios < 100:
            raise ValueError(f"scenarios: at least 100 are needed, got {self.scenarios}")
        if self.distribution not in ("normal", "student_t"):
            raise ValueError(f"distribution: normal or student_t, got {self.distribution!r}")
        if not self.dof > 2.0:
            raise ValueError(f"dof: must exceed 2, got {self.dof}")


# ---------------------------------------------------------------- Kupiec POF


@dataclass(frozen=True)
class KupiecResult:
    """Kupiec (1995) proportion-of-failures test, LR ~ chi2(1) under a correct model."""

    exceptions: int
    observations: int
    expected_rate: float
    observed_rate: float
    lr: float
    p_value: float
    test_level: float
    reject: bool


def kupiec_pof(exceptions: int, observations: int, level: float,
               test_level: float = DEFAULT_TEST_LEVEL) -> KupiecResult:
    """LR_POF = -2 ln[(1-p)^(T-N) p^N] + 2 ln[(1-N/T)^(T-N) (N/T)^N], p = 1 - level.

    Kupiec, "Techniques for verifying the accuracy of risk measurement models", J. Derivatives 3 (1995).
    Rejects (too many or too few exceptions) when the p-value is below 1 - ``test_level``.
    """
    _check_probability("level", level)
    _check_probability("test_level", test_level)
    if observations <= 0 or not 0 <= exceptions <= observations:
        raise ValueError(f"exceptions/observations: need 0 <= {exceptions} <= {observations} and > 0 days")
    p = 1.0 - level
    rate = exceptions / observations
    misses = observations - exceptions
    lr = _lr(_bernoulli_loglik(exceptions, misses, p), _bernoulli_loglik(exceptions, misses, rate))
    p_value = chi2_sf(1, lr)
    return KupiecResult(exceptions=exceptions, observations=observations, expected_rate=p,
                        observed_rate=rate, lr=lr, p_value=p_value, test_level=test_level,
                        reject=p_value < 1.0 - test_level)


# ---------------------------------------------------------------- Christoffersen


@dataclass(frozen=True)
class TransitionCounts:
    """n_ij = number of days in state j after a day in state i (0: no exception, 1: exception)."""

    n00: int
    n01: int
    n10: int
    n11: int


def transition_counts(hits: NDArray[np.bool_] | pd.Series | list[bool]) -> TransitionCounts:
    """The first-order Markov transition counts of an exception (hit) sequence of T days: T - 1 pairs."""
    seq = np.asarray(hits, dtype=bool)
    prev, cur = seq[:-1], seq[1:]
    return TransitionCounts(n00=int(np.sum(~prev & ~cur)), n01=int(np.sum(~prev & cur)),
                            n10=int(np.sum(prev & ~cur)), n11=int(np.sum(prev & cur)))


@dataclass(frozen=True)
class ChristoffersenResult:
    """Christoffersen (1998) independence (chi2(1)) and conditional coverage (chi2(2)) tests."""

    counts: TransitionCounts
    pi0: float
    pi1: float
    pi: float
    lr_ind: float
    p_value_ind: float
    lr_cc: float
    p_value_cc: float
    test_level: float
    reject_ind: bool
    reject_cc: bool


def independence_lr(counts: TransitionCounts) -> tuple[float, float, float, float]:
    """LR_ind and the estimates (pi0, pi1, pi) from transition counts.

    pi0 = n01 / (n00 + n01), pi1 = n11 / (n10 + n11), pi = (n01 + n11) / (all pairs);
    LR_ind = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)] + 2 ln[(1-pi0)^n00 pi0^n01 (1-pi1)^n10 pi1^n11].
    A state never visited (no exception yet, or no day after one) contributes nothing: 0 log 0 = 0.
    """
    n00, n01, n10, n11 = counts.n00, counts.n01, counts.n10, counts.n11
    total = n00 + n01 + n10 + n11
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / total if total else 0.0
    restricted = _bernoulli_loglik(n01 + n11, n00 + n10, pi)
    unrestricted = _bernoulli_loglik(n01, n00, pi0) + _bernoulli_loglik(n11, n10, pi1)
    return _lr(restricted, unrestricted), pi0, pi1, pi


def christoffersen(hits: NDArray[np.bool_] | pd.Series | list[bool], level: float,
                   test_level: float = DEFAULT_TEST_LEVEL) -> ChristoffersenResult:
    """Independence and conditional coverage of a hit sequence at VaR confidence ``level``.

    Christoffersen, "Evaluating interval forecasts", International Economic Review 39 (1998) 841-862.
    LR_cc = LR_POF (all T days) + LR_ind (T - 1 transitions), compared with chi2(2), as in Jorion,
    "Value at Risk" (3rd ed., 2007), ch. 6.
    """
    _check_probability("test_level", test_level)
    seq = np.asarray(hits, dtype=bool)
    counts = transition_counts(seq)
    lr_ind, pi0, pi1, pi = independence_lr(counts)
    pof = kupiec_pof(int(seq.sum()), len(seq), level, test_level)
    lr_cc = pof.lr + lr_ind
    p_ind = chi2_sf(1, lr_ind)
    p_cc = chi2_sf(2, lr_cc)
    alpha = 1.0 - test_level
    return ChristoffersenResult(counts=counts, pi0=pi0, pi1=pi1, pi=pi, lr_ind=lr_ind, p_value_ind=p_ind,
                                lr_cc=lr_cc, p_value_cc=p_cc, test_level=test_level,
                                reject_ind=p_ind < alpha, reject_cc=p_cc < alpha)


# ---------------------------------------------------------------- Basel traffic light


class Zone(str, Enum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


# Basel Committee on Banking Supervision, "Supervisory framework for the use of 'backtesting' in
# conjunction with the internal models approach to market risk capital requirements" (January 1996),
# Table 2: the yellow zone starts where the binomial probability of that many exceptions or fewer reaches
# 95 %, the red zone where it reaches 99.99 %; with 250 days at 99 % that is green 0-4, yellow 5-9,
# red 10 or more, and the plus factors added to the capital multiplier of 3 are these.
YELLOW_FROM = 0.95
RED_FROM = 0.9999
BASEL_PLUS_FACTOR = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


@dataclass(frozen=True)
class TrafficLightResult:
    """The zone of an exception count; ``plus_factor`` only for the Basel case (250 days at 99 %)."""

    exceptions: int
    observations: int
    level: float
    cumulative_probability: float
    zone: Zone
    yellow_from: int
    red_from: int
    plus_factor: float | None


def traffic_light(exceptions: int, observations: int = 250, level: float = 0.99) -> TrafficLightResult:
    """Zone by the binomial cumulative probability P(X <= exceptions), X ~ Bin(observations, 1 - level)."""
    _check_probability("level", level)
    if observations <= 0 or not 0 <= exceptions <= observations:
        raise ValueError(f"exceptions/observations: need 0 <= {exceptions} <= {observations} and > 0 days")
    # P(X <= k) for every k; a zone starts at the first count whose cumulative probability reaches its bound
    cdf = binomial_cdf(observations, 1.0 - level)
    cumulative = float(cdf[exceptions])
    yellow_from = int(np.searchsorted(cdf, YELLOW_FROM, side="left"))
    red_from = int(np.searchsorted(cdf, RED_FROM, side="left"))
    zone = Zone.GREEN if exceptions < yellow_from else Zone.YELLOW if exceptions < red_from else Zone.RED
    plus: float | None = None
    if observations == 250 and abs(level - 0.99) < 1e-12:
        plus = 0.0 if zone is Zone.GREEN else 1.0 if zone is Zone.RED else BASEL_PLUS_FACTOR[exceptions]
    return TrafficLightResult(exceptions=exceptions, observations=observations, level=level,
                              cumulative_probability=cumulative, zone=zone, yellow_from=yellow_from,
                              red_from=red_from, plus_factor=plus)


# ---------------------------------------------------------------- Acerbi-Szekely Z2


@dataclass(frozen=True)
class Z2Result:
    """Acerbi & Szekely (2014) Z2: ~0 for a correct ES, negative when ES understates the tail losses."""

    statistic: float
    critical_value: float
    p_value: float
    significance: float
    scenarios: int
    seed: int
    reject: bool


def z2_statistic(losses: FloatArray, var: FloatArray, es: FloatArray, level: float) -> FloatArray:
    """Z2 = 1 - sum_t L_t 1{L_t > VaR_t} / (T (1 - level) ES_t), along the last axis."""
    hits = losses > var
    return np.asarray(1.0 - np.sum(np.where(hits, losses / es, 0.0), axis=-1) / (losses.shape[-1] * (1.0 - level)),
                      dtype=np.float64)


def _standard_var_es(level: float, config: CoverageConfig) -> tuple[float, float]:
    """VaR and ES of the zero-location, unit-scale member of the configured family."""
    if config.distribution == "normal":
        var, es = normal_var_es(level)
    else:
        var, es = student_t_var_es(level, config.dof)
    return float(var), float(es)


def _location_scale(var: FloatArray, es: FloatArray, level: float,
                    config: CoverageConfig) -> tuple[FloatArray, FloatArray]:
    """Per-day loss location and scale of the family member whose VaR and ES at ``level`` are the given ones.

    Two numbers fix location and scale once the shape (normal, or unit-variance t) is chosen, so the
    simulation is "under the model" for any VaR/ES series without knowing how it was produced.
    """
    var_std, es_std = _standard_var_es(level, config)
    scale = np.maximum((es - var) / (es_std - var_std), 1e-12)
    return var - scale * var_std, scale


def location_scale_sampler(var: FloatArray, es: FloatArray, level: float,
                           config: CoverageConfig | None = None) -> LossSampler:
    """Full daily loss draws (scenarios x days) from the location-scale law matching each day's VaR and ES."""
    config = config or CoverageConfig()
    shift, scale = _location_scale(var, es, level, config)

    def sample(rng: np.random.Generator, scenarios: int) -> FloatArray:
        shape = (scenarios, len(var))
        if config.distribution == "normal":
            draws = rng.standard_normal(shape)
        else:
            draws = rng.standard_t(config.dof, shape) * np.sqrt((config.dof - 2.0) / config.dof)
        return np.asarray(shift + scale * draws, dtype=np.float64)

    return sample


def _z2_null(var: FloatArray, es: FloatArray, level: float, config: CoverageConfig,
             rng: np.random.Generator) -> FloatArray:
    """Z2 under the location-scale model, simulating only the tail days.

    With L_t = m_t + s_t X_t, a day is an exception exactly when X_t exceeds the standard VaR, which
    happens independently with probability 1 - level; its term L_t / ES_t = (m_t + s_t X_t) / ES_t needs
    X_t from the tail only. So each scenario draws the exception days as a Bernoulli process (geometric
    gaps) and the tail values by inverse transform: the same distribution as simulating every day,
    at (1 - level) of the cost, which keeps a weekly report over years fast.
    """
    from scipy import special  # lazily: a backtest's exception tests above do without scipy's import

    alpha = 1.0 - level
    days = len(var)
    shift, scale = _location_scale(var, es, level, config)
    intercept, slope = shift / es, scale / es
    width = int(days * alpha + 4.0 * np.sqrt(days * alpha) + 3)
    position = np.cumsum(rng.geometric(alpha, size=(config.scenarios, width)), axis=1) - 1
    while np.any(position[:, -1] < days):  # a scenario with more exceptions than columns: extend them all
        more = rng.geometric(alpha, size=(config.scenarios, width))
        position = np.hstack([position, position[:, -1:] + np.cumsum(more, axis=1)])
    scenario, column = np.nonzero(position < days)
    day = position[scenario, column]
    # X = F^-1(1 - alpha (1 - u)) = -F^-1(alpha (1 - u)) by symmetry: finite for every u in [0, 1)
    tail = alpha * (1.0 - rng.random(len(day)))
    if config.distribution == "normal":
        x = -special.ndtri(tail)
    else:
        x = -special.stdtrit(config.dof, tail) * np.sqrt((config.dof - 2.0) / config.dof)
    sums = np.bincount(scenario, weights=intercept[day] + slope[day] * x, minlength=config.scenarios)
    return np.asarray(1.0 - sums / (days * alpha), dtype=np.float64)


def acerbi_szekely_z2(returns: FloatArray | pd.Series, var: FloatArray | pd.Series,
                      es: FloatArray | pd.Series, level: float, config: CoverageConfig | None = None,
                      sampler: LossSampler | None = None) -> Z2Result:
    """The Z2 test of Acerbi & Szekely, "Backtesting Expected Shortfall", Risk, December 2014.

    The null distribution of Z2 is simulated under the model, with a seeded generator so a report is
    reproducible: by default the location-scale law of ``config.distribution`` matching each day's VaR
    and ES (tail days only, see :func:`_z2_null`); or any ``sampler`` of full loss paths. One-sided: reject when Z2 is below the ``config.significance`` quantile of the simulated
    Z2. The p-value is the Monte-Carlo one, (1 + #{simulated <= observed}) / (1 + scenarios).
    """
    config = config or CoverageConfig()
    _check_probability("level", level)
    scenarios, significance = config.scenarios, config.significance
    r = np.asarray(returns, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    e = np.asarray(es, dtype=np.float64)
    if not (r.shape == v.shape == e.shape) or r.ndim != 1 or len(r) == 0:
        raise ValueError("returns, var, es: one-dimensional arrays of the same non-zero length are needed")
    if not np.all(np.isfinite(r) & np.isfinite(v) & np.isfinite(e)):
        raise ValueError("returns, var, es: NaN or infinite values; align and drop them first")
    if np.any(e <= 0.0):
        raise ValueError("es: expected shortfall must be a positive loss on every day")
    observed = float(z2_statistic(-r, v, e, level))
    rng = np.random.default_rng(config.seed)
    if sampler is None:
        simulated = _z2_null(v, e, level, config, rng)
    else:
        # blocks keep memory at ~ block x T floats whatever the number of scenarios
        block = max(1, min(scenarios, 2_000_000 // len(r)))
        simulated = np.concatenate([z2_statistic(sampler(rng, min(block, scenarios - start)), v, e, level)
                                    for start in range(0, scenarios, block)])
    critical = float(np.quantile(simulated, significance))
    p_value = float((1 + np.sum(simulated <= observed)) / (1 + scenarios))
    return Z2Result(statistic=observed, critical_value=critical, p_value=p_value, significance=significance,
                    scenarios=scenarios, seed=config.seed, reject=observed < critical)


# ---------------------------------------------------------------- the report


def exceptions(returns: pd.Series, var: pd.Series) -> pd.Series:
    """True on the days whose loss exceeds VaR, on the days where both are known."""
    both = pd.concat([returns.rename("r"), var.rename("v")], axis=1).dropna()
    return (-both["r"] > both["v"]).rename("exception")


@dataclass(frozen=True)
class BacktestReport:
    """Every exception test on one series of forecasts at one confidence level."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    level: float
    observations: int
    exceptions: int
    expected_exceptions: float
    exception_rate: float
    kupiec: KupiecResult
    christoffersen: ChristoffersenResult
    traffic_light: TrafficLightResult
    es_test: Z2Result | None

    @property
    def var_rejected(self) -> bool:
        """The VaR failed a coverage test (Kupiec or conditional coverage) or sits in the red zone."""
        return self.kupiec.reject or self.christoffersen.reject_cc or self.traffic_light.zone is Zone.RED

    @property
    def es_rejected(self) -> bool:
        return self.es_test is not None and self.es_test.reject

    def row(self) -> dict[str, object]:
        """A flat record for a CSV or a report table."""
        out: dict[str, object] = {
            "start": self.start, "end": self.end, "level": self.level, "observations": self.observations,
            "exceptions": self.exceptions, "expected_exceptions": self.expected_exceptions,
            "exception_rate": self.exception_rate,
            "kupiec_lr": self.kupiec.lr, "kupiec_p": self.kupiec.p_value, "kupiec_reject": self.kupiec.reject,
            "ind_lr": self.christoffersen.lr_ind, "ind_p": self.christoffersen.p_value_ind,
            "ind_reject": self.christoffersen.reject_ind,
            "cc_lr": self.christoffersen.lr_cc, "cc_p": self.christoffersen.p_value_cc,
            "cc_reject": self.christoffersen.reject_cc,
            "zone": self.traffic_light.zone.value,
            "cumulative_probability": self.traffic_light.cumulative_probability,
            "plus_factor": self.traffic_light.plus_factor,
        }
        z2 = self.es_test
        # the same columns with or without an ES test, so weekly rows stack into one CSV
        out["z2_statistic"] = None if z2 is None else z2.statistic
        out["z2_critical_value"] = None if z2 is None else z2.critical_value
        out["z2_p"] = None if z2 is None else z2.p_value
        out["z2_reject"] = None if z2 is None else z2.reject
        out["var_rejected"] = self.var_rejected
        out["es_rejected"] = self.es_rejected
        return out


def _aligned(returns: pd.Series, var: pd.Series, es: pd.Series | None) -> pd.DataFrame:
    parts = [returns.rename("r"), var.rename("v")] + ([] if es is None else [es.rename("e")])
    return pd.concat(parts, axis=1).dropna().sort_index()


def _stamp(value: object) -> pd.Timestamp | None:
    return pd.Timestamp(value) if isinstance(value, (pd.Timestamp, np.datetime64)) else None


def _report(index: pd.Index, r: FloatArray, v: FloatArray, e: FloatArray | None, level: float,
            config: CoverageConfig) -> BacktestReport:
    if len(r) == 0:
        raise ValueError("returns, var: no day carries both a return and a forecast")
    hits = -r > v
    count, days = int(hits.sum()), len(hits)
    es_test = None
    if e is not None:
        # a flat book forecasts ES 0: no tail to measure, so those days sit out the ES test (not the VaR tests)
        risky = e > 0.0
        if risky.any():
            es_test = acerbi_szekely_z2(r[risky], v[risky], e[risky], level, config)
    return BacktestReport(start=_stamp(index[0]), end=_stamp(index[-1]), level=level,
                          observations=days, exceptions=count, expected_exceptions=days * (1.0 - level),
                          exception_rate=count / days,
                          kupiec=kupiec_pof(count, days, level, config.test_level),
                          christoffersen=christoffersen(hits, level, config.test_level),
                          traffic_light=traffic_light(count, days, level), es_test=es_test)


def _columns(frame: pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    e = frame["e"].to_numpy(dtype=np.float64) if "e" in frame else None
    return frame["r"].to_numpy(dtype=np.float64), frame["v"].to_numpy(dtype=np.float64), e


def backtest_report(returns: pd.Series, var: pd.Series, es: pd.Series | None = None, *, level: float,
                    config: CoverageConfig | None = None) -> BacktestReport:
    """Run every test on the days where the return and the forecasts are all known.

    ``var``/``es`` on day t must be the forecasts made before day t (as :func:`var_es_frame` gives them).
    Without ``es`` the ES test is skipped (``es_test`` is None).
    """
    frame = _aligned(returns, var, es)
    return _report(frame.index, *_columns(frame), level, config or CoverageConfig())


def weekly_reports(returns: pd.Series, var: pd.Series, es: pd.Series | None = None, *, level: float,
                   window: int = 250, config: CoverageConfig | None = None) -> list[BacktestReport]:
    """A report at the last session of every ISO week, over the trailing ``window`` backtestable days.

    Weeks before ``window`` days of forecasts exist are skipped, so every zone is judged on a full sample.
    The ES test runs once a week: ``config.scenarios`` sets its cost (2000 scenarios x 500 weeks ~ 1 s).
    """
    config = config or CoverageConfig(scenarios=2_000)
    frame = _aligned(returns, var, es)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError("returns: a DatetimeIndex is needed to find the ISO weeks")
    iso = frame.index.isocalendar()
    week = iso["year"].to_numpy() * 100 + iso["week"].to_numpy()
    last_of_week = np.flatnonzero(np.append(week[1:] != week[:-1], True))
    r, v, e = _columns(frame)
    spans = [slice(end + 1 - window, end + 1) for end in last_of_week if end + 1 >= window]
    return [_report(frame.index[span], r[span], v[span], None if e is None else e[span], level, config)
            for span in spans]


def reports_frame(reports: list[BacktestReport]) -> pd.DataFrame:
    """One row per report (see :meth:`BacktestReport.row`), indexed by the report's last day."""
    rows = [r.row() for r in reports]
    frame = pd.DataFrame(rows)
    return frame.set_index("end") if rows else frame
