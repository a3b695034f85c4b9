"""The synthetic whole-market generator: its statistics, its agreement with the project's own rule code, and a
full-rules VQM backtest on it (accounting identities, limit / suspension / T+1 / lot invariants, no look-ahead
through the fundamentals)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.backtest.identities import check_identities
from vnpy_rotation.data.market_data import round_to_tick
from vnpy_rotation.fundamentals.pit import statutory_deadline
from vnpy_rotation.market.instruments import lookup
from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
from vnpy_rotation.research.synthetic_fundamentals import MIN_LAG, draw_index, draw_reports, vqm_market
from vnpy_rotation.research.synthetic_store import open_market, save_market
from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

# Two years around ChiNext's reform (10 % → 20 % from 2020-08-24), 300 stocks.
SPEC = SyntheticSpec(stocks=300, start=date(2020, 1, 1), end=date(2021, 12, 31), seed=7)


@pytest.fixture(scope="module")
def drawn():
    synthetic = generate(SPEC)
    return synthetic, build(synthetic)


@pytest.fixture(scope="module")
def prepared(drawn):
    synthetic, market = drawn
    reports, index = draw_reports(synthetic), draw_index(synthetic)
    settings = VqmSettings(symbols=list(market.symbols), top_n=30)
    return reports, index, settings, vqm_market(market, synthetic, reports, index, settings)


def listed_mask(synthetic, market) -> np.ndarray:
    first = np.array([market.days.searchsorted(pd.Timestamp(synthetic.first_days[s])) for s in market.symbols])
    return np.arange(len(market.days))[:, None] >= first[None, :]


def test_suspension_and_limit_shares_are_as_configured(drawn):
    synthetic, market = drawn
    listed = listed_mask(synthetic, market)
    traded = listed & ~market.suspended
    assert 0.008 <= (market.suspended & listed).sum() / listed.sum() <= 0.012
    assert 0.016 <= (synthetic.limit_event != 0).sum() / traded.sum() <= 0.024
    assert np.isnan(market.close[market.suspended]).all() and np.isnan(market.volume[market.suspended]).all()
    assert market.suspended[~listed].all()  # no bar before the listing


def test_every_limit_close_is_the_boards_limit_price(drawn):
    """Each limit-day close equals round_to_tick(reference × (1 ± pct)) with pct from Instrument.price_limit
    (board, date, ST) and the loader's limit arrays; no other close touches a limit; bars stay inside them."""
    synthetic, market = drawn
    rows, cols = np.nonzero(synthetic.limit_event)
    assert len(rows) > 100
    pcts = set()
    for i, j in zip(rows, cols):
        instrument = lookup(market.symbols[j])
        pct = instrument.price_limit(market.days[i].date(), bool(market.is_st[i, j]))
        step = market.factor[i, j] / market.factor[i - 1, j]
        reference = market.last_close[i - 1, j] / (1.0 if abs(step - 1) < 1e-12 else step)
        sign = synthetic.limit_event[i, j]
        expected = round_to_tick(reference * (1 + sign * pct), instrument.rules.tick)
        assert market.close[i, j] == expected == (market.limit_up if sign > 0 else market.limit_down)[i, j]
        pcts.add((instrument.kind.value, pct))
    assert {("main_board_stock", 0.10), ("chinext_stock", 0.10), ("chinext_stock", 0.20),
            ("star_stock", 0.20)} <= pcts
    traded = ~market.suspended & np.isfinite(market.limit_up)
    others = traded & (synthetic.limit_event == 0)
    assert not ((market.close >= market.limit_up) & others).any()
    assert not ((market.close <= market.limit_down) & others).any()
    assert (market.high[traded] <= market.limit_up[traded]).all()
    assert (market.low[traded] >= market.limit_down[traded]).all()
    bars = ~market.suspended
    assert (market.low[bars] <= np.minimum(market.open, market.close)[bars]).all()
    assert (market.high[bars] >= np.maximum(market.open, market.close)[bars]).all()
    cents = market.close[bars] * 100
    assert np.allclose(cents, np.round(cents), atol=1e-6)


def test_one_corporate_action_per_stock_year_matching_the_records(drawn):
    synthetic, market = drawn
    acted = (market.split != 1.0) | (market.dividend != 0.0)
    years = market.days.year.to_numpy()
    listed = listed_mask(synthetic, market)
    for year in (2020, 2021):
        per_stock = acted[years == year].sum(axis=0)
        before_season = listed[np.flatnonzero(years == year)[0]]
        assert (per_stock <= 1).all() and (per_stock[before_season] == 1).all()
    assert (market.split > 1).any() and (market.dividend > 0).any()
    for symbol, records in synthetic.records.items():
        j = market.symbols.index(symbol)
        for record in records:
            i = market.days.get_loc(pd.Timestamp(record.ex_date))
            assert (market.split[i, j], market.dividend[i, j]) == (record.share_ratio, record.cash)


def test_reports_are_announced_within_the_lag_and_the_deadline(prepared):
    reports = prepared[0]
    period = pd.to_datetime(reports["period_end"])
    lag = (pd.to_datetime(reports["announced"]) - period).dt.days.to_numpy()
    minimum = period.dt.month.map(MIN_LAG).to_numpy()
    deadline = np.array([statutory_deadline(p.date()) for p in period], dtype="datetime64[D]")
    assert (lag >= minimum).all()
    assert (reports["announced"].to_numpy().astype("datetime64[D]") <= deadline).all()
    assert set(period.dt.month) == {3, 6, 9, 12}


def test_the_same_seed_draws_the_same_market():
    spec = dataclasses.replace(SPEC, stocks=40)
    one, two = generate(spec), generate(spec)
    for name in ("open", "high", "low", "close", "volume", "turnover", "factor"):
        assert np.array_equal(getattr(one.panels, name).to_numpy(), getattr(two.panels, name).to_numpy(), equal_nan=True)
    assert one.records == two.records and one.first_days == two.first_days
    assert draw_reports(one).equals(draw_reports(two))
    other = generate(dataclasses.replace(spec, seed=spec.seed + 1))
    assert not np.array_equal(one.panels.close.to_numpy(), other.panels.close.to_numpy(), equal_nan=True)


def test_full_rules_backtest_obeys_the_invariants(prepared, tmp_path):
    market = prepared[3]
    opened = open_market(save_market(market, tmp_path / "market"))  # the benchmark's memory-mapped copy
    strategy = VqmStrategy(prepared[2])
    run = simulate(opened, strategy.targets(opened), BacktestConfig())
    result = run.to_result()
    assert all(check.ok for check in check_identities(result)), check_identities(result)
    trades, orders = result.trades, result.orders
    assert len(trades) > 100
    row = market.days.get_indexer(pd.to_datetime(trades["datetime"]))
    col = np.array([market.symbols.index(s) for s in trades["vt_symbol"]])
    buy = (trades["direction"] == "buy").to_numpy()
    assert not market.suspended[row, col].any()  # no fill without a bar
    assert not (buy & (market.open[row, col] >= market.limit_up[row, col])).any()  # none at a limit-up open
    assert not (~buy & (market.open[row, col] <= market.limit_down[row, col])).any()
    star = np.array([s.startswith("68") for s in trades["vt_symbol"]])
    volume = trades["volume"].to_numpy()
    assert (volume[buy & ~star] % 100 == 0).all() and (volume[buy & star] >= 200).all()
    # T+1: a day's sells never exceed the holding at the previous close (after that day's ex-date split).
    held = run.holdings_array
    for (day, symbol), group in trades[~buy].groupby(["datetime", "vt_symbol"]):
        i, j = market.days.get_loc(pd.Timestamp(day)), market.symbols.index(symbol)
        assert group["volume"].sum() <= np.floor(held[i - 1, j] * market.split[i, j] + 1e-9)
    refused = ";".join(orders["reason"])
    assert "suspended" in refused  # the rules were exercised, not only never needed
    assert (result.cash_flows["kind"] == "split").any() and (result.cash_flows["kind"] == "dividend").any()
    plan = strategy.targets(market)
    assert (simulate(market, plan, BacktestConfig()).equity() == run.equity()).all()  # mapped = in memory


def test_vqm_never_uses_a_report_before_its_announcement(drawn, prepared):
    """Reports announced on or after the cut are perturbed: every target decided up to the cut is unchanged;
    perturbing the reports announced before it changes some (the test can fail)."""
    synthetic, market = drawn
    reports, index, settings, base_market = prepared
    strategy = VqmStrategy(settings)
    base = strategy.targets(base_market).frame
    cut = base.index[len(base) // 2]
    later = pd.to_datetime(reports["announced"]) >= cut

    def perturbed(rows: np.ndarray) -> pd.DataFrame:
        rng = np.random.default_rng(3)
        changed = reports.copy()
        for column in ("eps_ttm", "roe_ytd"):
            changed.loc[rows, column] = changed.loc[rows, column] * rng.uniform(0.2, 5.0, rows.sum())
        return strategy.targets(vqm_market(market, synthetic, changed, index, settings)).frame

    after = perturbed(later.to_numpy())
    upto = base.index <= cut
    assert after[upto].equals(base[upto])
    assert not after[~upto].equals(base[~upto])
    before = perturbed((~later & (pd.to_datetime(reports["announced"]) >= cut - timedelta(days=120))).to_numpy())
    assert not before[upto].equals(base[upto])
