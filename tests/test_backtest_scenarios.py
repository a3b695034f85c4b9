"""A-share rule scenarios: hand-written bars, exact fills, costs, cash and refusal reasons.

Every expectation is worked out by hand in the comment beside it. Default costs (BacktestConfig):
stocks 0.025 % commission with a 5.00 CNY minimum, ETFs 0.025 % without a minimum; stamp duty on
stock sells 0.1 % until 2023-08-27 and 0.05 % from 2023-08-28; transfer fee 0.001 % of stock value on
both sides; every fee rounded half up to the fen. Participation cap 10 % of the day's volume (the
default bars trade 1,000,000 shares, so the cap only bites where a test says so).
"""

from __future__ import annotations

import pandas as pd
import pytest
from scenario_market import (
    CAPITAL,
    CHINEXT_ETF,
    CROSS,
    ETF,
    ETF_B,
    STOCK,
    STOCK_B,
    at,
    bar,
    days,
    equity_on,
    flat,
    make_panels,
    money,
    orders_of,
    positions_on,
    trades_of,
)
from scenario_market import backtest as _backtest

from vnpy_rotation.backtest.config import Commission, FillPrice
from vnpy_rotation.backtest.matching import cents
from vnpy_rotation.data.market_data import build_market_data


def backtest(panels, rows, kind="shares", **config):
    """Run a scenario with 100000 CNY unless a test says otherwise."""
    config.setdefault("capital", CAPITAL)
    return _backtest(panels, rows, kind, **config)


# ---------------------------------------------------------------------------------------------------
# 1. T+1: shares bought today cannot be sold today (matcher; the engine sells before it buys)
# ---------------------------------------------------------------------------------------------------


def test_t1_engine_sells_on_the_next_day():
    # Bought 2023-08-28 (decision 08-25), sold 2023-08-29 (decision 08-28): the lock lasts one day only.
    # buy : 1000 × 10.00 = 10000.00, commission 5.00 (2.50 < min), transfer 0.10
    # sell: 10000.00, commission 5.00, stamp 10000 × 0.05 % = 5.00, transfer 0.10
    # cash 100000 − 10005.10 + 9989.90 = 99984.80
    md, result = backtest(make_panels(days("2023-08-25", 3), {STOCK: [flat(10.00)] * 3}),
                          {"2023-08-25": {STOCK: 1000}, "2023-08-28": {STOCK: 0}})
    assert trades_of(result) == [
        ("2023-08-28", STOCK, "buy", 10.0, 1000.0, 10000.0, 5.00, 0.0, 0.10),
        ("2023-08-29", STOCK, "sell", 10.0, 1000.0, 10000.0, 5.00, 5.00, 0.10),
    ]
    assert equity_on(result, "2023-08-29", "cash") == money(99_984.80)


# ---------------------------------------------------------------------------------------------------
# 2. T+0 cross-border ETF: same-day round trip
# ---------------------------------------------------------------------------------------------------


def test_t0_flag_in_market_data():
    # 2023: cross-border ETF T+0; equity ETFs, ChiNext ETFs and stocks T+1.
    md = build_market_data(make_panels(["2023-08-21"], {
        CROSS: [flat(1.0)], ETF: [flat(4.0)], CHINEXT_ETF: [flat(2.0)], STOCK: [flat(10.0)]}))
    assert md.t0[0].tolist() == [True, False, False, False]
    # cross-border ETFs became T+0 on 2015-01-19 (SSE/SZSE notice 2015-01-16)
    md15 = build_market_data(make_panels(["2015-01-16", "2015-01-19"], {CROSS: [flat(1.0), flat(1.0)]}))
    assert md15.t0[:, 0].tolist() == [False, True]


# ---------------------------------------------------------------------------------------------------
# 3. Limit-up buy: refused, retried the next day when resubmit is on
# ---------------------------------------------------------------------------------------------------

LIMIT_UP_BARS = {ETF: [
    flat(4.000),                      # 08-21  close 4.000
    flat(4.400),                      # 08-22  limit up = 4.000 × 1.1 = 4.400: one-price limit-up bar
    bar(4.500, 4.600, 4.450, 4.550),  # 08-23  limit up = 4.400 × 1.1 = 4.840: open 4.500 trades
    flat(4.550),                      # 08-24
]}


def test_limit_up_buy_refused_then_retried():
    md, result = backtest(make_panels(days("2023-08-21", 4), LIMIT_UP_BARS), {"2023-08-21": {ETF: 1000}})
    assert at(md, md.limit_up, ETF, "2023-08-22") == pytest.approx(4.400)
    assert at(md, md.limit_up, ETF, "2023-08-23") == pytest.approx(4.840)
    assert orders_of(result) == [
        ("2023-08-22", ETF, "buy", 1000.0, 0.0, "refused", "limit_up"),
        ("2023-08-23", ETF, "buy", 1000.0, 1000.0, "filled", ""),
    ]
    # 1000 × 4.500 = 4500.000; commission 4500 × 0.025 % = 1.125 → 1.13 (half up)
    assert trades_of(result) == [("2023-08-23", ETF, "buy", 4.5, 1000.0, 4500.0, 1.13, 0.0, 0.0)]
    assert equity_on(result, "2023-08-22", "cash") == money(CAPITAL)
    # cash 100000 − 4500 − 1.13 = 95498.87; equity at the 08-23 close 95498.87 + 4550.00 = 100048.87
    assert equity_on(result, "2023-08-23", "cash") == money(95_498.87)
    assert equity_on(result, "2023-08-23") == money(100_048.87)


def test_limit_up_buy_not_retried_without_resubmit():
    _, result = backtest(make_panels(days("2023-08-21", 4), LIMIT_UP_BARS), {"2023-08-21": {ETF: 1000}},
                         resubmit=False)
    assert orders_of(result) == [("2023-08-22", ETF, "buy", 1000.0, 0.0, "refused", "limit_up")]
    assert result.trades.empty
    assert result.equity["equity"].tolist() == [CAPITAL] * 4


# ---------------------------------------------------------------------------------------------------
# 4. Limit-down sell: refused
# ---------------------------------------------------------------------------------------------------

def test_limit_down_sell_refused_then_retried():
    bars = {ETF: [
        flat(4.000),                      # 08-21
        flat(4.000),                      # 08-22  buy 1000 at 4.000
        flat(3.600),                      # 08-23  limit down = 4.000 × 0.9 = 3.600: one-price bar
        bar(3.700, 3.750, 3.650, 3.700),  # 08-24  limit down = 3.600 × 0.9 = 3.240
        flat(3.700),                      # 08-25
    ]}
    md, result = backtest(make_panels(days("2023-08-21", 5), bars),
                          {"2023-08-21": {ETF: 1000}, "2023-08-22": {ETF: 0}})
    assert at(md, md.limit_down, ETF, "2023-08-23") == pytest.approx(3.600)
    assert orders_of(result) == [
        ("2023-08-22", ETF, "buy", 1000.0, 1000.0, "filled", ""),
        ("2023-08-23", ETF, "sell", 1000.0, 0.0, "refused", "limit_down"),
        ("2023-08-24", ETF, "sell", 1000.0, 1000.0, "filled", ""),
    ]
    assert trades_of(result) == [
        # 4000.000, commission 1.00
        ("2023-08-22", ETF, "buy", 4.0, 1000.0, 4000.0, 1.00, 0.0, 0.0),
        # 3700.000, commission 0.925 → 0.93
        ("2023-08-24", ETF, "sell", 3.7, 1000.0, 3700.0, 0.93, 0.0, 0.0),
    ]
    # 08-23: still 1000 units, valued at 3.600: 95999.00 + 3600.00 = 99599.00
    assert equity_on(result, "2023-08-23") == money(99_599.00)
    assert positions_on(result, "2023-08-23") == [[ETF, 1000.0, 3.6]]
    # 08-24: 95999.00 + 3700.00 − 0.93 = 99698.07, all cash
    assert equity_on(result, "2023-08-24", "cash") == money(99_698.07)
    assert equity_on(result, "2023-08-25") == money(99_698.07)


# ---------------------------------------------------------------------------------------------------
# 5. Suspension: no bar / flagged / zero volume → refused, kept, valued at the last close
# ---------------------------------------------------------------------------------------------------

def test_suspended_sell_refused_position_valued_at_last_close():
    bars = {STOCK: [
        flat(10.00),                          # 08-21
        flat(10.00),                          # 08-22  buy 1000 at 10.00
        bar(10.00, 10.60, 9.95, 10.50),       # 08-23  close 10.50
        None,                                 # 08-24  no bar (suspended flag set too)
        bar(10.50, 10.50, 10.50, 10.50, 0),   # 08-25  zero-volume bar: suspended
        bar(10.20, 10.30, 10.10, 10.20),      # 08-28  trading again
    ]}
    suspended = {STOCK: [False, False, False, True, False, False]}
    md, result = backtest(make_panels(days("2023-08-21", 6), bars, suspended=suspended),
                          {"2023-08-21": {STOCK: 1000}, "2023-08-23": {STOCK: 0}})
    assert md.suspended[:, 0].tolist() == [False, False, False, True, True, False]
    assert orders_of(result) == [
        ("2023-08-22", STOCK, "buy", 1000.0, 1000.0, "filled", ""),
        ("2023-08-24", STOCK, "sell", 1000.0, 0.0, "refused", "suspended"),
        ("2023-08-25", STOCK, "sell", 1000.0, 0.0, "refused", "suspended"),
        ("2023-08-28", STOCK, "sell", 1000.0, 1000.0, "filled", ""),
    ]
    assert trades_of(result) == [
        # 10000.00: commission 5.00, transfer 0.10
        ("2023-08-22", STOCK, "buy", 10.0, 1000.0, 10000.0, 5.00, 0.0, 0.10),
        # 10200.00: commission 5.00 (2.55 < min), stamp 10200 × 0.05 % = 5.10, transfer 0.102 → 0.10
        ("2023-08-28", STOCK, "sell", 10.2, 1000.0, 10200.0, 5.00, 5.10, 0.10),
    ]
    # cash after the buy 100000 − 10005.10 = 89994.90; the position is worth 1000 × 10.50 on 08-23,
    # and still at that last close on the suspended 08-24 and 08-25.
    for day in ("2023-08-23", "2023-08-24", "2023-08-25"):
        assert equity_on(result, day, "cash") == money(89_994.90)
        assert equity_on(result, day, "market_value") == money(10_500.00)
        assert equity_on(result, day) == money(100_494.90)
    assert positions_on(result, "2023-08-24") == [[STOCK, 1000.0, 10.50]]
    # 08-28: 89994.90 + 10200 − 5.00 − 5.10 − 0.10 = 100184.70
    assert equity_on(result, "2023-08-28") == money(100_184.70)


# ---------------------------------------------------------------------------------------------------
# 6. 159915 (ChiNext ETF): ±10 % until 2020-08-21, ±20 % from 2020-08-24
# ---------------------------------------------------------------------------------------------------

def test_chinext_etf_limit_widens_on_2020_08_24():
    bars = {
        CHINEXT_ETF: [
            flat(2.000),                      # 2020-08-19
            flat(2.000),                      # 2020-08-20  close 2.000
            bar(2.200, 2.200, 1.980, 2.000),  # 2020-08-21  limit up 2.000 × 1.1 = 2.200: open at it
            bar(2.300, 2.350, 2.250, 2.300),  # 2020-08-24  limit up 2.000 × 1.2 = 2.400: +15 % trades
            flat(2.300),                      # 2020-08-25
        ],
        ETF: [flat(2.000)] * 5,  # a ±10 % ETF on the same closes, for contrast
    }
    md, result = backtest(make_panels(["2020-08-19", "2020-08-20", "2020-08-21", "2020-08-24", "2020-08-25"],
                                      bars), {"2020-08-20": {CHINEXT_ETF: 1000}})
    assert at(md, md.limit_up, CHINEXT_ETF, "2020-08-21") == pytest.approx(2.200)
    assert at(md, md.limit_up, CHINEXT_ETF, "2020-08-24") == pytest.approx(2.400)
    assert at(md, md.limit_down, CHINEXT_ETF, "2020-08-24") == pytest.approx(1.600)
    assert at(md, md.limit_up, ETF, "2020-08-24") == pytest.approx(2.200)
    assert orders_of(result) == [
        ("2020-08-21", CHINEXT_ETF, "buy", 1000.0, 0.0, "refused", "limit_up"),
        ("2020-08-24", CHINEXT_ETF, "buy", 1000.0, 1000.0, "filled", ""),
    ]
    # 1000 × 2.300 = 2300.000 (15 % above 2.000); commission 0.575 → 0.58; cash 97699.42
    assert trades_of(result) == [("2020-08-24", CHINEXT_ETF, "buy", 2.3, 1000.0, 2300.0, 0.58, 0.0, 0.0)]
    assert equity_on(result, "2020-08-24", "cash") == money(97_699.42)


# ---------------------------------------------------------------------------------------------------
# 7. Minimum commission
# ---------------------------------------------------------------------------------------------------


def test_minimum_commission_in_the_engine():
    _, result = backtest(make_panels(days("2023-08-28", 3), {STOCK: [flat(10.00)] * 3}),
                         {"2023-08-28": {STOCK: 100}})
    # 100 × 10.00: commission 5.00 (not 0.25), transfer 0.01; cash 100000 − 1005.01 = 98994.99
    assert trades_of(result) == [("2023-08-29", STOCK, "buy", 10.0, 100.0, 1000.0, 5.00, 0.0, 0.01)]
    assert equity_on(result, "2023-08-29", "cash") == money(98_994.99)
    # a broker without the minimum: 0.25
    _, flat_fee = backtest(make_panels(days("2023-08-28", 3), {STOCK: [flat(10.00)] * 3}),
                           {"2023-08-28": {STOCK: 100}}, stock_commission=Commission(rate=0.00025, minimum=0))
    assert flat_fee.trades["commission"].tolist() == [0.25]


# ---------------------------------------------------------------------------------------------------
# 8. Stamp duty halved on 2023-08-28; transfer fee both sides; ETFs exempt
# ---------------------------------------------------------------------------------------------------

def test_stamp_duty_either_side_of_2023_08_28():
    bars = {STOCK: [flat(10.00)] * 6, STOCK_B: [flat(10.00)] * 6, ETF: [flat(4.000)] * 6}
    md, result = backtest(make_panels(days("2023-08-22", 6), bars), {
        "2023-08-22": {STOCK: 1000, STOCK_B: 1000, ETF: 1000},  # buy all three on 08-23
        "2023-08-24": {STOCK_B: 1000},                          # sell STOCK and ETF on 08-25 (Friday)
        "2023-08-25": {},                                       # sell STOCK_B on 08-28 (Monday)
    })
    assert md.stamp_rate[md.days.get_loc(pd.Timestamp("2023-08-25"))] == 0.001
    assert md.stamp_rate[md.days.get_loc(pd.Timestamp("2023-08-28"))] == 0.0005
    assert set(md.transfer_rate) == {0.00001}
    assert trades_of(result) == [
        # buys: stocks 10000.00 → commission 5.00, transfer 0.10; ETF 4000.00 → commission 1.00 only
        ("2023-08-23", STOCK, "buy", 10.0, 1000.0, 10000.0, 5.00, 0.0, 0.10),
        ("2023-08-23", STOCK_B, "buy", 10.0, 1000.0, 10000.0, 5.00, 0.0, 0.10),
        ("2023-08-23", ETF, "buy", 4.0, 1000.0, 4000.0, 1.00, 0.0, 0.0),
        # 08-25: stamp 10000 × 0.1 % = 10.00; transfer 0.10; the ETF pays no stamp, no transfer
        ("2023-08-25", STOCK, "sell", 10.0, 1000.0, 10000.0, 5.00, 10.00, 0.10),
        ("2023-08-25", ETF, "sell", 4.0, 1000.0, 4000.0, 1.00, 0.0, 0.0),
        # 08-28: stamp 10000 × 0.05 % = 5.00
        ("2023-08-28", STOCK_B, "sell", 10.0, 1000.0, 10000.0, 5.00, 5.00, 0.10),
    ]
    # 100000 − 2 × 10005.10 − 4001.00 = 75988.80
    assert equity_on(result, "2023-08-23", "cash") == money(75_988.80)
    # + (10000 − 15.10) + (4000 − 1.00) = 89972.70
    assert equity_on(result, "2023-08-25", "cash") == money(89_972.70)
    # + (10000 − 10.10) = 99962.60 = 100000 − 37.40 of costs
    assert equity_on(result, "2023-08-28", "cash") == money(99_962.60)


# ---------------------------------------------------------------------------------------------------
# 9. Odd lots: a remainder below 100 may only be sold whole, with any number of lots
# ---------------------------------------------------------------------------------------------------

def test_odd_lot_sale_after_bonus_shares():
    d = days("2023-08-28", 5)  # 08-28 … 09-01; ex-date 08-30
    bars = {
        STOCK: [flat(15.00), flat(15.00), flat(10.00), flat(10.00), flat(10.00)],    # 10 → 15 (×1.5)
        STOCK_B: [flat(25.00), flat(25.00), flat(10.00), flat(10.00), flat(10.00)],  # 10 → 25 (×2.5)
    }
    factor = {STOCK: [1, 1, 1.5, 1.5, 1.5], STOCK_B: [1, 1, 2.5, 2.5, 2.5]}
    md, result = backtest(make_panels(d, bars, factor=factor), {
        "2023-08-28": {STOCK: 100, STOCK_B: 100},  # buy 100 each on 08-29
        "2023-08-30": {STOCK: 0, STOCK_B: 100},    # after the ex-date: 150 → 0 and 250 → 100
    })
    # reference on the ex-date 15.00 / 1.5 = 25.00 / 2.5 = 10.00 → limits 11.00 / 9.00
    assert at(md, md.limit_up, STOCK, "2023-08-30") == pytest.approx(11.00)
    assert at(md, md.limit_down, STOCK_B, "2023-08-30") == pytest.approx(9.00)
    assert result.cash_flows[["vt_symbol", "kind", "volume_before", "volume_after", "cash"]].values.tolist() == [
        [STOCK, "split", 100.0, 150.0, 0.0], [STOCK_B, "split", 100.0, 250.0, 0.0]]
    assert trades_of(result) == [
        # 1500.00: commission 5.00, transfer 0.015 → 0.02
        ("2023-08-29", STOCK, "buy", 15.0, 100.0, 1500.0, 5.00, 0.0, 0.02),
        # 2500.00: commission 5.00, transfer 0.025 → 0.03
        ("2023-08-29", STOCK_B, "buy", 25.0, 100.0, 2500.0, 5.00, 0.0, 0.03),
        # the whole 150 (odd 50 + 1 lot): 1500.00, commission 5.00, stamp 0.75, transfer 0.02
        ("2023-08-31", STOCK, "sell", 10.0, 150.0, 1500.0, 5.00, 0.75, 0.02),
        # 250 → 100: the odd 50 + 1 lot = 150, same costs
        ("2023-08-31", STOCK_B, "sell", 10.0, 150.0, 1500.0, 5.00, 0.75, 0.02),
    ]
    assert [o[-1] for o in orders_of(result)] == ["", "", "", ""]
    # cash 100000 − 1505.02 − 2505.03 = 95989.95; + 2 × (1500 − 5.77) = 98978.41
    assert equity_on(result, "2023-08-31", "cash") == money(98_978.41)
    # 100 STOCK_B left at 10.00
    assert equity_on(result, "2023-09-01") == money(99_978.41)
    assert positions_on(result, "2023-09-01") == [[STOCK_B, 100.0, 10.0]]


# ---------------------------------------------------------------------------------------------------
# 10. Corporate actions: unit split (holding × step) and cash distribution (credited on the ex-date)
# ---------------------------------------------------------------------------------------------------

def test_unit_split_and_cash_distribution_keep_equity_continuous():
    d = days("2023-08-21", 5)  # ex-date 08-24
    bars = {
        ETF: [flat(4.000), flat(4.000), flat(4.000), flat(2.000), bar(2.010, 2.030, 2.000, 2.020)],
        ETF_B: [flat(4.000), flat(4.000), flat(4.000), flat(3.950), flat(3.950)],
    }
    factor = {ETF: [1, 1, 1, 2, 2], ETF_B: [1, 1, 1, 4.00 / 3.95, 4.00 / 3.95]}
    md, result = backtest(make_panels(d, bars, factor=factor), {
        "2023-08-21": {ETF: 1000, ETF_B: 1000},  # buy both on 08-22
        "2023-08-24": {ETF_B: 1000},             # after the split: sell all ETF units on 08-25
    })
    assert at(md, md.split, ETF, "2023-08-24") == 2.0
    assert at(md, md.dividend, ETF_B, "2023-08-24") == pytest.approx(0.05)
    # ex-date limits from the reference price: 4.000 / 2 = 2.000 → 2.200 / 1.800;
    # 4.000 / (4.00 / 3.95) = 3.950 → 3.95 × 1.1 = 4.345, 3.95 × 0.9 = 3.555
    assert at(md, md.limit_up, ETF, "2023-08-24") == pytest.approx(2.200)
    assert at(md, md.limit_down, ETF, "2023-08-24") == pytest.approx(1.800)
    assert at(md, md.limit_up, ETF_B, "2023-08-24") == pytest.approx(4.345)
    assert at(md, md.limit_down, ETF_B, "2023-08-24") == pytest.approx(3.555)

    flows = result.cash_flows
    assert flows["date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-08-24", "2023-08-24"]
    assert flows[["vt_symbol", "kind", "volume_before", "volume_after", "cash"]].values.tolist() == [
        [ETF, "split", 1000.0, 2000.0, 0.0],
        [ETF_B, "dividend", 1000.0, 1000.0, 50.00],  # 1000 × (4.00 − 3.95) = 50.00
    ]
    # 08-22 buys: 2 × (4000.00 + 1.00 commission): cash 91998.00
    # 08-23: 91998.00 + 2 × 4000.00 = 99998.00
    assert equity_on(result, "2023-08-23") == money(99_998.00)
    # 08-24: 2000 × 2.000 + 1000 × 3.950 + (91998.00 + 50.00) = 4000 + 3950 + 92048 = 99998.00: no jump
    assert equity_on(result, "2023-08-24", "cash") == money(92_048.00)
    assert equity_on(result, "2023-08-24", "market_value") == money(7_950.00)
    assert equity_on(result, "2023-08-24") == money(99_998.00)
    assert positions_on(result, "2023-08-24") == [[ETF, 2000.0, 2.0], [ETF_B, 1000.0, 3.95]]
    # the ex-date's profit per symbol is zero: price change offset by the split / the cash
    assert result.symbol_pnl.loc[pd.Timestamp("2023-08-24")].tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    # 08-25: sell the 2000 post-split units at 2.010 = 4020.00, commission 1.005 → 1.01
    assert trades_of(result)[-1] == ("2023-08-25", ETF, "sell", 2.01, 2000.0, 4020.0, 1.01, 0.0, 0.0)
    # cash 92048.00 + 4020.00 − 1.01 = 96066.99; equity + 1000 × 3.95 = 100016.99
    assert equity_on(result, "2023-08-25") == money(100_016.99)


# ---------------------------------------------------------------------------------------------------
# 11. Cash shortfall: the buy shrinks to the whole lots that fit including fees
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("capital,price,target,expected_volume,expected_costs,expected_cash", [
    # 1000 shares cost 10000 + 5.00 + 0.10 = 10005.10 > 10005.00 → 900: 9000 + 5.00 + 0.09 = 9005.09
    (10_005.00, 10.00, 2000, 900.0, (5.00, 0.0, 0.09), 999.91),
    # 10000 shares cost 100000 + 25.00 + 1.00 = 100026.00 <= 100030.00 → all 10000 fit; cash 4.00
    (100_030.00, 10.00, 20000, 10000.0, (25.00, 0.0, 1.00), 4.00),
    # exactly enough for 100: 1000 + 5.00 + 0.01 = 1005.01
    (1_005.01, 10.00, 500, 100.0, (5.00, 0.0, 0.01), 0.0),
    # one fen short of 100 shares: nothing
    (1_005.00, 10.00, 500, 0.0, None, 1_005.00),
])
def test_cash_shortfall_stock(capital, price, target, expected_volume, expected_costs, expected_cash):
    _, result = backtest(make_panels(days("2023-08-28", 3), {STOCK: [flat(price)] * 3}),
                         {"2023-08-28": {STOCK: target}}, capital=capital)
    order = orders_of(result)[0]
    assert order[4] == expected_volume
    assert "insufficient_cash" in order[-1].split(";")
    assert order[5] == ("refused" if expected_volume == 0 else "partial")
    if expected_costs is not None:
        t = result.trades.iloc[0]
        assert (t.volume, t.commission, t.stamp_duty, t.transfer_fee) == (expected_volume, *expected_costs)
    assert equity_on(result, "2023-08-29", "cash") == money(expected_cash)
    assert (result.equity["cash"] >= 0).all()
    # insufficient cash is not retried: one order only
    assert len(result.orders) == 1


def test_cash_shortfall_weight_target():
    # weight 1.0 of 100000 at 4.000 = 25000 units, but 100000 + 25.00 commission does not fit:
    # the largest lot count that does is 24900: 99600.00 + 24.90 = 99624.90 → cash 375.10
    _, result = backtest(make_panels(days("2023-08-28", 3), {ETF: [flat(4.000)] * 3}),
                         {"2023-08-28": {ETF: 1.0}}, kind="weight")
    assert orders_of(result) == [("2023-08-29", ETF, "buy", 25000.0, 24900.0, "partial", "insufficient_cash")]
    assert trades_of(result) == [("2023-08-29", ETF, "buy", 4.0, 24900.0, 99600.0, 24.90, 0.0, 0.0)]
    assert equity_on(result, "2023-08-29", "cash") == money(375.10)
    assert (result.equity["cash"] >= 0).all()


# ---------------------------------------------------------------------------------------------------
# 12. Participation cap
# ---------------------------------------------------------------------------------------------------

def test_participation_cap():
    bars = {STOCK: [flat(10.00), flat(10.00, volume=5000), flat(10.00), flat(10.00)]}
    _, result = backtest(make_panels(days("2023-08-28", 4), bars), {"2023-08-28": {STOCK: 1000}},
                         participation_cap=0.1)
    assert orders_of(result) == [
        # 0.1 × 5000 = 500 of the 1000 wanted
        ("2023-08-29", STOCK, "buy", 1000.0, 500.0, "partial", "participation_cap"),
        # retried: the remaining 500 on a normal day
        ("2023-08-30", STOCK, "buy", 500.0, 500.0, "filled", ""),
    ]
    assert trades_of(result) == [
        # 5000.00: commission 1.25 → 5.00, transfer 0.05
        ("2023-08-29", STOCK, "buy", 10.0, 500.0, 5000.0, 5.00, 0.0, 0.05),
        ("2023-08-30", STOCK, "buy", 10.0, 500.0, 5000.0, 5.00, 0.0, 0.05),
    ]
    # 100000 − 2 × 5005.05 = 89989.90
    assert equity_on(result, "2023-08-30", "cash") == money(89_989.90)


# ---------------------------------------------------------------------------------------------------
# 13. Sells before buys: a rotation pays for the new position with the old one's proceeds
# ---------------------------------------------------------------------------------------------------

def test_rotation_uses_sale_proceeds_the_same_day():
    # B's column comes first: the order is sells-then-buys, not column order
    bars = {STOCK_B: [flat(9.00)] * 4, STOCK: [flat(10.00)] * 4}
    _, result = backtest(make_panels(days("2023-08-25", 4), bars),
                         {"2023-08-25": {STOCK: 1000}, "2023-08-28": {STOCK_B: 1000}}, capital=10_010.00)
    assert trades_of(result) == [
        # 08-28: 10000.00 + 5.00 + 0.10 → cash 4.90
        ("2023-08-28", STOCK, "buy", 10.0, 1000.0, 10000.0, 5.00, 0.0, 0.10),
        # 08-29: sell A first: + 10000.00 − 5.00 − 5.00 − 0.10 → cash 9994.80
        ("2023-08-29", STOCK, "sell", 10.0, 1000.0, 10000.0, 5.00, 5.00, 0.10),
        # then buy B with it: 9000.00 + 5.00 + 0.09 = 9005.09 → cash 989.71
        ("2023-08-29", STOCK_B, "buy", 9.0, 1000.0, 9000.0, 5.00, 0.0, 0.09),
    ]
    assert equity_on(result, "2023-08-28", "cash") == money(4.90)
    assert equity_on(result, "2023-08-29", "cash") == money(989.71)
    assert [o[-1] for o in orders_of(result)] == ["", "", ""]


def test_rotation_by_weight():
    bars = {ETF: [flat(4.000)] * 3, ETF_B: [flat(5.000)] * 3}
    _, result = backtest(make_panels(days("2023-08-28", 3), bars),
                         {"2023-08-28": {ETF: 1.0}, "2023-08-29": {ETF_B: 1.0}}, kind="weight")
    assert trades_of(result) == [
        # as in the weight shortfall: 24900 × 4.000 + 24.90 → cash 375.10
        ("2023-08-29", ETF, "buy", 4.0, 24900.0, 99600.0, 24.90, 0.0, 0.0),
        # 08-30: equity at the open 375.10 + 99600.00 = 99975.10; sell 24900: + 99600 − 24.90 → 99950.20
        ("2023-08-30", ETF, "sell", 4.0, 24900.0, 99600.0, 24.90, 0.0, 0.0),
        # want 99975.10 / 5.000 = 19995.02 → 19900: 99500.00 + 24.875 → 24.88 → cash 425.32
        ("2023-08-30", ETF_B, "buy", 5.0, 19900.0, 99500.0, 24.88, 0.0, 0.0),
    ]
    assert equity_on(result, "2023-08-30", "cash") == money(425.32)


# ---------------------------------------------------------------------------------------------------
# 14. VWAP fills: turnover / volume on the tick grid
# ---------------------------------------------------------------------------------------------------

def test_vwap_fill_price():
    bars = {
        # 4012345.60 / 1000000 = 4.0123456 → 4.012
        ETF: [flat(4.000), bar(4.000, 4.050, 3.980, 4.020, 1_000_000, 4_012_345.60), flat(4.020)],
        # 5200000 / 1000000 = 5.200 lies above the high 5.100: clipped into the bar
        ETF_B: [flat(5.000), bar(5.000, 5.100, 4.950, 5.050, 1_000_000, 5_200_000.0), flat(5.050)],
        # 10037000 / 1000000 = 10.037 → 10.04
        STOCK: [flat(10.00), bar(10.00, 10.10, 9.95, 10.05, 1_000_000, 10_037_000.0), flat(10.05)],
    }
    _, result = backtest(make_panels(days("2023-08-28", 3), bars),
                         {"2023-08-28": {ETF: 1000, ETF_B: 1000, STOCK: 1000}}, fill_price=FillPrice.VWAP)
    assert trades_of(result) == [
        # 4012.000, commission 1.003 → 1.00
        ("2023-08-29", ETF, "buy", 4.012, 1000.0, 4012.0, 1.00, 0.0, 0.0),
        # 5100.000, commission 1.275 → 1.28
        ("2023-08-29", ETF_B, "buy", 5.1, 1000.0, 5100.0, 1.28, 0.0, 0.0),
        # 10040.00, commission 2.51 → 5.00, transfer 0.1004 → 0.10
        ("2023-08-29", STOCK, "buy", 10.04, 1000.0, 10040.0, 5.00, 0.0, 0.10),
    ]
    # 100000 − 4013.00 − 5101.28 − 10045.10 = 80840.62
    assert equity_on(result, "2023-08-29", "cash") == money(80_840.62)


@pytest.mark.parametrize("symbol,turnover,expected_price", [
    # exactly half a tick: round half up, as the exchanges do and as round_to_tick does for limits
    (STOCK, 4_015_000.0, 4.02),   # 4.015 → 4.02
    (ETF, 1_012_500.0, 1.013),    # 1.0125 → 1.013
])
def test_vwap_exact_half_tick_rounds_up(symbol, turnover, expected_price):
    open_ = round(expected_price, 2)
    bars = {symbol: [flat(open_), bar(open_, open_ + 0.05, open_ - 0.05, open_, 1_000_000, turnover), flat(open_)]}
    _, result = backtest(make_panels(days("2023-08-28", 3), bars), {"2023-08-28": {symbol: 1000}},
                         fill_price=FillPrice.VWAP)
    assert result.trades["price"].round(6).tolist() == [expected_price]


# ---------------------------------------------------------------------------------------------------
# 15. Slippage: whole ticks or basis points on the tick grid, never beyond the day's limit
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("slippage,price,cost", [
    # 2 ticks on an ETF: 4.000 + 0.002 = 4.002; slippage cost 1000 × 0.002 = 2.00
    ({"unit": "ticks", "amount": 2}, 4.002, 2.0),
    # 5 bp: 4.000 × 1.0005 = 4.002 exactly; a buy rounds up to the tick → 4.002
    ({"unit": "bps", "amount": 5}, 4.002, 2.0),
    # 12 bp: 4.0048 → up to the tick 4.005; cost 5.00
    ({"unit": "bps", "amount": 12}, 4.005, 5.0),
    # 600 ticks would be 4.600, beyond the 4.400 limit-up (prev close 4.000 × 1.1): capped at 4.400
    ({"unit": "ticks", "amount": 600}, 4.4, 400.0),
])
def test_slippage_on_a_buy(slippage, price, cost):
    bars = {ETF: [flat(4.000), flat(4.000), flat(4.000)]}
    _, result = backtest(make_panels(days("2023-08-21", 3), bars), {"2023-08-21": {ETF: 1000}},
                          slippage=slippage)
    trade = result.trades.iloc[0]
    assert trade["price"] == pytest.approx(price) and trade["slippage"] == pytest.approx(cost)
    # the cash paid is at the slipped price: commission 0.025 % of the slipped value, rounded half up
    value = round(price * 1000, 2)
    assert result.equity["cash"].iloc[-1] == money(CAPITAL - value - cents(value * 0.00025))


def test_slippage_on_a_sell_moves_the_price_down():
    bars = {ETF: [flat(4.000), flat(4.000), flat(4.000), flat(4.000)]}
    _, result = backtest(make_panels(days("2023-08-21", 4), bars),
                          {"2023-08-21": {ETF: 1000}, "2023-08-22": {ETF: 0}},
                          slippage={"unit": "ticks", "amount": 3})
    sell = result.trades.iloc[1]
    assert sell["direction"] == "sell" and sell["price"] == pytest.approx(3.997)
    assert sell["slippage"] == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------------
# 16. A share-count target decided before an ex-date follows the split
# ---------------------------------------------------------------------------------------------------

def test_share_target_decided_before_a_split_is_scaled():
    d = days("2023-08-21", 4)  # decision 08-22 (pre-split units), ex-date and fill 08-23
    bars = {ETF: [flat(4.000), flat(4.000), flat(2.000), flat(2.000)]}
    _, result = backtest(make_panels(d, bars, factor={ETF: [1, 1, 2, 2]}),
                          {"2023-08-21": {ETF: 1000}, "2023-08-22": {ETF: 500}})
    # 1000 bought 08-22 → 2000 after the ×2 split; the target of 500 old units is 1000 new units,
    # so 1000 are sold on 08-23 (not 1500)
    assert result.cash_flows["volume_after"].tolist() == [2000.0]
    assert trades_of(result)[-1][:5] == ("2023-08-23", ETF, "sell", 2.0, 1000.0)
