"""VaR/ES exception backtests against published worked examples and hand-computed sequences.

Sources of the golden numbers:
- Jorion, "Value at Risk: The New Benchmark for Managing Financial Risk" (3rd ed., McGraw-Hill 2007),
  ch. 6 "Backtesting VaR": Table 6-2, the Kupiec (1995) 95 % non-rejection regions for the number of
  exceptions N by VaR probability p and sample size T; and end-of-chapter question 10 (a bank with
  6 exceptions to its 99 % VaR in 252 days, 4 of them following an exception day: LR_uc = 3.498,
  not rejected; LR_ind = 25.837, rejected -- the solution worked in the book's answer key and at
  bionicturtle.com/forum/threads/jorion-chapter-6-question-10.13424).
- Basel Committee on Banking Supervision, "Supervisory framework for the use of 'backtesting' in
  conjunction with the internal models approach to market risk capital requirements" (January 1996),
  Table 1 (cumulative probabilities of 0..10 exceptions in 250 days at 99 %) and Table 2 (zones and
  plus factors).
- The zone boundaries of the same binomial rule for 750 days at 99.5 % (yellow from 7, red from 13),
  worked at cfrm17.github.io/tradeLifecycle3.html ("Backtesting KPI's").
- Acerbi & Szekely, "Backtesting Expected Shortfall", Risk (December 2014): Z2 has expectation 0 under a
  correct model and its 5 % significance threshold for T = 250 days at alpha = 2.5 % is about -0.70,
  nearly the same for normal and Student t tails.
- Christoffersen, "Evaluating interval forecasts", International Economic Review 39 (1998): the
  transition-count formulas, evaluated by hand below.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnpy_rotation.risk.coverage import (
    BASEL_PLUS_FACTOR,
    CoverageConfig,
    TransitionCounts,
    Zone,
    acerbi_szekely_z2,
    backtest_report,
    christoffersen,
    exceptions,
    independence_lr,
    kupiec_pof,
    location_scale_sampler,
    reports_frame,
    traffic_light,
    transition_counts,
    weekly_reports,
    z2_statistic,
)
from vnpy_rotation.risk.var import normal_var_es

# ---------------------------------------------------------------- Kupiec


def test_jorion_question_10_unconditional_coverage():
    result = kupiec_pof(6, 252, 0.99)
    assert result.lr == pytest.approx(3.498, abs=1e-3)  # the book prints 3.498 for 3.4988
    assert result.lr < 3.841 and not result.reject
    assert result.observed_rate == pytest.approx(6 / 252)


# Jorion Table 6-2: (p, T) -> the open interval of N that is not rejected (lower bound None: none given)
JORION_TABLE_6_2 = {
    (0.01, 510): (1, 11), (0.01, 1000): (4, 17),
    (0.025, 255): (2, 12), (0.025, 510): (6, 21), (0.025, 1000): (15, 36),
    (0.05, 255): (6, 21), (0.05, 510): (16, 36), (0.05, 1000): (37, 65),
    (0.075, 255): (11, 28), (0.075, 510): (27, 51), (0.075, 1000): (59, 92),
    (0.10, 255): (16, 36), (0.10, 510): (38, 65), (0.10, 1000): (81, 120),
}


@pytest.mark.parametrize(("p", "days"), list(JORION_TABLE_6_2))
def test_jorion_table_6_2_nonrejection_regions(p, days):
    low, high = JORION_TABLE_6_2[(p, days)]
    accepted = [n for n in range(days + 1) if not kupiec_pof(n, days, 1 - p).reject]
    assert accepted == list(range(low + 1, high))


def test_jorion_table_6_2_first_cell_upper_bound():
    """The table's p = 1 %, T = 255 cell reads N < 7: 6 exceptions pass, 7 fail. (It gives no lower bound;
    the LR test itself rejects N = 0 there, LR = -2 * 255 * ln 0.99 = 5.13 > 3.84.)"""
    assert not kupiec_pof(6, 255, 0.99).reject
    assert kupiec_pof(7, 255, 0.99).reject
    assert kupiec_pof(0, 255, 0.99).lr == pytest.approx(-2 * 255 * math.log(0.99))


@pytest.mark.parametrize(("n", "days", "lr"), [
    (0, 250, -2 * 250 * math.log(0.99)),  # 0 log 0 = 0: only the null's term remains
    (250, 250, -2 * 250 * math.log(0.01)),  # every day an exception
    (3, 300, 0.0),  # exactly the expected rate
])
def test_kupiec_edge_counts(n, days, lr):
    result = kupiec_pof(n, days, 0.99)
    assert result.lr == pytest.approx(lr, abs=1e-12)
    assert 0.0 <= result.p_value <= 1.0


def test_kupiec_refuses_impossible_counts():
    with pytest.raises(ValueError, match="exceptions/observations"):
        kupiec_pof(5, 4, 0.99)
    with pytest.raises(ValueError, match="level"):
        kupiec_pof(1, 4, 99.0)


# ---------------------------------------------------------------- Christoffersen


def test_jorion_question_10_independence():
    # 6 exceptions, 4 of which follow an exception: two runs of three, over 252 transitions
    counts = TransitionCounts(n00=244, n01=2, n10=2, n11=4)
    lr_ind, pi0, pi1, pi = independence_lr(counts)
    assert round(lr_ind, 3) == 25.837
    assert (pi0, pi1, pi) == (2 / 246, 4 / 6, 6 / 252)
    # the same counts from a day-by-day sequence: a quiet day before the 252 days, two runs of three
    hits = np.zeros(253, dtype=bool)
    hits[[50, 51, 52, 200, 201, 202]] = True
    assert transition_counts(hits) == counts
    result = christoffersen(hits, 0.99)
    assert result.reject_ind and result.reject_cc
    assert result.lr_cc == pytest.approx(kupiec_pof(6, 253, 0.99).lr + 25.837, abs=1e-3)


def test_christoffersen_by_hand():
    # pairs: 01 11 11 10 00 00 00 00 00 -> n00 = 5, n01 = 1, n10 = 1, n11 = 2
    hits = [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    result = christoffersen(hits, 0.9)
    assert result.counts == TransitionCounts(n00=5, n01=1, n10=1, n11=2)
    assert (result.pi0, result.pi1, result.pi) == pytest.approx((1 / 6, 2 / 3, 1 / 3))
    by_hand = (-2 * (6 * math.log(2 / 3) + 3 * math.log(1 / 3))
               + 2 * (5 * math.log(5 / 6) + math.log(1 / 6) + math.log(1 / 3) + 2 * math.log(2 / 3)))
    assert result.lr_ind == pytest.approx(by_hand)
    assert result.lr_ind == pytest.approx(2.2314355, abs=1e-7)
    # LR_cc = LR_pof on the 10 days (3 exceptions where 1 is expected) + LR_ind
    pof = -2 * (7 * math.log(0.9) + 3 * math.log(0.1)) + 2 * (7 * math.log(0.7) + 3 * math.log(0.3))
    assert result.lr_cc == pytest.approx(pof + by_hand)


def test_christoffersen_independent_looking_sequence_scores_zero():
    # pairs: 00 01 11 10 00 00 01 10 00 -> pi0 = 2/6 = pi1 = 1/3 = pi: no evidence of clustering
    result = christoffersen([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], 0.9)
    assert result.counts == TransitionCounts(n00=4, n01=2, n10=2, n11=1)
    assert result.lr_ind == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("hits", "counts"), [
    ([0] * 20, (19, 0, 0, 0)),  # no exception: pi0 = pi = 0, the exception state never visited (0/0)
    ([0] * 19 + [1], (18, 1, 0, 0)),  # the only exception on the last day: pi0 = pi = 1/19, no day after it
    ([1] * 20, (0, 0, 0, 19)),  # all exceptions: pi1 = pi = 1
    ([1] + [0] * 19, (18, 0, 1, 0)),  # only the first day: pi0 = pi1 = pi = 0
])
def test_christoffersen_zero_count_states(hits, counts):
    """Every case has pi0 = pi1 where defined: LR_ind is exactly 0, never NaN (0 log 0 = 0)."""
    result = christoffersen(hits, 0.99)
    assert result.counts == TransitionCounts(*counts)
    assert result.lr_ind == 0.0 and result.p_value_ind == 1.0
    assert math.isfinite(result.lr_cc) and result.lr_cc == kupiec_pof(sum(hits), 20, 0.99).lr


@settings(max_examples=60)
@given(st.lists(st.booleans(), min_size=2, max_size=300), st.sampled_from([0.9, 0.95, 0.99]))
def test_christoffersen_properties(hits, level):
    result = christoffersen(hits, level)
    counts = result.counts
    assert counts.n00 + counts.n01 + counts.n10 + counts.n11 == len(hits) - 1
    assert result.lr_ind >= 0.0 and result.lr_cc >= result.lr_ind
    assert result.lr_cc == pytest.approx(kupiec_pof(sum(hits), len(hits), level).lr + result.lr_ind)
    assert 0.0 <= result.p_value_cc <= 1.0 and 0.0 <= result.p_value_ind <= 1.0


# ---------------------------------------------------------------- traffic light


BASEL_TABLE_1 = [0.0811, 0.2858, 0.5432, 0.7581, 0.8922, 0.9588, 0.9863, 0.9960, 0.9989, 0.9997, 0.9999]


@pytest.mark.parametrize("n", range(11))
def test_basel_1996_cumulative_probabilities_and_zones(n):
    result = traffic_light(n)
    assert round(result.cumulative_probability, 4) == BASEL_TABLE_1[n]
    assert result.zone is (Zone.GREEN if n <= 4 else Zone.YELLOW if n <= 9 else Zone.RED)
    assert (result.yellow_from, result.red_from) == (5, 10)
    assert result.plus_factor == (0.0 if n <= 4 else 1.0 if n >= 10 else BASEL_PLUS_FACTOR[n])


def test_basel_plus_factors():
    assert [traffic_light(n).plus_factor for n in range(4, 12)] == [0.0, 0.40, 0.50, 0.65, 0.75, 0.85, 1.0, 1.0]


def test_traffic_light_generalised_to_three_years_at_99_5():
    result = traffic_light(0, observations=750, level=0.995)
    assert (result.yellow_from, result.red_from) == (7, 13)
    assert traffic_light(6, 750, 0.995).zone is Zone.GREEN
    assert traffic_light(7, 750, 0.995).zone is Zone.YELLOW
    assert traffic_light(13, 750, 0.995).zone is Zone.RED
    assert traffic_light(12, 750, 0.995).plus_factor is None  # plus factors exist for the Basel case only


@settings(max_examples=30)
@given(st.integers(20, 800), st.sampled_from([0.95, 0.975, 0.99]))
def test_zones_are_ordered(days, level):
    zones = [traffic_light(n, days, level).zone for n in range(days + 1)]
    order = {Zone.GREEN: 0, Zone.YELLOW: 1, Zone.RED: 2}
    assert [order[z] for z in zones] == sorted(order[z] for z in zones)


# ---------------------------------------------------------------- Acerbi-Szekely Z2


def test_z2_by_hand():
    returns = np.array([-0.03, 0.01, -0.01, -0.025, 0.0])
    var = np.full(5, 0.02)
    es = np.full(5, 0.025)
    # exceptions on days 0 and 3: sum L/ES = 0.03/0.025 + 0.025/0.025 = 2.2; Z2 = 1 - 2.2 / (5 * 0.1)
    assert float(z2_statistic(-returns, var, es, 0.9)) == pytest.approx(1 - 2.2 / 0.5)


def _normal_model(days: int, seed: int, level: float, understate: float = 1.0):
    """Returns ~ N(0, sigma_t^2) with a moving sigma_t; the model's VaR/ES use sigma_t / understate."""
    rng = np.random.default_rng(seed)
    sigma = 0.01 * (1.0 + 0.5 * np.sin(np.arange(days) / 20.0))
    returns = sigma * rng.standard_normal(days)
    var, es = normal_var_es(level, 0.0, sigma / understate)
    return returns, var, es


def test_z2_critical_value_matches_acerbi_szekely_threshold():
    returns, var, es = _normal_model(250, seed=1, level=0.975)
    result = acerbi_szekely_z2(returns, var, es, 0.975, CoverageConfig(scenarios=20_000, seed=0))
    assert result.critical_value == pytest.approx(-0.70, abs=0.05)
    student = acerbi_szekely_z2(returns, var, es, 0.975,
                                CoverageConfig(scenarios=20_000, seed=0, distribution="student_t", dof=10.0))
    assert student.critical_value == pytest.approx(-0.70, abs=0.06)


@pytest.mark.parametrize("level", [0.975, 0.99])
def test_z2_near_zero_under_a_correct_model(level):
    stats = []
    for seed in range(20):
        returns, var, es = _normal_model(1000, seed=100 + seed, level=level)
        stats.append(float(z2_statistic(-returns, var, es, level)))
    assert abs(np.mean(stats)) < 0.1
    returns, var, es = _normal_model(1000, seed=7, level=level)
    assert not acerbi_szekely_z2(returns, var, es, level, CoverageConfig(scenarios=2000)).reject


@pytest.mark.parametrize("level", [0.975, 0.99])
def test_z2_significantly_negative_when_risk_is_understated(level):
    returns, var, es = _normal_model(1000, seed=7, level=level, understate=1.5)
    result = acerbi_szekely_z2(returns, var, es, level, CoverageConfig(scenarios=2000))
    assert result.statistic < result.critical_value < 0.0
    assert result.reject and result.p_value < 0.01


def test_z2_is_reproducible_and_seeded():
    returns, var, es = _normal_model(250, seed=3, level=0.975)
    first = acerbi_szekely_z2(returns, var, es, 0.975, CoverageConfig(scenarios=1000, seed=5))
    assert acerbi_szekely_z2(returns, var, es, 0.975, CoverageConfig(scenarios=1000, seed=5)) == first
    other = acerbi_szekely_z2(returns, var, es, 0.975, CoverageConfig(scenarios=1000, seed=6))
    assert other.critical_value != first.critical_value and other.statistic == first.statistic


def test_z2_refuses_nan_and_nonpositive_es():
    returns, var, es = _normal_model(20, seed=3, level=0.975)
    with pytest.raises(ValueError, match="NaN"):
        acerbi_szekely_z2(np.append(returns, np.nan), np.append(var, 0.1), np.append(es, 0.1), 0.975)
    with pytest.raises(ValueError, match="^es:"):
        acerbi_szekely_z2(returns, var, np.zeros(20), 0.975)


# ---------------------------------------------------------------- the report


def _days(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2024-01-02", periods=n)


def test_report_on_hand_written_days():
    index = _days(12)
    # the first two days have no forecast yet; exceptions on days 4 and 5 (back to back) and 9
    returns = pd.Series([0.0, -0.05, 0.01, -0.01, -0.03, -0.025, 0.0, 0.02, -0.019, -0.04, 0.01, 0.0],
                        index=index)
    var = pd.Series([np.nan, np.nan] + [0.02] * 10, index=index)
    es = pd.Series([np.nan, np.nan] + [0.03] * 10, index=index)
    report = backtest_report(returns, var, es, level=0.9, config=CoverageConfig(scenarios=500))
    assert (report.start, report.end) == (index[2], index[11])
    assert (report.observations, report.exceptions) == (10, 3)
    assert report.expected_exceptions == pytest.approx(1.0)
    assert report.exception_rate == pytest.approx(0.3)
    assert report.kupiec == kupiec_pof(3, 10, 0.9)
    # hits from day 2: 0 0 1 1 0 0 0 1 0 0
    assert report.christoffersen.counts == TransitionCounts(n00=4, n01=2, n10=2, n11=1)
    assert report.traffic_light == traffic_light(3, 10, 0.9)
    # Z2 = 1 - (0.03 + 0.025 + 0.04) / 0.03 / (10 * 0.1)
    assert report.es_test is not None
    assert report.es_test.statistic == pytest.approx(1 - (0.03 + 0.025 + 0.04) / 0.03)
    assert list(exceptions(returns, var)) == [False, False, True, True, False, False, False, True, False, False]
    row = report.row()
    assert row["exceptions"] == 3 and row["zone"] == report.traffic_light.zone.value
    assert row["z2_statistic"] == report.es_test.statistic


def test_report_without_es_and_with_a_flat_book():
    index = _days(6)
    returns = pd.Series([0.0, 0.0, -0.01, 0.0, 0.0, 0.0], index=index)
    var = pd.Series([0.0, 0.0, 0.0, 0.01, 0.01, 0.01], index=index)
    es = pd.Series([0.0, 0.0, 0.0, 0.015, 0.015, 0.015], index=index)
    without = backtest_report(returns, var, level=0.99)
    assert without.es_test is None and not without.es_rejected
    assert without.row()["z2_statistic"] is None  # the CSV keeps its columns
    report = backtest_report(returns, var, es, level=0.99, config=CoverageConfig(scenarios=200))
    # the loss on the flat day is a VaR exception; that day has no ES to test, the other three do
    assert report.exceptions == 1
    assert report.es_test is not None and report.es_test.statistic == pytest.approx(1.0)


def test_weekly_reports_end_on_each_iso_weeks_last_session():
    # Tue 2 Jan .. Fri 19 Jan 2024 with Friday 19 Jan a holiday, then Mon 22 and Tue 23 Jan
    index = pd.DatetimeIndex(list(pd.bdate_range("2024-01-02", "2024-01-18")) + [pd.Timestamp("2024-01-22"),
                                                                               pd.Timestamp("2024-01-23")])
    rng = np.random.default_rng(0)
    returns = pd.Series(0.01 * rng.standard_normal(len(index)), index=index)
    var = pd.Series(0.015, index=index)
    es = pd.Series(0.02, index=index)
    reports = weekly_reports(returns, var, es, level=0.95, window=5, config=CoverageConfig(scenarios=200))
    # the first week has 4 sessions < 5: skipped; then Fri 12, Thu 18 (holiday Friday) and Tue 23 so far
    assert [r.end for r in reports] == [pd.Timestamp(d) for d in ("2024-01-12", "2024-01-18", "2024-01-23")]
    assert all(r.observations == 5 for r in reports)
    assert reports[1].start == pd.Timestamp("2024-01-12")
    for r in reports:
        window = returns.loc[r.start:r.end]
        assert r.exceptions == int((-window > 0.015).sum())
    table = reports_frame(reports)
    assert list(table.index) == [r.end for r in reports]
    assert list(table["zone"]) == [r.traffic_light.zone.value for r in reports]


def test_weekly_reports_need_dates():
    series = pd.Series([0.0] * 10)
    with pytest.raises(TypeError, match="DatetimeIndex"):
        weekly_reports(series, series + 0.01, level=0.99, window=5)


@pytest.mark.parametrize(("distribution", "dof"), [("normal", 5.0), ("student_t", 4.0)])
def test_tail_only_null_matches_full_path_simulation(distribution, dof):
    """The default null simulates exception days only; simulating every day's loss gives the same law."""
    returns, var, es = _normal_model(250, seed=2, level=0.99)
    config = CoverageConfig(scenarios=20_000, seed=1, distribution=distribution, dof=dof)
    fast = acerbi_szekely_z2(returns, var, es, 0.99, config)
    full = acerbi_szekely_z2(returns, var, es, 0.99, config,
                             sampler=location_scale_sampler(var, es, 0.99, config))
    assert fast.critical_value == pytest.approx(full.critical_value, abs=0.05)
    assert fast.p_value == pytest.approx(full.p_value, abs=0.02)


def test_weekly_reports_over_ten_years_are_fast():
    index = pd.bdate_range("2014-01-01", periods=2520)
    rng = np.random.default_rng(4)
    returns = pd.Series(0.01 * rng.standard_normal(len(index)), index=index)
    var, es = (pd.Series(x, index=index) for x in normal_var_es(0.99, 0.0, np.full(len(index), 0.01)))
    start = time.perf_counter()
    reports = weekly_reports(returns, var, es, level=0.99)
    elapsed = time.perf_counter() - start
    assert len(reports) == len({(d.isocalendar()[0], d.isocalendar()[1]) for d in index[249:]})
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_real_csi300_fat_tails_fail_the_normal_model_and_pass_filtered_hs():
    """The bundled CSI 300 total-return index, 2017-01 .. 2024-09 (about 1 600 backtest days): daily equity
    returns have fat tails, so the 99 % normal VaR sees far more exceptions than the 1 % it promises and
    understates the tail (Z2), while filtered historical simulation passes both tests."""
    from conftest import BUNDLED

    from vnpy_rotation.risk.var import VarConfig, var_es_frame

    prices = pd.read_csv(BUNDLED / "index" / "h00300.csv", parse_dates=["date"], index_col="date")["close"]
    returns = prices.pct_change()
    frame = var_es_frame(returns, VarConfig(methods=("normal", "fhs"), levels=(0.99,)))
    config = CoverageConfig(scenarios=5000)
    normal = backtest_report(returns, frame[("normal", 0.99, "var")], frame[("normal", 0.99, "es")], level=0.99,
                             config=config)
    fhs = backtest_report(returns, frame[("fhs", 0.99, "var")], frame[("fhs", 0.99, "es")], level=0.99,
                          config=config)
    assert normal.observations == fhs.observations == len(returns) - 251
    assert normal.exceptions > 1.5 * normal.expected_exceptions
    assert normal.kupiec.reject and normal.traffic_light.zone is Zone.RED and normal.es_rejected
    assert not fhs.kupiec.reject and fhs.traffic_light.zone is Zone.GREEN and not fhs.es_rejected
    weekly = weekly_reports(returns, frame[("fhs", 0.99, "var")], frame[("fhs", 0.99, "es")], level=0.99)
    assert weekly[-1].end == returns.index[-1]
    assert all(r.observations == 250 for r in weekly)
