"""The look-ahead harness: every built-in strategy passes it on real data, a peeking one fails it;
the accounting identities hold on real runs and catch a tampered result."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.backtest.identities import check_identities
from vnpy_rotation.backtest.lookahead import check_lookahead, perturb_after
from vnpy_rotation.backtest.strategy import rebalance_days, weights_frame
from vnpy_rotation.strategies import STRATEGIES, create_strategy
from vnpy_rotation.strategies.momentum import MomentumTopNStrategy, top_n_weights
from vnpy_rotation.strategies.vqm import VqmStrategy


class PeekingMomentum(MomentumTopNStrategy):
    """Ranks by tomorrow's return: the classic off-by-one look-ahead bug."""

    name = "peeking"

    def targets(self, market):
        rows = rebalance_days(market, "week_end")
        close = market.adjusted("close")
        future = np.full(close.shape, np.nan)
        future[:-1] = close[1:] / close[:-1] - 1
        weights = top_n_weights(future[rows], 2, 0.99, False)
        return TargetPlan(weights_frame(market, rows, weights))


STOCK_STRATEGIES = {"vqm"}  # run on the bundled stocks with their point-in-time fundamentals


def on_bundled_data(name, request):
    """The strategy and its market: the bundled stocks for stock selection, else every bundled fund
    (strategies taking a symbol list) or the strategy's own pools file."""
    if name in STOCK_STRATEGIES:
        return create_strategy(name), request.getfixturevalue("bundled_stock_market")
    market = request.getfixturevalue("bundled_market")
    takes_symbols = "symbols" in STRATEGIES[name].Settings.model_fields
    return create_strategy(name, {"symbols": list(market.symbols)} if takes_symbols else {}), market


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_builtin_strategies_pass_the_harness(request, name):
    strategy, market = on_bundled_data(name, request)
    checks = check_lookahead(strategy, market, BacktestConfig(), cuts=4)
    assert len(checks) == 4 and all(c.ok for c in checks), [c.detail for c in checks]


class PeekingVqm(VqmStrategy):
    """Ranks on next month's EPS: reports not yet announced at the decision."""

    def targets(self, market):
        eps = market.extras["eps_ttm"]
        ahead = np.vstack([eps[21:], np.repeat(eps[-1:], 21, axis=0)])
        return super().targets(dataclasses.replace(market, extras={**market.extras, "eps_ttm": ahead}))


def test_a_strategy_using_unannounced_fundamentals_fails_the_harness(bundled_stock_market):
    strategy = PeekingVqm(VqmStrategy.Settings())
    checks = check_lookahead(strategy, bundled_stock_market, BacktestConfig(), cuts=3)
    assert not any(c.ok for c in checks)


def test_a_peeking_strategy_fails_the_harness(bundled_market):
    strategy = PeekingMomentum(MomentumTopNStrategy.Settings(symbols=list(bundled_market.symbols)))
    checks = check_lookahead(strategy, bundled_market, BacktestConfig(), cuts=3)
    assert not any(c.ok for c in checks)


def test_perturbation_changes_only_the_future(bundled_market):
    cut = 1000
    other = perturb_after(bundled_market, cut, seed=1)
    for name in ("open", "close", "volume"):
        before, after = getattr(bundled_market, name), getattr(other, name)
        assert np.array_equal(before[:cut + 1], after[:cut + 1], equal_nan=True)
        finite = np.isfinite(before[cut + 1:])
        assert (before[cut + 1:][finite] != after[cut + 1:][finite]).mean() > 0.99


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_identities_hold_on_real_runs(request, name):
    strategy, market = on_bundled_data(name, request)
    result = simulate(market, strategy.targets(market), BacktestConfig()).to_result()
    checks = check_identities(result)
    assert all(c.ok for c in checks), [(c.name, c.detail) for c in checks if not c.ok]
    assert len(result.cash_flows)  # distributions (and on the funds the 159941 unit split) were applied


def test_identities_catch_a_tampered_result(bundled_market):
    strategy = create_strategy("equal_weight", {"symbols": list(bundled_market.symbols)})
    result = simulate(bundled_market, strategy.targets(bundled_market), BacktestConfig()).to_result()
    result.trades.loc[3, "commission"] += 1.0  # a fee that never left the cash
    failed = {c.name for c in check_identities(result) if not c.ok}
    assert failed == {"cash = capital − buys + sells − fees + dividends"}
    result = dataclasses.replace(result, equity=result.equity.assign(equity=result.equity["equity"] + 0.5))
    assert "equity = cash + market value" in {c.name for c in check_identities(result) if not c.ok}


class PeekingNotes(MomentumTopNStrategy):
    """Honest targets, but each target's note (a trade's reason) quotes the next day's close."""

    name = "peeking_notes"

    def targets(self, market):
        plan = super().targets(market)
        close = market.adjusted("close")
        rows = market.days.get_indexer(plan.frame.index)
        tomorrow = close[np.minimum(rows + 1, len(market.days) - 1)]
        notes = pd.DataFrame([[f"next close {v:.3f}" for v in row] for row in tomorrow],
                             index=plan.frame.index, columns=market.symbols)[list(plan.frame.columns)]
        return dataclasses.replace(plan, notes=notes)


def test_a_strategy_peeking_only_in_its_notes_fails_the_harness(bundled_market):
    """The harness re-runs only the decision path: what a plan carries besides its targets is compared too."""
    settings = MomentumTopNStrategy.Settings(symbols=list(bundled_market.symbols))
    honest = check_lookahead(MomentumTopNStrategy(settings), bundled_market, BacktestConfig(), cuts=2)
    peeking = check_lookahead(PeekingNotes(settings), bundled_market, BacktestConfig(), cuts=2)
    assert [c.ok for c in honest] == [True, True]
    assert [c.ok for c in peeking] == [False, False]


def _peek_30_sessions(plan, config, market, since):
    """A drift response that halves a row when the market is higher 30 sessions later."""
    rows = market.days.get_indexer(plan.frame.index)
    later = np.minimum(rows + 30, len(market.days) - 1)
    up = np.nanmean(market.close[later], axis=1) > np.nanmean(market.close[rows], axis=1)
    frame = plan.frame.copy()
    frame[up] = frame[up] * 0.5
    return dataclasses.replace(plan, frame=frame)


def test_a_plan_transformation_peeking_inside_the_simulation_fails_the_harness(bundled_market, monkeypatch):
    """The harness checks the plan as the kernel receives it (after the exposure limits and the drift response)."""
    import vnpy_rotation.backtest.engine as engine

    strategy = MomentumTopNStrategy(MomentumTopNStrategy.Settings(symbols=list(bundled_market.symbols)))
    assert all(c.ok for c in check_lookahead(strategy, bundled_market, BacktestConfig(), cuts=2))
    monkeypatch.setattr(engine, "apply_drift_response", _peek_30_sessions)
    assert not any(c.ok for c in check_lookahead(strategy, bundled_market, BacktestConfig(), cuts=2))


class PeekingPools(MomentumTopNStrategy):
    """Honest targets, but its per-pool plan (the per-pool report) reads the last bar of the data."""

    def pool_plans(self, market):
        plan = self.targets(market)
        frame = plan.frame * float(market.close[-1, 0] / market.close[0, 0])  # scaled by the whole run's move
        return {"A": dataclasses.replace(plan, frame=frame)}


def test_a_pool_plan_peeking_fails_the_harness(bundled_market):
    settings = MomentumTopNStrategy.Settings(symbols=list(bundled_market.symbols))
    honest = check_lookahead(MomentumTopNStrategy(settings), bundled_market, BacktestConfig(), cuts=2)
    peeking = check_lookahead(PeekingPools(settings), bundled_market, BacktestConfig(), cuts=2)
    assert [c.ok for c in honest] == [True, True] and [c.ok for c in peeking] == [False, False]
