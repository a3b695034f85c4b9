"""Sizing a stage's slice: whole lots, the minimum commission and ADV caps, worked by hand.

A stage capital of 100,000 CNY (5 % of 2,000,000), commission 0.025 % with a 5 CNY minimum, default rules:
round-up tolerance 10 %, flag above 10 bp of commission, at most 10 % of ADV per order.
"""

from __future__ import annotations

import pytest

from vnpy_rotation.canary.capital import SliceRules, check_slice, commission

CAPITAL = 100_000.0
COSTS = {"commission_rate": 0.00025, "commission_min": 5.0}
BIG_ADV = 1e9

# symbol: (weight, price, lot, ADV) -> (feasible, volume, order value, commission bp, flag, capped, rounded up)
CASES = {
    # one lot 100 x 301.5 = 30,150 > 5,000 x 1.1: skipped
    "600519": ((0.05, 301.5, 100, BIG_ADV), (False, 0, 0.0, 0.0, False, False, False)),
    # 30,000 / 10 = 3,000 shares; commission 30,000 x 0.025 % = 7.5 CNY = 2.5 bp
    "510300": ((0.30, 10.0, 100, BIG_ADV), (True, 3000, 30_000.0, 2.5, False, False, False)),
    # 4,000 / 3.456 = 1,157.4 -> 1,100 shares = 3,801.6 CNY; the 5 CNY minimum is 13.15 bp: flagged
    "159915": ((0.04, 3.456, 100, BIG_ADV), (True, 1100, 3801.6, 5 / 3801.6 * 1e4, True, False, False)),
    # 5,000 / 52 = 96 shares: zero lots, but one lot 5,200 <= 5,500: rounded up; 5 CNY = 9.6 bp
    "000001": ((0.05, 52.0, 100, BIG_ADV), (True, 100, 5200.0, 5 / 5200 * 1e4, False, False, True)),
    # target 30,000 capped at 10 % of ADV 200,000 = 20,000 -> 1,000 shares
    "000002": ((0.30, 20.0, 100, 200_000.0), (True, 1000, 20_000.0, 2.5, False, True, False)),
    # 10 % of ADV 30,000 = 3,000 < one lot 5,000: skipped
    "000003": ((0.10, 50.0, 100, 30_000.0), (False, 0, 0.0, 0.0, False, True, False)),
}


@pytest.mark.parametrize("symbol", list(CASES))
def test_slice_by_hand(symbol: str) -> None:
    (weight, price, lot, adv), expected = CASES[symbol]
    (check,) = check_slice({symbol: weight}, {symbol: price}, {symbol: lot}, CAPITAL, adv={symbol: adv}, **COSTS)
    feasible, volume, value, bp, flag, capped, up = expected
    assert check.symbol == symbol
    assert check.target_value == pytest.approx(weight * CAPITAL)
    assert check.one_lot_value == pytest.approx(lot * price)
    assert (check.feasible, check.volume, check.commission_flag, check.adv_capped, check.rounded_up) == \
        (feasible, volume, flag, capped, up)
    assert check.order_value == pytest.approx(value)
    assert check.commission_bp == pytest.approx(bp)
    assert bool(check.reason) == (not feasible or flag or capped or up)  # every departure states its rule


def test_skip_states_the_rule() -> None:
    (check,) = check_slice({"600519": 0.05}, {"600519": 301.5}, {"600519": 100}, CAPITAL, adv={"600519": BIG_ADV},
                           rules=SliceRules(lot_tolerance=0.0), **COSTS)
    assert check.reason == "one lot 30,150 CNY > target 5,000 CNY"


def test_star_lot_then_steps_of_one() -> None:
    # STAR: at least 200 shares, then steps of 1: 9,000 / 40 = 225 shares
    (check,) = check_slice({"688001": 0.09}, {"688001": 40.0}, {"688001": 200}, CAPITAL, adv={"688001": BIG_ADV},
                           lot_steps={"688001": 1}, **COSTS)
    assert (check.volume, check.order_value) == (225, 9000.0)


def test_round_ups_that_overspend_are_dropped_largest_first() -> None:
    # 10,000 CNY: both targets 5,000 round up (5,200 and 5,050), 10,250 > 10,000: the 200 CNY overshoot goes
    checks = check_slice({"A": 0.5, "B": 0.5}, {"A": 52.0, "B": 50.5}, {"A": 100, "B": 100}, 10_000.0,
                         adv={"A": BIG_ADV, "B": BIG_ADV}, **COSTS)
    assert [(c.symbol, c.feasible, c.volume) for c in checks] == [("A", False, 0), ("B", True, 100)]


def test_missing_inputs_are_not_guessed() -> None:
    checks = check_slice({"A": 0.2, "B": 0.2, "C": 0.2, "D": 0.0}, {"A": 10.0, "C": 10.0, "B": 10.0},
                         {"A": 100, "B": 100}, CAPITAL, adv={"A": BIG_ADV, "C": BIG_ADV}, **COSTS)
    assert [(c.symbol, c.feasible) for c in checks] == [("A", True), ("B", False), ("C", False)]  # D: no target
    assert "ADV" in checks[1].reason and "lot" in checks[2].reason


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="long only"):
        check_slice({"A": -0.1}, {"A": 1.0}, {"A": 100}, CAPITAL, adv={"A": BIG_ADV}, **COSTS)


def test_commission() -> None:
    assert commission(10_000.0, 0.00025, 5.0) == 5.0  # 2.5 CNY by rate: the minimum applies
    assert commission(40_000.0, 0.00025, 5.0) == 10.0
    assert commission(1_000.0, 0.00025, 0.0) == 0.25  # ETFs commonly without the minimum
