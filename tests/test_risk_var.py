"""One-day VaR/ES: golden values from published tables, hand-computed windows, no look-ahead, invariants.

Sources of the golden numbers:
- McNeil, Frey & Embrechts, "Quantitative Risk Management" (Princeton, 2005), Section 2.2, Table 2.1:
  VaR and ES of a 10 000 portfolio with annualised volatility 20 % (daily sd 0.2 * 10000 / sqrt(250)),
  normal and variance-matched Student t4 losses, at levels 0.90 ... 0.995 (the same example is the
  help page of the book's R package QRMlib, functions ESnorm / ESst, "see page 45 of QRM").
- The normal multipliers every textbook quotes: VaR 1.645 / 2.326 sd, ES phi(z)/(1-level) = 2.063 / 2.665 sd;
  and the Basel Committee's remark in "Fundamental review of the trading book" (2013) that 97.5 % normal ES
  (2.338 sd) is close to 99 % normal VaR (2.326 sd).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from vnpy_rotation.risk.var import (
    METHODS,
    VarConfig,
    empirical_var_es,
    ewma_variance,
    fit_t_dof,
    normal_var_es,
    student_t_var_es,
    var_es_frame,
    var_es_next,
    var_es_series,
)

QRM_LEVELS = [0.90, 0.95, 0.975, 0.99, 0.995]
QRM_SD = 0.2 * 10000 / np.sqrt(250)


def days(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2024-01-02", periods=n)


def t_returns(n: int, seed: int = 0, scale: float = 0.01) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(scale * rng.standard_t(5, n) * np.sqrt(3 / 5), index=days(n))


# ---------------------------------------------------------------- closed forms against published numbers


def test_normal_rows_of_qrm_table_2_1():
    var = [float(normal_var_es(level, 0.0, QRM_SD)[0]) for level in QRM_LEVELS]
    es = [float(normal_var_es(level, 0.0, QRM_SD)[1]) for level in QRM_LEVELS]
    assert np.round(var, 1).tolist() == [162.1, 208.1, 247.9, 294.3, 325.8]
    assert np.round(es, 1).tolist() == [222.0, 260.9, 295.7, 337.1, 365.8]


def test_student_t4_var_row_of_qrm_table_2_1():
    var = [float(student_t_var_es(level, 4.0, 0.0, QRM_SD)[0]) for level in QRM_LEVELS]
    assert np.round(var, 1).tolist() == [137.1, 190.7, 248.3, 335.1, 411.8]


@pytest.mark.parametrize("level, var_mult, es_mult", [(0.95, 1.645, 2.063), (0.99, 2.326, 2.665),
                                                      (0.975, 1.960, 2.338)])
def test_normal_multipliers(level, var_mult, es_mult):
    var, es = normal_var_es(level)
    assert round(float(var), 3) == var_mult
    assert round(float(es), 3) == es_mult


def test_normal_mean_shifts_the_loss():
    var, es = normal_var_es(0.99, mean=0.001, sd=0.02)
    assert float(var) == pytest.approx(0.02 * 2.3263479 - 0.001, rel=1e-6)
    assert float(es) == pytest.approx(0.02 * 2.6652142 - 0.001, rel=1e-6)


@pytest.mark.parametrize("dof", [3.0, 4.0, 6.0, 30.0])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_student_t_es_closed_form_equals_the_tail_integral(dof, level):
    """ES = 1/(1-level) * integral of VaR_u du over (level, 1) (QRM eq. 2.23): the closed form checked
    against quadrature of the unit-variance t quantile function."""
    unit = np.sqrt((dof - 2) / dof)
    integral, _ = integrate.quad(lambda u: unit * stats.t.ppf(u, dof), level, 1.0, limit=200)
    var, es = student_t_var_es(level, dof)
    assert float(var) == pytest.approx(unit * stats.t.ppf(level, dof), rel=1e-12)
    assert float(es) == pytest.approx(integral / (1 - level), rel=1e-6)


def test_student_t_tends_to_normal():
    var_t, es_t = student_t_var_es(0.99, 1e6)
    var_n, es_n = normal_var_es(0.99)
    assert float(var_t) == pytest.approx(float(var_n), rel=1e-5)
    assert float(es_t) == pytest.approx(float(es_n), rel=1e-5)


# ---------------------------------------------------------------- historical, hand-computed


# twelve daily returns in percent; a window of 10, so day 10 sees r[0:10] and day 11 sees r[1:11]
HAND = [0.5, -3.0, 1.0, -1.0, 2.0, -0.5, -2.0, 0.3, 0.8, -4.0, -6.0, 1.5]


@pytest.mark.parametrize("level, day, var, es", [
    # 10 returns at 90 %: tail mass 1.0, so VaR is the 2nd worst loss and ES the worst one
    (0.90, 10, 3.0, 4.0),
    (0.90, 11, 4.0, 6.0),  # r[1:11] adds day 10's -6 %, which day 10 itself did not see
    # at 80 %: mass 2.0 -> VaR = 3rd worst, ES = mean of the two worst
    (0.80, 10, 2.0, 3.5),
    (0.80, 11, 3.0, 5.0),
    # at 95 %: mass 0.5 -> no whole observation beyond VaR; VaR = ES = the worst loss
    (0.95, 10, 4.0, 4.0),
    (0.95, 11, 6.0, 6.0),
    # at 75 %: mass 2.5 -> VaR = 3rd worst, ES = (L1 + L2 + 0.5 L3) / 2.5
    (0.75, 11, 3.0, (6.0 + 4.0 + 0.5 * 3.0) / 2.5),
])
def test_historical_window_by_hand(level, day, var, es):
    returns = pd.Series(np.array(HAND) / 100, index=days(len(HAND)))
    frame = var_es_series(returns, "historical", level, window=10)
    assert frame.iloc[:10].isna().all().all()
    assert frame["var"].iloc[day] == pytest.approx(var / 100)
    assert frame["es"].iloc[day] == pytest.approx(es / 100)


@pytest.mark.parametrize("n, level, var, es", [(100, 0.99, 99.0, 100.0), (10, 0.8, 8.0, 9.5),
                                               (250, 0.99, 248.0, (250 + 249 + 0.5 * 248) / 2.5)])
def test_empirical_tail_count_is_exact_at_round_levels(n, level, var, es):
    """n (1 - level) whole returns lie beyond VaR even where floating point gives 1.9999999999999996."""
    ordered = np.arange(1.0, n + 1.0)[None, :] - (n + 1.0)  # -n ... -1
    got_var, got_es = empirical_var_es(ordered, level)
    assert float(got_var[0]) == var
    assert float(got_es[0]) == pytest.approx(es)


def test_normal_method_uses_window_mean_and_sample_sd():
    returns = pd.Series(np.array(HAND) / 100, index=days(len(HAND)))
    frame = var_es_series(returns, "normal", 0.99, window=10)
    window = returns.iloc[1:11]
    var, es = normal_var_es(0.99, window.mean(), window.std(ddof=1))
    assert frame["var"].iloc[11] == pytest.approx(float(var))
    assert frame["es"].iloc[11] == pytest.approx(float(es))


def test_student_t_method_with_set_dof():
    returns = t_returns(300)
    frame = var_es_series(returns, "student_t", 0.95, window=250, t_dof=4.0)
    window = returns.iloc[40:290]
    var, es = student_t_var_es(0.95, 4.0, window.mean(), window.std(ddof=1))
    assert frame["var"].iloc[290] == pytest.approx(float(var))
    assert frame["es"].iloc[290] == pytest.approx(float(es))


# ---------------------------------------------------------------- EWMA and filtered historical simulation


def test_ewma_variance_is_the_riskmetrics_recursion():
    r = np.array(HAND) / 100
    lam = 0.94
    expected = [np.mean(r[:10] ** 2)]
    for x in r:
        expected.append(lam * expected[-1] + (1 - lam) * x * x)
    assert ewma_variance(r, lam, 10) == pytest.approx(np.array(expected), rel=1e-12)


def test_ewma_method_is_zero_mean_normal_with_the_recursive_sd():
    returns = t_returns(400, seed=3)
    frame = var_es_series(returns, "ewma", 0.99, window=250)
    sigma = np.sqrt(ewma_variance(returns.to_numpy(), 0.94, 250))
    assert frame["var"].iloc[300] == pytest.approx(2.3263479 * sigma[300], rel=1e-6)
    assert frame["es"].iloc[300] == pytest.approx(2.6652142 * sigma[300], rel=1e-6)


def test_fhs_rescales_standardised_residuals_by_todays_vol():
    returns = t_returns(300, seed=4)
    r = returns.to_numpy()
    sigma = np.sqrt(ewma_variance(r, 0.94, 250))
    day = 280
    residuals = np.sort(r[day - 250:day] / sigma[day - 250:day])
    # 250 residuals at 99 %: mass 2.5 -> VaR = 3rd worst, ES = (z1 + z2 + 0.5 z3) / 2.5, times sigma today
    frame = var_es_series(returns, "fhs", 0.99, window=250)
    assert frame["var"].iloc[day] == pytest.approx(-residuals[2] * sigma[day])
    assert frame["es"].iloc[day] == pytest.approx(-(residuals[0] + residuals[1] + 0.5 * residuals[2]) / 2.5
                                                  * sigma[day])


def test_fhs_reacts_to_a_volatility_jump_faster_than_historical():
    """After volatility triples, FHS and EWMA lift VaR within days; the 250-day history cannot yet."""
    rng = np.random.default_rng(7)
    r = np.concatenate([0.005 * rng.standard_normal(300), 0.015 * rng.standard_normal(20)])
    frame = var_es_frame(pd.Series(r, index=days(len(r))), VarConfig(levels=(0.99,)))
    last = frame.iloc[-1]
    assert last[("fhs", 0.99, "var")] > 1.5 * last[("historical", 0.99, "var")]
    assert last[("ewma", 0.99, "var")] > 1.5 * last[("normal", 0.99, "var")]


# ---------------------------------------------------------------- Student t maximum likelihood


def test_fitted_dof_recovers_the_generating_tail():
    rng = np.random.default_rng(11)
    x = rng.standard_t(5, size=(1, 20000))
    z = (x - x.mean()) / x.std(ddof=1)
    assert float(fit_t_dof(z)[0]) == pytest.approx(5.0, rel=0.12)


def test_fitted_dof_is_the_maximum_of_the_profile_likelihood():
    """Oracle: scipy's bounded scalar optimiser on the same unit-variance t likelihood."""
    rng = np.random.default_rng(12)
    rows = rng.standard_t(4, size=(3, 250))
    z = (rows - rows.mean(axis=1, keepdims=True)) / rows.std(axis=1, ddof=1, keepdims=True)
    fitted = fit_t_dof(z)
    def negloglik(v: float, row: np.ndarray) -> float:
        return -float(np.sum(stats.t.logpdf(row * np.sqrt(v / (v - 2)), v) + 0.5 * np.log(v / (v - 2))))

    for row, nu in zip(z, fitted):
        best = optimize.minimize_scalar(negloglik, args=(row,), bounds=(2.05, 202.0), method="bounded",
                                        options={"xatol": 1e-6}).x
        assert nu == pytest.approx(best, rel=5e-3)


def test_normal_data_fit_a_large_dof():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 20000))
    z = (x - x.mean()) / x.std(ddof=1)
    assert float(fit_t_dof(z)[0]) > 30.0


# ---------------------------------------------------------------- point in time


@pytest.mark.parametrize("method", METHODS)
def test_no_look_ahead(method):
    """Day t's forecast is unchanged when every return from day t on is replaced."""
    returns = t_returns(320, seed=5)
    config = VarConfig(methods=(method,), window=250)
    base = var_es_frame(returns, config)
    for t in (250, 251, 290):
        shocked = returns.copy()
        shocked.iloc[t:] = np.linspace(-0.3, 0.3, len(shocked) - t)
        moved = var_es_frame(shocked, config)
        pd.testing.assert_frame_equal(moved.iloc[: t + 1], base.iloc[: t + 1])
        # and the shock does show the next day: the forecasts are not constant
        assert not np.allclose(moved.iloc[t + 1].to_numpy(), base.iloc[t + 1].to_numpy())


def test_first_window_is_empty_and_next_is_tomorrow():
    returns = t_returns(260, seed=6)
    frame = var_es_frame(returns)
    assert frame.iloc[:250].isna().all().all()
    assert frame.iloc[250:].notna().all().all()
    # var_es_next is the row a further day would carry
    extended = pd.concat([returns, pd.Series([0.0], index=[returns.index[-1] + pd.offsets.BDay()])])
    row = var_es_frame(extended).iloc[-1]
    for estimate in var_es_next(returns):
        assert estimate.as_of == returns.index[-1]
        assert estimate.var == pytest.approx(row[(estimate.method, estimate.level, "var")])
        assert estimate.es == pytest.approx(row[(estimate.method, estimate.level, "es")])


def test_missing_days_are_skipped_not_filled():
    returns = t_returns(262, seed=8)
    holed = returns.copy()
    holed.iloc[0] = np.nan  # a pct_change() head
    holed.iloc[100] = np.nan
    frame = var_es_series(holed, "historical", 0.95, window=250)
    assert frame.index.equals(holed.index)
    assert frame.iloc[[0, 100]].isna().all().all()
    # the 250 valid returns before position 252 are positions 1..251 without 100
    valid = holed.iloc[1:252].dropna()
    assert len(valid) == 250
    var, es = empirical_var_es(np.sort(valid.to_numpy())[None, :], 0.95)
    assert frame["var"].iloc[252] == pytest.approx(float(var[0]))
    assert frame["es"].iloc[252] == pytest.approx(float(es[0]))


def test_too_short_history_gives_nan_not_an_error():
    frame = var_es_frame(t_returns(100))
    assert frame.isna().all().all()
    assert all(np.isnan(e.var) for e in var_es_next(t_returns(100)))


def test_unordered_or_repeated_dates_are_refused():
    returns = t_returns(260)
    with pytest.raises(ValueError, match="^returns:"):
        var_es_frame(returns.iloc[::-1])
    with pytest.raises(ValueError, match="^returns:"):
        var_es_frame(pd.concat([returns, returns.iloc[-1:]]))


@pytest.mark.parametrize("field, kwargs", [
    ("levels", {"levels": (0.99, 1.0)}),
    ("levels", {"levels": ()}),
    ("methods", {"methods": ("garch",)}),
    ("window", {"window": 5}),
    ("ewma_lambda", {"ewma_lambda": 1.0}),
    ("t_dof", {"t_dof": 1.5}),
])
def test_config_refuses_bad_values_naming_the_field(field, kwargs):
    with pytest.raises(ValueError, match=f"^{field}:"):
        VarConfig(**kwargs)


# ---------------------------------------------------------------- invariants


returns_strategy = st.lists(st.floats(-0.1, 0.1, allow_nan=False), min_size=35, max_size=60).filter(
    lambda xs: np.ptp(xs) > 1e-4)


@settings(max_examples=40)
@given(returns_strategy, st.floats(0.1, 50.0))
def test_invariants(values, scale):
    returns = pd.Series(values, index=days(len(values)))
    config = VarConfig(window=30, levels=(0.9, 0.95, 0.99))
    frame = var_es_frame(returns, config).iloc[30:]
    scaled = var_es_frame(returns * scale, config).iloc[30:]
    for method in METHODS:
        var = {level: frame[(method, level, "var")].to_numpy() for level in config.levels}
        es = {level: frame[(method, level, "es")].to_numpy() for level in config.levels}
        for level in config.levels:
            # ES >= VaR
            assert np.all(es[level] >= var[level] - 1e-12), method
            # scale equivariance: returns x c -> VaR, ES x c
            np.testing.assert_allclose(scaled[(method, level, "var")].to_numpy(), scale * var[level],
                                       rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(scaled[(method, level, "es")].to_numpy(), scale * es[level],
                                       rtol=1e-6, atol=1e-12)
        # VaR and ES grow with the level
        assert np.all(var[0.95] >= var[0.9] - 1e-12) and np.all(var[0.99] >= var[0.95] - 1e-12), method
        assert np.all(es[0.95] >= es[0.9] - 1e-12) and np.all(es[0.99] >= es[0.95] - 1e-12), method


# ---------------------------------------------------------------- speed


def test_ten_years_five_methods_two_levels_well_under_a_second():
    returns = t_returns(2520, seed=9)
    var_es_frame(returns)  # warm the imports
    best = min(_timed(lambda: var_es_frame(returns)) for _ in range(3))
    assert best < 0.8, f"{best:.3f} s"


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start
