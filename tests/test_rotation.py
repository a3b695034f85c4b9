"""The ETF rotation template: pools file, selection with hysteresis, capacity, alerts, snapshots, and
the strategy on the bundled real data (pool sessions, defensive asset, look-ahead with a benchmark)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vnpy_rotation.backtest.alerts import evaluate_alerts, triggered
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.lookahead import check_lookahead
from vnpy_rotation.backtest.snapshots import keep_snapshot
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.rotation.capacity import cap_order_sizes
from vnpy_rotation.rotation.pools import read_pools
from vnpy_rotation.rotation.selection import composite_score, percentile_ranks, select_with_hysteresis, slot_weights
from vnpy_rotation.strategies import create_strategy

# -- pools file --------------------------------------------------------------------------------------------

GOOD = """
pools:
  A: [510300.SSE, 159915.SZSE]
  B: [513100.SSE]
capital_constraints:
  A: {target_capital: 3000000, max_single_weight: 0.5, max_adv_pct: 0.05}
  B: {target_capital: 1000000, max_single_weight: 1.0, max_adv_pct: 0.03}
"""


def test_pools_file_gives_capital_shares(tmp_path):
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = read_pools(path)
    assert config.shares(["A", "B"]) == {"A": 0.75, "B": 0.25}
    assert config.shares(["B"]) == {"B": 1.0}


@pytest.mark.parametrize("change,field", [
    (("max_adv_pct: 0.05", "max_adv_pct: 1.5"), "max_adv_pct"),
    (("target_capital: 3000000", "target_capital: -1"), "target_capital"),
    (("B: [513100.SSE]", "B: [513100]"), "pools"),
    (("B: [513100.SSE]", "B: [510300.SSE]"), "pools"),  # a fund in two pools
    (("  B: {target_capital: 1000000, max_single_weight: 1.0, max_adv_pct: 0.03}\n", ""), "capital_constraints"),
    (("max_single_weight: 0.5,", "max_single_weight: 0.5, colour: red,"), "colour"),
])
def test_bad_pools_file_names_file_and_field(tmp_path, change, field):
    path = tmp_path / "pools.yaml"
    path.write_text(GOOD.replace(*change), encoding="utf-8")
    with pytest.raises(InputRejected) as caught:
        read_pools(path)
    text = str(caught.value)
    assert str(path) in text and field in text


def test_shipped_pools_file_is_valid_and_bundled():
    from vnpy_rotation.bundled import manifest

    config = read_pools()
    bundled = {s for members in manifest()["pools"].values() for s in members}
    assert set(config.pools) == {"A_SHARE", "QDII", "OTHER"}
    assert {s for members in config.pools.values() for s in members} <= bundled


# -- selection ------------------------------------------------------------------------------------------------

def test_hysteresis_keeps_a_holding_inside_the_buffer():
    scores = np.array([[4, 3, 2, 1], [3, 4, 2, 1], [1, 4, 3, 2], [1, 2, 3, 4]], dtype=float)
    eligible = np.ones_like(scores, dtype=bool)
    with_buffer = select_with_hysteresis(scores, eligible, top_n=1, buffer=1)
    without = select_with_hysteresis(scores, eligible, top_n=1, buffer=0)
    # Row 1: fund 0 falls to rank 2 but stays (within top 1 + 1); row 2 it is rank 4 and is replaced.
    assert with_buffer.argmax(axis=1).tolist() == [0, 0, 1, 3]
    assert without.argmax(axis=1).tolist() == [0, 1, 1, 3]


def test_ineligible_holding_is_dropped_and_nothing_is_chosen_without_candidates():
    scores = np.array([[4, 3, 2], [4, 3, 2], [4, 3, 2]], dtype=float)
    eligible = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 0]], dtype=bool)
    chosen = select_with_hysteresis(scores, eligible, top_n=2, buffer=5)
    assert chosen.tolist() == [[True, True, False], [False, True, True], [False, False, False]]
    weights, empty = slot_weights(chosen, top_n=2, max_single_weight=0.4)
    assert weights.tolist() == [[0.4, 0.4, 0.0], [0.0, 0.4, 0.4], [0.0, 0.0, 0.0]]
    assert empty.tolist() == [0.0, 0.0, 1.0]


def test_composite_score_orients_factors_and_needs_every_factor():
    mom = np.array([[0.1, 0.3, 0.2, 0.0]])
    vol = np.array([[0.1, 0.4, 0.2, np.nan]])  # lower volatility is better
    score = composite_score({"mom_60": mom, "vol_20": vol}, {"mom_60": 0.5, "vol_20": 0.5})
    # mom ranks (of 4): 2/4, 4/4, 3/4, 1/4; -vol ranks (of 3): 3/3, 1/3, 2/3
    expected = [0.5 * 2 / 4 + 0.5 * 1.0, 0.5 * 1.0 + 0.5 / 3, 0.5 * 3 / 4 + 0.5 * 2 / 3]
    assert score[0, :3] == pytest.approx(expected) and np.isnan(score[0, 3])


@given(arrays(np.float64, (6, 5), elements=st.floats(-1e6, 1e6) | st.just(np.nan)))
def test_percentile_ranks_are_in_unit_interval_and_order_preserving(values):
    ranks = percentile_ranks(values)
    assert np.array_equal(np.isnan(ranks), np.isnan(values))
    finite = ranks[np.isfinite(ranks)]
    assert ((finite > 0) & (finite <= 1)).all()
    for row, rank in zip(values, ranks):
        ok = np.isfinite(row)
        a, b = np.meshgrid(row[ok], row[ok])
        ra, rb = np.meshgrid(rank[ok], rank[ok])
        assert not ((a < b) & (ra >= rb)).any()


# -- capacity -------------------------------------------------------------------------------------------------

def test_adv_cap_cuts_orders_and_catches_up_later():
    # 1 M pool capital, 5 % of a 2 M average turnover = 100 000 CNY per order = 0.1 of the pool.
    desired = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 0.05]])
    adv = np.array([[2e6, 1e7], [2e6, 1e7], [2e6, np.nan]])
    allowed, binding = cap_order_sizes(desired, adv, 1_000_000, 0.05)
    assert allowed[:, 0] == pytest.approx([0.1, 0.2, 0.1])
    assert allowed[:, 1] == pytest.approx([0.0, 0.0, 0.0])  # no turnover known: cannot trade
    assert binding.tolist() == [[True, False], [True, False], [True, True]]


@given(arrays(np.float64, (8, 3), elements=st.floats(0, 1)), arrays(np.float64, (8, 3), elements=st.floats(0, 1e8)))
def test_adv_cap_never_exceeds_the_limit(desired, adv):
    allowed, _ = cap_order_sizes(desired, adv, 1_000_000, 0.05)
    steps = np.diff(np.vstack([np.zeros(3), allowed]), axis=0)
    assert (np.abs(steps) * 1_000_000 <= 0.05 * adv + 1e-6).all()


# -- alerts and snapshots -------------------------------------------------------------------------------------

def test_default_alert_rules():
    alerts = evaluate_alerts({"annual_return": 0.07, "max_drawdown": -0.31, "sharpe": 0.5,
                              "monthly_win_rate": float("nan")})
    by_metric = {a["metric"]: a["triggered"] for a in alerts}
    assert by_metric == {"annual_return": True, "max_drawdown": True, "sharpe": False, "monthly_win_rate": None}
    assert len(triggered(alerts)) == 2


def test_snapshots_keep_the_last_ten(tmp_path):
    source = tmp_path / "metrics.json"
    source.write_text("{}", encoding="utf-8")
    folder = tmp_path / "snapshots"
    made = [keep_snapshot([source, tmp_path / "absent.csv"], folder) for _ in range(12)]
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == sorted(p.name for p in made[-10:])
    assert all((folder / name / "metrics.json").exists() for name in kept)


# -- the strategy on real data --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def market_with_benchmark(bundled_market):
    from vnpy_rotation.backtest.loader import with_benchmark

    market, benchmark = with_benchmark(bundled_market)
    assert benchmark == "H00300.SSE"
    return market


def test_rotation_passes_the_lookahead_harness_with_a_benchmark(market_with_benchmark):
    strategy = create_strategy("etf_rotation", {"factors": {"mom_60": 0.5, "rs_csi300_60": 0.5}})
    checks = check_lookahead(strategy, market_with_benchmark, BacktestConfig(), cuts=4)
    assert len(checks) == 4 and all(c.ok for c in checks), [c.detail for c in checks]


def _closed(md, symbols, rows):
    """``md`` with ``symbols`` not trading on ``rows`` (a foreign holiday for QDII funds)."""
    cols = [md.symbols.index(s) for s in symbols]
    changed = {name: getattr(md, name).copy() for name in ("open", "high", "low", "close", "volume", "turnover")}
    for values in changed.values():
        values[np.ix_(rows, cols)] = np.nan
    suspended = md.suspended.copy()
    suspended[np.ix_(rows, cols)] = True
    return dataclasses.replace(md, **changed, suspended=suspended)


def test_each_pool_decides_and_scores_on_its_own_sessions(market_with_benchmark):
    from vnpy_rotation.factors.inputs import pool_factors

    strategy = create_strategy("etf_rotation", {"schedule": "every_k", "every_k": 1})
    qdii = strategy.pools_config.pools["QDII"]
    holiday = np.arange(1500, 1503)  # three sessions the QDII funds do not trade
    md = _closed(market_with_benchmark, qdii, holiday)
    decided = {d.pool: d for d in strategy.decisions(md)}
    assert not np.isin(holiday, decided["QDII"].rows).any()
    assert np.isin(holiday, decided["A_SHARE"].rows).all()
    # 20-session momentum after the holiday spans 20 of the pool's own sessions (23 calendar sessions).
    factors = pool_factors(md, qdii, ["mom_20"])
    row, j = 1510, 0
    adj = md.close[:, md.symbols.index(qdii[j])] * md.factor[:, md.symbols.index(qdii[j])]
    assert factors.values["mom_20"][row, j] == pytest.approx(adj[row] / adj[row - 23] - 1)
    assert np.isnan(factors.values["mom_20"][holiday, j]).all()


def test_defensive_asset_takes_empty_slots(market_with_benchmark):
    # An absolute filter nothing passes: every slot goes to the bond ETF (after its 20-session turnover).
    strategy = create_strategy("etf_rotation", {"pools": ["A_SHARE"], "absolute_threshold": 10.0})
    plan = strategy.targets(market_with_benchmark).frame
    held = plan.fillna(0.0)
    assert (held.drop(columns="511010.SSE") == 0).all().all()
    assert held["511010.SSE"].max() == pytest.approx(0.99)


def test_weights_respect_pool_shares_and_single_weight(market_with_benchmark):
    strategy = create_strategy("etf_rotation", {"top_n": 1, "min_adv": 0.0})
    plan = strategy.targets(market_with_benchmark)
    shares = strategy.pools_config.shares(strategy.pool_names)
    frame = plan.frame.fillna(0.0)
    for pool, members in strategy.pools_config.pools.items():
        cap = strategy.pools_config.capital_constraints[pool].max_single_weight
        assert (frame[members].drop(columns="511010.SSE", errors="ignore") <= cap * shares[pool] * 0.99 + 1e-12).all().all()
    assert (frame.sum(axis=1) <= 0.99 + 1e-9).all()
    bound = plan.table("capacity")
    assert set(bound["rule"]) <= {"max_adv_pct", "max_single_weight"}
    assert (bound.loc[bound.rule == "max_single_weight", "wanted_weight"] > 0).all()


def test_backtest_cli_writes_rotation_outputs_and_snapshots(tmp_path):
    out = tmp_path / "out"
    done = run_cli("backtest", "--strategy", "etf_rotation", "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["lookahead_ok"] and metrics["identities_ok"]
    assert [a["metric"] for a in metrics["alerts"]] == ["annual_return", "max_drawdown", "sharpe", "monthly_win_rate"]
    pools = pd.read_csv(out / "pool_metrics_summary.csv")
    assert pools["pool"].tolist() == ["A_SHARE", "QDII", "OTHER", "PORTFOLIO"]
    assert pools["capital_share"].iloc[:3].sum() == pytest.approx(1.0)
    assert pools.loc[3, "total_return"] == pytest.approx(metrics["total_return"])
    assert {"date", "pool", "vt_symbol", "rule"} <= set(pd.read_csv(out / "capacity.csv").columns)
    snapshots = list((tmp_path / ".vntrader" / "rotation_snapshots" / "etf_rotation").iterdir())
    assert len(snapshots) == 1 and (snapshots[0] / "metrics.json").exists()


@pytest.mark.parametrize("settings,field", [
    ({"factors": {"mom_7": 1.0}}, "factors"),
    ({"factors": {"mom_20": 0.0}}, "factors"),
    ({"absolute_factor": "nope"}, "absolute_factor"),
    ({"top_n": 0}, "top_n"),
    ({"pools": ["ASIA"]}, "pools"),
    ({"pools_file": "/nonexistent/pools.yaml"}, "/nonexistent/pools.yaml"),
])
def test_bad_rotation_settings_name_the_field(settings, field):
    with pytest.raises(InputRejected) as caught:
        create_strategy("etf_rotation", settings, "my.yaml: strategy")
    assert field in str(caught.value)
