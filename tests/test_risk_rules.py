"""Risk rules inside the simulation: hand-written bars, the exact fills and their reasons.

Every case is a table of bars per day (``d[k]`` is the k-th day below); a target decided at the close of
``d[k]`` executes at the open of ``d[k+1]``, and so does a risk order from a rule that fires at that
close. Fills are listed as (day, symbol, direction, volume, price, reason). Default costs as in
``test_backtest_scenarios.py``; 100000 CNY. Stock and fund limits are ±10 % of the previous close, so
every bar below stays inside them unless a test says it sits on a limit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scenario_market import AUG, CAPITAL, ETF, ETF_B, STOCK, STOCK_B, bar, equity_on, flat, make_panels, plan

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.backtest.kernel import ORDER_FIELDS
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.risk.stops import RiskRules

d = AUG + ["2023-09-04", "2023-09-05", "2023-09-06", "2023-09-07", "2023-09-08",
           "2023-09-11", "2023-09-12", "2023-09-13", "2023-09-14", "2023-09-15"]
F = {name: k for k, name in enumerate(ORDER_FIELDS)}


def run(bars, rows, risk=None, kind="shares", factor=None, notes=None, **config):
    """Simulate ``rows`` (decision day → {symbol: target}) over ``bars`` with the risk rules ``risk``."""
    count = len(next(iter(bars.values())))
    panels = make_panels(d[:count], bars, factor=factor)
    target_plan = plan({d[k]: row for k, row in rows.items()}, panels.symbols, kind)
    target_plan = dataclasses.replace(target_plan, risk=None if risk is None else RiskRules(**risk), notes=notes)
    raw = simulate(build_market_data(panels), target_plan, BacktestConfig(capital=CAPITAL, **config))
    return raw, raw.to_result()


def fills(result) -> list[tuple]:
    return [(t.datetime.strftime("%Y-%m-%d"), t.vt_symbol, t.direction, t.volume, round(t.price, 6), t.reason)
            for t in result.trades.itertuples()]


def orders(result) -> list[tuple]:
    """(day, symbol, direction, requested, filled, status, refusal reasons, cause)."""
    return [(o.date.strftime("%Y-%m-%d"), o.vt_symbol, o.direction, round(o.requested, 4), o.filled, o.status,
             o.reason, o.cause) for o in result.orders.itertuples()]


# ---------------------------------------------------------------------------------------------------
# Stock stop
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("close,stopped", [
    (92.00, True),   # 92.00 / 100.00 − 1 = −8.00 %: at the threshold (≤) fires
    (92.01, False),  # −7.99 %: does not
])
def test_stock_stop_fires_at_exactly_the_threshold(close, stopped):
    bars = {STOCK: [flat(100.00),                        # d0: decide 100 shares
                    flat(100.00),                        # d1: buy 100 at 100.00 (the entry)
                    bar(99.00, 99.00, close, close),     # d2: close at the stop or one tick above
                    flat(93.00)]}                        # d3: the stop sells at the open
    _, result = run(bars, {0: {STOCK: 100}}, risk={"stock_stop": 0.08})
    expected = [(d[1], STOCK, "buy", 100.0, 100.0, "rebalance")]
    if stopped:
        expected.append((d[3], STOCK, "sell", 100.0, 93.0, "stock_stop -8.0%"))
    assert fills(result) == expected


def test_stock_stop_entry_is_the_average_of_the_buys():
    # Buys 100 at 10.00 and 100 at 10.50: entry 10.25, stop at 10.25 × 0.92 = 9.43.
    bars = {STOCK: [flat(10.00),   # d0: decide 100
                    flat(10.00),   # d1: buy 100 at 10.00; decide 200
                    flat(10.50),   # d2: buy 100 at 10.50
                    flat(9.50),    # d3: −7.3 % from the average (−9.5 % from the last fill: no stop)
                    flat(9.43),    # d4: −8.0 % from the average: stop
                    flat(9.50)]}   # d5: sold at the open
    raw, result = run(bars, {0: {STOCK: 100}, 1: {STOCK: 200}}, risk={"stock_stop": 0.08})
    assert fills(result) == [
        (d[1], STOCK, "buy", 100.0, 10.0, "rebalance"),
        (d[2], STOCK, "buy", 100.0, 10.5, "rebalance"),
        (d[5], STOCK, "sell", 200.0, 9.5, "stock_stop -8.0%"),
    ]
    stop = raw.order_rows[-1]
    assert (stop[F["cause"]], stop[F["plan_row"]]) == (1, -1)
    assert stop[F["trigger"]] == pytest.approx(9.43 / 10.25 - 1)
    assert raw.order_rows[1][F["plan_row"]] == 1  # the second buy executed the second plan row


@pytest.mark.parametrize("factor,ex_close,closes,expected_trigger", [
    # 10-for-10 bonus shares: 1000 → 2000 shares, entry 10.00 → 5.00; stop at 4.60 (not at the raw 9.20)
    ([1, 1, 2, 2, 2, 2], 5.00, [4.61, 4.60], "stock_stop -8.0%"),
    # 0.50 cash per share (factor step 10 / 9.5): entry 10.00 → 9.50; stop at 8.74 (9.00 would breach 9.20)
    ([1, 1, 10 / 9.5, 10 / 9.5, 10 / 9.5, 10 / 9.5], 9.50, [9.00, 8.74], "stock_stop -8.0%"),
])
def test_stock_stop_entry_follows_split_and_dividend(factor, ex_close, closes, expected_trigger):
    bars = {STOCK: [flat(10.00), flat(10.00),   # d0: decide 1000; d1: buy 1000 at 10.00
                    flat(ex_close),              # d2: ex-date
                    flat(closes[0]),             # d3: just above the adjusted stop
                    flat(closes[1]),             # d4: at it
                    flat(closes[1] + 0.10)]}     # d5: sold at the open
    _, result = run(bars, {0: {STOCK: 1000}}, risk={"stock_stop": 0.08}, factor={STOCK: factor})
    held = 2000.0 if factor[2] == 2 else 1000.0
    assert fills(result) == [
        (d[1], STOCK, "buy", 1000.0, 10.0, "rebalance"),
        (d[5], STOCK, "sell", held, round(closes[1] + 0.10, 2), expected_trigger),
    ]


def test_stock_stop_refused_at_limit_down_is_retried_while_breached():
    bars = {STOCK: [flat(10.00), flat(10.00),        # d0 decide 1000; d1 buy at 10.00
                    bar(9.90, 9.90, 9.20, 9.20),     # d2: −8.0 %: stop
                    flat(8.28),                      # d3: one-price limit-down (9.20 × 0.9): refused
                    bar(8.50, 8.60, 8.40, 8.50),     # d4: retried (the 8.28 close still breaches): sold
                    flat(8.50)]}
    _, result = run(bars, {0: {STOCK: 1000}}, risk={"stock_stop": 0.08})
    assert orders(result)[1:] == [
        (d[3], STOCK, "sell", 1000.0, 0.0, "refused", "limit_down", "stock_stop -8.0%"),
        (d[4], STOCK, "sell", 1000.0, 1000.0, "filled", "", "stock_stop -17.2%"),  # 8.28 / 10.00 − 1
    ]
    assert fills(result)[-1] == (d[4], STOCK, "sell", 1000.0, 8.5, "stock_stop -17.2%")


def test_stock_stop_not_retried_once_the_close_recovers():
    bars = {STOCK: [flat(10.00), flat(10.00),
                    bar(9.90, 9.90, 9.20, 9.20),     # d2: stop
                    bar(8.28, 9.50, 8.28, 9.50),     # d3: opens at limit-down (refused), closes above the stop
                    flat(9.50), flat(9.50)]}
    _, result = run(bars, {0: {STOCK: 1000}}, risk={"stock_stop": 0.08})
    assert orders(result)[1:] == [(d[3], STOCK, "sell", 1000.0, 0.0, "refused", "limit_down", "stock_stop -8.0%")]
    assert equity_on(result, d[5], "market_value") == pytest.approx(9500.0)


def test_stock_stop_on_shares_bought_that_day_sells_the_next_day():
    # Bought at d1's open, down 8 % by d1's close: the stop fires on the day of purchase and sells at
    # d2's open (T+1 allows it then; nothing is sold on d1).
    bars = {STOCK: [flat(10.00), bar(10.00, 10.00, 9.20, 9.20), flat(9.30), flat(9.30)]}
    _, result = run(bars, {0: {STOCK: 1000}}, risk={"stock_stop": 0.08})
    assert fills(result) == [
        (d[1], STOCK, "buy", 1000.0, 10.0, "rebalance"),
        (d[2], STOCK, "sell", 1000.0, 9.3, "stock_stop -8.0%"),
    ]


def test_stop_overrides_the_row_decided_on_its_close_for_the_stopped_symbol_only():
    bars = {STOCK: [flat(10.00), flat(10.00), bar(9.90, 9.90, 9.20, 9.20), flat(9.30), flat(9.40), flat(9.50)],
            STOCK_B: [flat(10.00)] * 6}
    rows = {0: {STOCK: 1000, STOCK_B: 1000},
            2: {STOCK: 2000, STOCK_B: 2000},   # decided on the stop's close: STOCK is left out, STOCK_B buys
            4: {STOCK: 1000, STOCK_B: 2000}}   # a later row may buy the stopped stock again
    notes = pd.DataFrame([["rank 1", None], ["rank 1", "rank 2"], ["back", np.nan]],
                         index=pd.DatetimeIndex([d[0], d[2], d[4]]), columns=[STOCK, STOCK_B])
    _, result = run(bars, rows, risk={"stock_stop": 0.08}, notes=notes)
    assert fills(result) == [
        (d[1], STOCK, "buy", 1000.0, 10.0, "rank 1"),
        (d[1], STOCK_B, "buy", 1000.0, 10.0, "rebalance"),  # no note: the plan's reason
        (d[3], STOCK, "sell", 1000.0, 9.3, "stock_stop -8.0%"),
        (d[3], STOCK_B, "buy", 1000.0, 10.0, "rank 2"),
        (d[5], STOCK, "buy", 1000.0, 9.5, "back"),
    ]
    assert [o[1:3] for o in orders(result) if o[0] == d[3]] == [(STOCK, "sell"), (STOCK_B, "buy")]


# ---------------------------------------------------------------------------------------------------
# Portfolio stop
# ---------------------------------------------------------------------------------------------------

def test_portfolio_stop_flattens_until_the_next_row_then_reenters_with_a_new_peak():
    bars = {
        ETF: [flat(4.000), flat(4.000),   # d1: buy 20000 at 4.000 (80000.00 + 20.00): cash 19980.00
              flat(4.200),                # d2: equity 19980 + 84000 = 103980.00, the peak
              flat(3.900),                # d3: 97980.00 (−5.8 %)
              flat(3.600),                # d4: 91980.00: 91980 / 103980 − 1 = −11.5 % → stop
              flat(3.600),                # d5: sold at 3.600: 72000 − 18.00 → cash 91962.00
              flat(3.600), flat(3.600), flat(3.600), flat(3.600)],
        ETF_B: [flat(5.000), flat(5.000), flat(5.000),
                flat(5.500), flat(6.050),  # d3, d4: one-price limit-up: the buy is refused and resubmitted
                flat(6.050),               # d5: buyable, but the book is flat: no buy from the resubmit
                flat(6.050), flat(6.050),  # d7: the next row re-enters: 10000 at 6.050
                flat(6.050), flat(6.050)],
    }
    rows = {0: {ETF: 20000},
            2: {ETF: 20000, ETF_B: 1000},
            4: {ETF: 20000, ETF_B: 1000},   # decided on the stop's close: dropped
            6: {ETF_B: 10000}}              # the next row: re-entry
    _, result = run(bars, rows, risk={"portfolio_stop": 0.10})
    assert orders(result) == [
        (d[1], ETF, "buy", 20000.0, 20000.0, "filled", "", "rebalance"),
        (d[3], ETF_B, "buy", 1000.0, 0.0, "refused", "limit_up", "rebalance"),
        (d[4], ETF_B, "buy", 1000.0, 0.0, "refused", "limit_up", "rebalance"),
        (d[5], ETF, "sell", 20000.0, 20000.0, "filled", "", "portfolio_stop -11.5%"),
        (d[7], ETF_B, "buy", 10000.0, 10000.0, "filled", "", "rebalance"),
    ]
    assert equity_on(result, d[5], "cash") == pytest.approx(91_962.00)
    # After re-entry equity is 11.6 % under the old peak (91946.87 vs 103980.00): the stop does not
    # fire again because its peak restarted at the re-entry close.
    assert equity_on(result, d[7]) == pytest.approx(91_962.00 - 15.13)
    assert len(result.orders) == 5


def test_portfolio_stop_fires_again_from_the_restarted_peak():
    bars = {ETF: [flat(4.000),   # d0: equity 100000.00, the first peak
                  flat(4.000),   # d1: buy 20000 at 4.000: cash 19980.00
                  flat(3.700),   # d2: 93980.00 (−6.0 %)
                  flat(3.400),   # d3: 87980.00: −12.0 % → stop
                  flat(3.400),   # d4: sold: 68000 − 17.00 → cash 87963.00
                  flat(3.400),   # d5: the next row is decided
                  flat(3.400),   # d6: re-entry, 20000 at 3.400: cash 19946.00, equity 87946.00, the new peak
                  flat(3.100),   # d7: 81946.00: −6.8 % (−18.1 % from the first peak)
                  flat(3.000),   # d8: 79946.00: −9.1 % from the new peak → stop again
                  flat(3.000), flat(3.000)]}
    _, result = run(bars, {0: {ETF: 20000}, 5: {ETF: 20000}}, risk={"portfolio_stop": 0.08})
    assert fills(result) == [
        (d[1], ETF, "buy", 20000.0, 4.0, "rebalance"),
        (d[4], ETF, "sell", 20000.0, 3.4, "portfolio_stop -12.0%"),
        (d[6], ETF, "buy", 20000.0, 3.4, "rebalance"),
        (d[9], ETF, "sell", 20000.0, 3.0, "portfolio_stop -9.1%"),
    ]


# ---------------------------------------------------------------------------------------------------
# Drawdown halving
# ---------------------------------------------------------------------------------------------------

def test_drawdown_halving_sells_half_halves_the_next_row_and_ends_on_recovery():
    bars = {ETF: [flat(4.000),                  # d0: equity 100000.00, the peak
                  flat(4.000),                  # d1: 0.9 × 100000 / 4.000 = 22500 units: cash 9977.50
                  flat(3.700),                  # d2: 93227.50 (−6.8 %)
                  bar(3.650, 3.650, 3.330, 3.330),  # d3: 84902.50: −15.1 % beyond 15 % → halve
                  bar(3.340, 3.340, 3.200, 3.200),  # d4: sell 11250 → 11200 (whole lots); 83536.15, −16.5 %: holds
                  flat(3.200),                  # d5: the row decided on d4 executes at 0.45
                  flat(3.520),                  # d6: 87279.83, −12.7 %: back within 15 %: ends
                  flat(3.520),                  # d7: the row decided on d6 executes at full weight
                  flat(3.520)]}
    rows = {0: {ETF: 0.9}, 4: {ETF: 0.9}, 6: {ETF: 0.9}}
    _, result = run(bars, rows, kind="weight", risk={"drawdown_halve": 0.15})
    assert fills(result) == [
        (d[1], ETF, "buy", 22500.0, 4.0, "rebalance"),
        (d[4], ETF, "sell", 11200.0, 3.34, "drawdown_halve -15.1%"),
        # cash 9977.50 + 37408.00 − 9.35 = 47376.15; equity 47376.15 + 11300 × 3.2 = 83536.15;
        # 0.45 × 83536.15 / 3.2 = 11747.27 units wanted: 447.27 more → 400
        (d[5], ETF, "buy", 400.0, 3.2, "rebalance"),
        # cash 46095.83 + 11700 × 3.52 = 87279.83; 0.9 × 87279.83 / 3.52 = 22315.87: 10615.87 more → 10600
        (d[7], ETF, "buy", 10600.0, 3.52, "rebalance"),
    ]
    halving = orders(result)[1]
    assert halving[3:7] == (11250.0, 11200.0, "partial", "lot_rounding")


def test_halving_is_replaced_by_a_row_decided_on_its_close():
    # The row decided on the close the halving starts executes the next morning at half weight: it
    # replaces the halving sells (one order, from the plan).
    bars = {ETF: [flat(4.000), flat(4.000), flat(3.700), bar(3.650, 3.650, 3.330, 3.330), flat(3.340), flat(3.340)]}
    _, result = run(bars, {0: {ETF: 0.9}, 3: {ETF: 0.9}}, kind="weight", risk={"drawdown_halve": 0.15})
    # 0.45 × (9977.50 + 22500 × 3.34) / 3.34 = 11469.2 units wanted: sell 11030.8 → 11000 (then −14.9 %: ends)
    assert fills(result)[1:] == [(d[4], ETF, "sell", 11000.0, 3.34, "rebalance")]


# ---------------------------------------------------------------------------------------------------
# Rules off, properties
# ---------------------------------------------------------------------------------------------------

def _random_market(draw_returns: list[float], seed: int):
    rng = np.random.default_rng(seed)
    returns = np.array(draw_returns).reshape(-1, 3)
    bars = {}
    for j, (symbol, start, tick) in enumerate([(STOCK, 10.00, 0.01), (STOCK_B, 20.00, 0.01), (ETF, 4.000, 0.001)]):
        close, rows = start, []
        for r in returns[:, j]:
            if rng.random() < 0.05:
                rows.append(None)  # suspended
                continue
            new = max(round(close * (1 + r) / tick) * tick, tick)
            open_ = max(round(close * (1 + r * rng.random()) / tick) * tick, tick)
            rows.append(bar(open_, max(open_, new), min(open_, new), new, float(rng.choice([1e6, 3e3]))))
            close = new
        bars[symbol] = rows
    return bars


rules = st.builds(RiskRules,
                  stock_stop=st.none() | st.floats(0.01, 0.2),
                  portfolio_stop=st.none() | st.floats(0.01, 0.2),
                  drawdown_halve=st.none() | st.floats(0.01, 0.2),
                  halve_to=st.floats(0.0, 0.9))


@settings(max_examples=60)
@given(returns=st.lists(st.floats(-0.099, 0.099), min_size=3 * 20, max_size=3 * 20), seed=st.integers(0, 2**16),
       risk=rules, kind=st.sampled_from(["weight", "shares"]), every=st.integers(1, 5))
def test_any_rules_keep_the_book_sound(returns, seed, risk, kind, every):
    bars = _random_market(returns, seed)
    rng = np.random.default_rng(seed + 1)
    rows = {}
    for k in range(0, 19, every):
        raw_weights = rng.random(3) * (rng.random(3) < 0.7)
        weights = raw_weights / max(raw_weights.sum(), 1.0) * 0.95
        rows[k] = dict(zip([STOCK, STOCK_B, ETF], weights if kind == "weight" else np.round(weights * 5000, -2)))
    raw, result = run(bars, rows, kind=kind, risk=risk.model_dump())
    assert (raw.cash_array >= -1e-6).all()
    assert (raw.holdings_array >= 0).all()
    risk_orders = raw.order_rows[raw.order_rows[:, F["cause"]] != 0]
    assert (risk_orders[:, F["buy"]] == 0).all()
    assert (risk_orders[:, F["plan_row"]] == -1).all()
    assert result.trades["reason"].notna().all()
    _, unruled = run(bars, rows, kind=kind)
    if not risk.active:
        pd.testing.assert_frame_equal(result.trades, unruled.trades)
        pd.testing.assert_frame_equal(result.orders, unruled.orders)
        pd.testing.assert_frame_equal(result.equity, unruled.equity)


def test_rules_off_is_identical_to_no_rules():
    bars = {STOCK: [flat(10.00), flat(10.00), bar(9.90, 9.90, 9.00, 9.00), flat(8.28), flat(8.50), flat(8.50)],
            ETF: [flat(4.000), flat(4.000), flat(3.600), flat(3.240), flat(3.300), flat(3.300)]}
    rows = {0: {STOCK: 0.3, ETF: 0.6}, 2: {STOCK: 0.5, ETF: 0.4}, 3: {ETF: 0.9}}
    raw_off, off = run(bars, rows, kind="weight", risk={})
    raw_none, none = run(bars, rows, kind="weight")
    for name in ("equity", "trades", "orders", "positions", "cash_flows"):
        pd.testing.assert_frame_equal(getattr(off, name), getattr(none, name))
    assert np.array_equal(raw_off.order_rows, raw_none.order_rows, equal_nan=True)
    # and with rules on, the same market does trigger them (the comparison above is not vacuous)
    _, ruled = run(bars, rows, kind="weight", risk={"stock_stop": 0.05, "portfolio_stop": 0.05})
    assert not ruled.trades.equals(none.trades)


def test_notes_must_match_the_targets():
    from vnpy_rotation.errors import InputRejected

    bars = {STOCK: [flat(10.00)] * 3}
    with pytest.raises(InputRejected):
        run(bars, {0: {STOCK: 100}}, notes=pd.DataFrame({STOCK: ["x"]}, index=pd.DatetimeIndex([d[1]])))
