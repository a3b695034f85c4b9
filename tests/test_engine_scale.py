"""The engine's whole-market paths (symbol index, the market inputs in one compiled pass, notes read from the plan's
own frame, market value in place) give the same bytes as the functions they replaced, kept here as the reference."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest import engine
from vnpy_rotation.backtest.config import BacktestConfig, FillPrice
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.research.synthetic import SyntheticSpec, build, generate
from vnpy_rotation.research.synthetic_fundamentals import draw_index, draw_reports, vqm_market
from vnpy_rotation.strategies.vqm import VqmSettings, VqmStrategy

SPEC = SyntheticSpec(stocks=120, start=date(2021, 1, 1), end=date(2021, 12, 31), seed=11)


# The replaced implementations, verbatim.
def old_execution_prices(md, fill_prices, suspension):
    previous = np.vstack([np.full((1, md.shape[1]), np.nan), md.last_close[:-1]])
    usable = np.isfinite(fill_prices) & (~md.suspended if suspension else True)
    return np.where(usable, fill_prices, previous)


def old_fill_basis(md, config):
    fill_prices = md.open if config.fill_price is FillPrice.OPEN else engine._vwap(md)
    return old_execution_prices(md, fill_prices, config.rules.suspension)


def old_market_inputs(md, config):
    stock = md.is_stock
    fee = config.stock_commission, config.etf_commission
    actions = ((md.split != 1.0) | (md.dividend != 0.0)).sum(axis=1) if md.actions_per_day is None else md.actions_per_day
    close = md.last_close
    return engine.MarketInputs(old_fill_basis(md, config), ~md.suspended, actions > 0, int(actions.sum()),
                               np.where(stock, fee[0].rate, fee[1].rate), np.where(stock, fee[0].minimum, fee[1].minimum),
                               None if np.isinf(close).any() else np.where(np.isnan(close), 0.0, close))


def old_market_value(self):
    return self.holdings_array * np.nan_to_num(self.market.last_close)


def old_cells(frame, symbols, rows, symbol_positions):
    return frame.reindex(columns=symbols).to_numpy(dtype=object)[rows, symbol_positions]


def old_plan_rows(md, plan):
    columns = list(plan.frame.columns)
    unknown = [s for s in columns if s not in md.symbols]
    if unknown:
        raise InputRejected(engine.Problem("targets", None, f"symbols without market data: {', '.join(unknown)}"))
    given = plan.frame.to_numpy(dtype=float)
    if columns == list(md.symbols):
        values = given.copy()
    else:
        values = np.zeros((len(given), len(md.symbols)))
        values[:, [md.symbols.index(s) for s in columns]] = given
    decided = pd.DatetimeIndex(plan.frame.index).values.astype("datetime64[ns]")
    day_values = md.days.values.astype("datetime64[ns]")
    positions = np.searchsorted(day_values, decided)
    valid = positions < len(day_values)
    valid[valid] = day_values[positions[valid]] == decided[valid]
    keep = ~np.isnan(given).all(axis=1) & (positions + 1 < len(day_values)) if len(given) else positions >= 0
    order = np.argsort(positions[keep], kind="stable")
    return ((positions[keep][order] + 1).astype(np.int64), values[keep][order].reshape(-1, len(md.symbols)),
            np.arange(len(given), dtype=np.int64)[keep][order])


@pytest.fixture(scope="module")
def market_and_plan():
    synthetic = generate(SPEC)
    market = build(synthetic)
    settings = VqmSettings(symbols=list(market.symbols), top_n=15)
    market = vqm_market(market, synthetic, draw_reports(synthetic), draw_index(synthetic), settings)
    return market, VqmStrategy(settings).targets(market)


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def frames(run) -> dict[str, pd.DataFrame]:
    result = run.to_result()
    return {"equity": result.equity, "trades": result.trades, "orders": result.orders,
            "positions": result.positions, "holdings_value": result.holdings_value,
            "symbol_pnl": result.symbol_pnl, "cash_flows": result.cash_flows}


@pytest.mark.parametrize("fill", [FillPrice.OPEN, FillPrice.VWAP])
@pytest.mark.parametrize("suspension", [True, False])
def test_execution_prices_are_the_old_bytes(market_and_plan, fill, suspension):
    market, _ = market_and_plan
    config = BacktestConfig(fill_price=fill)
    config = config.model_copy(update={"rules": config.rules.model_copy(update={"suspension": suspension})})
    assert market.suspended.any() and not np.isfinite(market.open).all()
    assert same_bytes(engine.fill_basis(market, config), old_fill_basis(market, config))
    counted = dataclasses.replace(market, actions_per_day=None)
    kept = dataclasses.replace(market, actions_per_day=counted.action_counts())
    infinite = dataclasses.replace(market, last_close=np.where(market.suspended, np.inf, market.last_close))
    for md in (counted, kept, infinite):
        new, old = engine.market_inputs(md, config), old_market_inputs(md, config)
        for name, value in new._asdict().items():
            reference = getattr(old, name)
            assert (value is None and reference is None) if name == "value_close" and md is infinite else (
                same_bytes(np.asarray(value), np.asarray(reference))), name
    assert (counted.action_counts() > 0).any() and engine.market_inputs(infinite, config).value_close is None


def test_plan_rows_are_the_old_ones_for_a_shuffled_subset_of_columns(market_and_plan):
    market, plan = market_and_plan
    columns = list(plan.frame.columns)[::-3]  # reversed, every third: positions found through the index
    subset = TargetPlan(plan.frame[columns])
    for new, old in zip(engine._plan_rows(market, subset), old_plan_rows(market, subset)):
        assert same_bytes(new, old)
    with pytest.raises(InputRejected, match="NOPE.SZSE"):
        engine._plan_rows(market, TargetPlan(plan.frame.assign(**{"NOPE.SZSE": 0.0})))


def test_full_rules_vqm_run_gives_the_old_frames(market_and_plan, monkeypatch):
    """Notes on every planned order (VQM's), a partial notes frame, the default rules."""
    market, plan = market_and_plan
    assert plan.notes is not None
    partial = TargetPlan(plan.frame, notes=plan.notes.iloc[:, ::2].copy(), risk=plan.risk)
    config = BacktestConfig()
    new = [frames(simulate(market, p, config)) for p in (plan, partial)]
    with monkeypatch.context() as patched:
        patched.setattr(engine, "market_inputs", old_market_inputs)
        patched.setattr(engine, "_cells", old_cells)
        patched.setattr(engine, "_plan_rows", old_plan_rows)
        patched.setattr(engine.RawRun, "market_value", old_market_value)
        old = [frames(simulate(market, p, config)) for p in (plan, partial)]
    assert len(new[0]["trades"]) > 100 and new[0]["trades"]["reason"].nunique() > 1
    for mine, theirs in zip(new, old):
        for name in mine:
            pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=True)
            assert pd.util.hash_pandas_object(mine[name]).tolist() == pd.util.hash_pandas_object(theirs[name]).tolist()


def test_market_value_is_the_old_bytes_with_missing_closes_and_short_holdings(market_and_plan):
    market, plan = market_and_plan
    run = simulate(market, plan, BacktestConfig())
    assert np.isnan(market.last_close).any()
    for holdings in (run.holdings_array, -run.holdings_array, np.full(run.holdings_array.shape, np.nan)):
        run.holdings_array = holdings
        assert same_bytes(run.market_value(), old_market_value(run))
    close = market.last_close.copy()
    close[3, 4], close[5, 6] = np.inf, -np.inf
    run.market = dataclasses.replace(market, last_close=close)
    assert same_bytes(run.market_value(), old_market_value(run))


def test_symbol_pnl_is_the_old_bytes(market_and_plan):
    market, plan = market_and_plan
    run = simulate(market, plan, BacktestConfig())
    values = old_market_value(run)
    pnl = values.copy()  # the replaced construction
    pnl[1:] -= values[:-1]
    pnl += run.flows_array
    assert same_bytes(run.to_result().symbol_pnl.to_numpy(), pnl)
