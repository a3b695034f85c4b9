"""The factor library: hand-computed values on tiny arrays, point-in-time as a property, and the panel
of a pool built from those factors (rows, dtypes, meta, files)."""

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vnpy_rotation.factors.library import (
    FACTORS,
    TRADING_DAYS,
    FactorInputs,
    compute_factors,
    max_drawdown,
    momentum,
    moving_average_gap,
    relative_strength,
    trend_quality,
    turnover_intensity,
    volatility,
)
from vnpy_rotation.factors.panel import META_KEYS, produce_panel, read_panel, write_panel
from vnpy_rotation.rotation.pools import read_pools


def inputs(adj, turnover=None, volume=None, benchmark=None) -> FactorInputs:
    adj = np.asarray(adj, dtype=float)
    has_bar = np.isfinite(adj)
    turnover = np.where(has_bar, 1e6, np.nan) if turnover is None else np.asarray(turnover, dtype=float)
    volume = np.where(has_bar, 1e5, np.nan) if volume is None else np.asarray(volume, dtype=float)
    return FactorInputs(adj_close=adj, has_bar=has_bar, volume=volume, turnover=turnover,
                        benchmark=None if benchmark is None else np.asarray(benchmark, dtype=float))


# Two funds over five sessions: A rises, dips and ends at its low; B rallies steadily.
ADJ = [[10.0, 20.0],
       [12.0, 21.0],
       [9.0, 22.0],
       [11.0, 23.0],
       [8.0, 24.0]]


def test_momentum_by_hand():
    values = momentum(inputs(ADJ), 2)
    assert np.isnan(values[:2]).all()
    assert values[2] == pytest.approx([9 / 10 - 1, 22 / 20 - 1])
    assert values[4] == pytest.approx([8 / 9 - 1, 24 / 22 - 1])


def test_volatility_by_hand():
    values = volatility(inputs(ADJ), 3)
    returns = [math.log(12 / 10), math.log(9 / 12), math.log(11 / 9), math.log(8 / 11)]
    assert np.isnan(values[:3, 0]).all()  # three returns need four prices
    assert values[3, 0] == pytest.approx(statistics.stdev(returns[:3]) * math.sqrt(TRADING_DAYS))
    assert values[4, 0] == pytest.approx(statistics.stdev(returns[1:]) * math.sqrt(TRADING_DAYS))


def test_max_drawdown_by_hand():
    values = max_drawdown(inputs(ADJ), 5)
    assert values[4, 0] == pytest.approx(8 / 12 - 1)  # peak 12, trough 8 afterwards
    assert values[4, 1] == 0.0  # never below its running peak
    assert max_drawdown(inputs(ADJ), 3)[2, 0] == pytest.approx(9 / 12 - 1)


def test_moving_average_gap_and_relative_strength_by_hand():
    assert moving_average_gap(inputs(ADJ), 3)[3, 1] == pytest.approx(23 / 22 - 1)
    bench = [100.0, 101.0, 102.0, 103.0, 110.0]
    rs = relative_strength(inputs(ADJ, benchmark=bench), 2)
    assert rs[4] == pytest.approx([8 / 9 - 1 - (110 / 102 - 1), 24 / 22 - 1 - (110 / 102 - 1)])
    assert np.isnan(relative_strength(inputs(ADJ), 2)).all()  # no benchmark, no value


def test_trend_of_an_exact_exponential_is_the_annualised_slope():
    growth = 0.002  # log price rises 0.2 % per session: slope × R² = 0.002 × 252 with R² = 1
    adj = np.column_stack([50 * np.exp(growth * np.arange(8)), 50 * np.exp(-growth * np.arange(8))])
    values = trend_quality(inputs(adj), 5)
    assert np.isnan(values[:4]).all()
    assert values[4:, 0] == pytest.approx(growth * TRADING_DAYS)
    assert values[4:, 1] == pytest.approx(-growth * TRADING_DAYS)
    assert trend_quality(inputs(np.full((6, 1), 7.0)), 5)[5, 0] == 0.0  # flat: no slope, R² taken as 0


def test_intensity_ignores_sessions_before_the_first_bar():
    adj = np.full((8, 2), 10.0)
    adj[:4, 1] = np.nan  # B lists on the fifth session
    turnover = np.where(np.isfinite(adj), 1e6, np.nan)
    values = turnover_intensity(inputs(adj, turnover=turnover), 2, 4)
    assert values[7, 0] == pytest.approx(1.0)
    assert np.isnan(values[:7, 1]).all()  # four own sessions are needed, not zeros from before listing
    assert values[7, 1] == pytest.approx(1.0)


def test_undefined_ratios_are_nan_not_inf():
    adj = np.full((70, 2), 10.0) * np.exp(np.linspace(0, 0.1, 70))[:, None]
    turnover = np.full(adj.shape, 1e6)
    turnover[55:62, 0] = 0.0  # a week without turnover: the 5/60 intensity is 0, its change divides by 0
    values = compute_factors(inputs(adj, turnover=turnover))
    for name, array in values.items():
        assert not np.isinf(array).any(), name
    assert np.isnan(values["turnover_chg_5_60"][66, 0]) and np.isfinite(values["turnover_chg_5_60"][66, 1])


def test_every_factor_declares_a_window_direction_and_description():
    for name, spec in FACTORS.items():
        assert spec.direction in (1, -1) and spec.window >= 2 and spec.description, name
    assert [n for n, s in FACTORS.items() if s.needs_benchmark] == ["rs_csi300_60"]


prices = arrays(np.float64, (40, 3), elements=st.floats(1.0, 100.0, allow_nan=False))


bars = arrays(np.bool_, (40, 3))


@settings(max_examples=25, deadline=None)
@given(before=prices, after=prices, gaps=bars, later_gaps=bars, cut=st.integers(0, 38))
def test_rows_up_to_t_ignore_every_later_row(before, after, gaps, later_gaps, cut):
    """Point in time: replacing rows after ``cut`` (prices, volumes, turnover, benchmark, which days have
    a bar) leaves rows up to ``cut`` of every factor unchanged."""
    def build(adj: np.ndarray, missing: np.ndarray) -> FactorInputs:
        has_bar = ~missing
        has_bar[0] = True
        return FactorInputs(adj_close=adj, has_bar=has_bar, volume=np.where(has_bar, adj * 1000, np.nan),
                            turnover=np.where(has_bar, adj * 1e5, np.nan), benchmark=adj.mean(axis=1))

    changed, changed_gaps = before.copy(), gaps.copy()
    changed[cut + 1:], changed_gaps[cut + 1:] = after[cut + 1:], later_gaps[cut + 1:]
    base, other = compute_factors(build(before, gaps)), compute_factors(build(changed, changed_gaps))
    for name in FACTORS:
        assert np.array_equal(base[name][:cut + 1], other[name][:cut + 1], equal_nan=True), name


# The panel of one pool on the bundled data (benchmark not attached: relative strength is skipped).

@pytest.fixture(scope="module")
def qdii(bundled_market):
    members = read_pools().pools["QDII"]
    return produce_panel(bundled_market, "QDII", members), members


def test_panel_rows_are_pool_sessions_with_a_bar(bundled_market, qdii):
    panel, members = qdii
    frame = panel.frame
    assert list(frame.index.names) == ["date", "vt_symbol"]
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert set(frame.index.get_level_values(1)) == set(members)
    # 513100 did not trade on 2022-01-13 (the other three did): that date is a session, without its row
    day = pd.Timestamp("2022-01-13")
    assert day in frame.index.get_level_values(0)
    assert (day, "513100.SSE") not in frame.index and (day, "513500.SSE") in frame.index
    assert all(frame[c].dtype == np.float64 for c in frame.columns)


def test_panel_values_are_the_library_values(bundled_market, qdii):
    panel, _ = qdii
    close = bundled_market.adjusted("close")[:, bundled_market.symbols.index("513500.SSE")]
    days = bundled_market.days
    t = days.get_loc(pd.Timestamp("2021-06-30"))
    assert panel.frame.loc[(days[t], "513500.SSE"), "mom_20"] == pytest.approx(close[t] / close[t - 20] - 1)
    assert panel.forward_return.loc[(days[t], "513500.SSE")] == pytest.approx(close[t + 1] / close[t] - 1)


def test_panel_meta_and_skipped_benchmark_factor(qdii):
    panel, members = qdii
    meta = panel.meta
    assert all(k in meta for k in META_KEYS)
    assert meta["members"] == members and meta["n_symbols"] == 4
    assert meta["n_dates"] == panel.frame.index.get_level_values(0).nunique()
    assert "rs_csi300_60" not in panel.factors and "rs_csi300_60" in meta["skipped_factors"]
    assert list(meta["factors"]) == panel.factors
    assert meta["factors"]["mom_20"] == {"direction": 1, "window": 21, "description": "20-session total return"}
    assert set(meta["production_factors"]) <= set(panel.factors) and len(meta["production_factors"]) >= 8


def test_panel_window_keeps_earlier_bars_as_warm_up(bundled_market, qdii):
    full, members = qdii
    start, end = pd.Timestamp("2020-01-02").date(), pd.Timestamp("2020-12-31").date()
    part = produce_panel(bundled_market, "QDII", members, start=start, end=end)
    assert part.meta["start"] == "2020-01-02" and part.meta["end"] == "2020-12-31"
    assert part.frame.notna().all().all()  # warmed up from the first row
    pd.testing.assert_frame_equal(part.frame, full.frame.loc[part.frame.index])


def test_write_panel_files_round_trip(tmp_path, qdii):
    panel, _ = qdii
    paths = write_panel(panel, tmp_path / "panel_QDII")
    names = sorted(p.name for p in (tmp_path / "panel_QDII").iterdir())
    assert names == sorted(["panel_FULL_20170118_20240930.parquet", "factor_summary_20170118_20240930.csv",
                            "panel_meta.json", "production_factors.txt"])
    assert [p.name for p in paths][0] == "panel_FULL_20170118_20240930.parquet"
    pd.testing.assert_frame_equal(read_panel(tmp_path / "panel_QDII").frame, panel.frame)
    summary = pd.read_csv(paths[1], keep_default_na=False)
    for column in ("factor", "coverage", "mean", "std", "min", "max", "zero_variance", "mean_rank_ic",
                   "duplicate_of"):
        assert column in summary.columns
    assert list(summary["factor"]) == panel.factors
    assert json.loads(paths[2].read_text())["n_dates"] == panel.meta["n_dates"]
    assert paths[3].read_text().split() == panel.meta["production_factors"]
