"""The matcher one order at a time: T+1/T+0, lots, minimum commission, cash, caps, suspension, and
property tests of the lot, fen and fee maths.

These call :func:`vnpy_rotation.backtest.matching.match` (the Python face of the compiled matcher the
backtest loop runs) with the bar and terms the engine would pass on one day; whole-run scenarios are in
test_backtest_scenarios.py. Every expectation is worked out by hand beside it.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scenario_market import CROSS, ETF, STAR, STOCK, bar_on, flat, make_panels, terms_on

from vnpy_rotation.backtest.config import BacktestConfig, Rules
from vnpy_rotation.backtest.matching import Bar, SymbolTerms, cents, fees, match, valid_buy, valid_sell
from vnpy_rotation.data.market_data import build_market_data


def _fill(f):
    """A matcher fill as (volume, price, value, commission, stamp, transfer, reasons)."""
    price = None if math.isnan(f.price) else round(f.price, 6)
    return (f.volume, price, round(f.value, 6), f.commission, f.stamp_duty, f.transfer_fee, f.reasons)


# A one-day market with every kind of symbol used by the matcher-level tests (2023-08-29: stamp 0.05 %).
MATCH_DAY = "2023-08-29"


@pytest.fixture(scope="module")
def match_md():
    return build_market_data(make_panels(["2023-08-28", MATCH_DAY], {
        STOCK: [flat(10.00), flat(10.00)],
        ETF: [flat(4.000), flat(4.000)],
        CROSS: [flat(1.000), flat(1.000)],
        STAR: [flat(50.00), flat(50.00)],
    }))


@pytest.mark.parametrize("symbol,held,locked,wanted,t1,expected", [
    # all 1000 bought today: nothing sellable
    (STOCK, 1000, 1000, 1000, True, (0.0, None, 0.0, 0.0, 0.0, 0.0, ("t1_locked",))),
    # held 300, 100 of them bought today: sells the 200 old shares. value 200 × 10.00 = 2000.00;
    # commission max(0.50, 5.00) = 5.00; stamp 2000 × 0.05 % = 1.00; transfer 2000 × 0.001 % = 0.02
    (STOCK, 300, 100, 300, True, (200.0, 10.0, 2000.0, 5.00, 1.00, 0.02, ("t1_locked",))),
    # nothing locked: all 300. value 3000.00; commission 5.00; stamp 1.50; transfer 0.03
    (STOCK, 300, 0, 300, True, (300.0, 10.0, 3000.0, 5.00, 1.50, 0.03, ())),
    # the T+1 rule switched off: the locked 100 go too
    (STOCK, 300, 100, 300, False, (300.0, 10.0, 3000.0, 5.00, 1.50, 0.03, ())),
    # equity ETFs are T+1 as well (no stamp / transfer fee on funds)
    (ETF, 1000, 1000, 1000, True, (0.0, None, 0.0, 0.0, 0.0, 0.0, ("t1_locked",))),
    # held 250 (odd 50 old), 100 bought today: sellable 150 = the odd 50 + one lot.
    # value 1500.00; commission 5.00; stamp 0.75; transfer 0.015 → 0.02 (half up)
    (STOCK, 250, 100, 250, True, (150.0, 10.0, 1500.0, 5.00, 0.75, 0.02, ("t1_locked",))),
])
def test_t1_lock_in_the_matcher(match_md, symbol, held, locked, wanted, t1, expected):
    config = BacktestConfig(rules=Rules(t1=t1))
    terms = terms_on(match_md, symbol, MATCH_DAY, config)
    assert terms.t0 is False
    fill = match(False, wanted, bar_on(match_md, symbol, MATCH_DAY), terms, config, held=held, locked=locked)
    assert _fill(fill) == expected


def test_t0_cross_border_etf_round_trip(match_md):
    config = BacktestConfig()
    terms = terms_on(match_md, CROSS, MATCH_DAY, config)
    assert terms.t0 is True and terms.is_stock is False
    quote = bar_on(match_md, CROSS, MATCH_DAY)
    # buy 1000 × 1.000 = 1000.00; commission 1000 × 0.025 % = 0.25 (ETF: no minimum); no stamp/transfer
    bought = match(True, 1000, quote, terms, config, held=0, locked=0)
    assert _fill(bought) == (1000.0, 1.0, 1000.0, 0.25, 0.0, 0.0, ())
    # sell the same 1000 units the same day: locked = 1000 but T+0, so all 1000 go; commission 0.25
    sold = match(False, 1000, quote, terms, config, held=1000, locked=1000)
    assert _fill(sold) == (1000.0, 1.0, 1000.0, 0.25, 0.0, 0.0, ())
    # the same sell of an equity ETF (T+1) is refused
    t1_terms = terms_on(match_md, ETF, MATCH_DAY, config)
    assert _fill(match(False, 1000, bar_on(match_md, ETF, MATCH_DAY), t1_terms, config,
                       held=1000, locked=1000))[-1] == ("t1_locked",)


def test_suspended_in_the_matcher():
    terms = SymbolTerms(100, 100, 0.01, True, False, 0.00025, 5.0, 0.0005, 0.00001)
    config = BacktestConfig()
    for quote in (Bar(10.0, 0.0, 11.0, 9.0, False), Bar(math.nan, math.nan, 11.0, 9.0, False)):
        for buy in (True, False):
            fill = match(buy, 100, quote, terms, config, held=100)
            assert (fill.volume, fill.reasons) == (0.0, ("suspended",))


@pytest.mark.parametrize("symbol,volume,expected", [
    # 100 × 10.00 = 1000.00: 0.25 → minimum 5.00; transfer 0.01
    (STOCK, 100, (100.0, 10.0, 1000.0, 5.00, 0.0, 0.01, ())),
    # 1000 × 10.00 = 10000.00: 2.50 → 5.00; transfer 0.10
    (STOCK, 1000, (1000.0, 10.0, 10000.0, 5.00, 0.0, 0.10, ())),
    # 3000 × 10.00 = 30000.00: 7.50 above the minimum; transfer 0.30
    (STOCK, 3000, (3000.0, 10.0, 30000.0, 7.50, 0.0, 0.30, ())),
    # ETF 100 × 4.000 = 400.00: 0.10, no minimum on ETFs by default
    (ETF, 100, (100.0, 4.0, 400.0, 0.10, 0.0, 0.0, ())),
])
def test_minimum_commission_in_the_matcher(match_md, symbol, volume, expected):
    config = BacktestConfig()
    fill = match(True, volume, bar_on(match_md, symbol, MATCH_DAY), terms_on(match_md, symbol, MATCH_DAY),
                 config)
    assert _fill(fill) == expected


@pytest.mark.parametrize("held,wanted,expected", [
    (150, 150, 150),  # whole position, odd included
    (250, 150, 150),  # odd 50 + one lot
    (250, 100, 100),  # one lot, odd kept
    (250, 120, 100),  # 120 is neither lots nor odd + lots: round down to one lot
    (250, 200, 200),  # two lots
    (50, 30, 0),      # part of an odd lot: impossible
    (50, 50, 50),     # the odd lot alone, whole
])
def test_odd_lot_rounding_in_the_matcher(match_md, held, wanted, expected):
    fill = match(False, wanted, bar_on(match_md, STOCK, MATCH_DAY), terms_on(match_md, STOCK, MATCH_DAY),
                 BacktestConfig(), held=held)
    assert fill.volume == expected
    assert fill.reasons == (() if expected == wanted else ("lot_rounding",))


@pytest.mark.parametrize("symbol,cash,wanted,expected_volume", [
    # STOCK at 10.00: 900 → 9000 + 5.00 + 0.09 = 9005.09 fits 9500.00; 1000 → 10005.10 does not
    (STOCK, 9_500.00, 2000, 900.0),
    # 10000 → 100000 + 25.00 + 1.00 = 100026.00 fits exactly
    (STOCK, 100_026.00, 20000, 10000.0),
    # 100 → 1000 + 5.00 + 0.01 = 1005.01 fits exactly
    (STOCK, 1_005.01, 500, 100.0),
    (STOCK, 1_005.00, 500, 0.0),
    # STAR at 50.00: 250 → 12500 + 5.00 (3.125 < min) + 0.125 → 0.13 = 12505.13 fits exactly
    (STAR, 12_505.13, 400, 250.0),
    # 249 → 12450 + 5.00 + 0.1245 → 0.12 = 12455.12 fits 12505.12; 250 is one fen short
    (STAR, 12_505.12, 400, 249.0),
    # ETF at 4.000 (no minimum): 24900 → 99600 + 24.90 = 99624.90 fits 100000; 25000 → 100025.00 does not
    (ETF, 100_000.00, 25000, 24900.0),
])
def test_cash_shortfall_in_the_matcher(match_md, symbol, cash, wanted, expected_volume):
    # the largest valid quantity whose value plus fees fits in the cash
    config = BacktestConfig(participation_cap=1.0)
    fill = match(True, wanted, bar_on(match_md, symbol, MATCH_DAY), terms_on(match_md, symbol, MATCH_DAY),
                 config, cash=cash)
    assert fill.volume == expected_volume
    assert fill.reasons == ("insufficient_cash",)
    assert fill.value + fill.commission + fill.stamp_duty + fill.transfer_fee <= cash + 1e-9


@pytest.mark.parametrize("buy,cap_volume,wanted,expected", [
    (True, 5000, 1000, (500.0, ("participation_cap",))),
    (True, 5500, 1000, (500.0, ("participation_cap",))),  # cap 550 → 500 whole lots
    (True, 900, 1000, (0.0, ("participation_cap",))),     # cap 90 < one lot
    (False, 5000, 1000, (500.0, ("participation_cap",))),
    (True, 20000, 1000, (1000.0, ())),
])
def test_participation_cap_in_the_matcher(match_md, buy, cap_volume, wanted, expected):
    quote = bar_on(match_md, STOCK, MATCH_DAY)._replace(volume=cap_volume)
    fill = match(buy, wanted, quote, terms_on(match_md, STOCK, MATCH_DAY), BacktestConfig(participation_cap=0.1),
                 held=1000)
    assert (fill.volume, fill.reasons) == expected


@pytest.mark.parametrize("buy,held,wanted,expected", [
    (True, 0, 250, (250.0, ())),               # ≥ 200 then any share
    (True, 0, 199, (0.0, ("lot_rounding",))),  # below the minimum order
    (False, 250, 210, (210.0, ())),
    (False, 250, 120, (0.0, ("lot_rounding",))),  # below 200 and not the whole holding
    (False, 150, 150, (150.0, ())),               # a remainder below 200 sold whole
])
def test_star_lots_in_the_matcher(match_md, buy, held, wanted, expected):
    fill = match(buy, wanted, bar_on(match_md, STAR, MATCH_DAY), terms_on(match_md, STAR, MATCH_DAY),
                 BacktestConfig(participation_cap=1.0), held=held)
    assert (fill.volume, fill.reasons) == expected


MAIN = SymbolTerms(100, 100, 0.01, True, False, 0.00025, 5.0, 0.0005, 0.00001)
STAR_TERMS = SymbolTerms(200, 1, 0.01, True, False, 0.00025, 5.0, 0.0005, 0.00001)
LOT_TERMS = st.sampled_from([MAIN, STAR_TERMS])
VOLUMES = st.one_of(st.integers(min_value=0, max_value=100_000).map(float),
                    st.floats(min_value=0, max_value=100_000, allow_nan=False))
TOL = 1e-9


def _is_valid_buy(q: float, terms: SymbolTerms) -> bool:
    return q == 0 or (q >= terms.lot and (q - terms.lot) % terms.lot_step == 0)


def _is_valid_sell(q: float, held: float, terms: SymbolTerms) -> bool:
    """Exchange rule: lots (STAR: ≥ 200 then any share), or the whole odd remainder with whole lots,
    or the whole holding."""
    if q == 0 or q == held:
        return True
    if q > held:
        return False
    if terms.lot_step < terms.lot:
        return q >= terms.lot and q == int(q)
    return q % terms.lot == 0 or q % terms.lot == held % terms.lot


@given(VOLUMES, LOT_TERMS)
def test_valid_buy_properties(volume, terms):
    q = valid_buy(volume, terms)
    assert _is_valid_buy(q, terms)
    assert q <= volume + TOL
    # maximal: one more step would exceed the request (or nothing fits below the minimum lot)
    assert (q + terms.lot_step > volume + TOL) if q else (volume < terms.lot - TOL)


HELD = st.integers(min_value=1, max_value=3_000).map(float)
SELL_VOLUMES = st.one_of(st.integers(min_value=0, max_value=3_500).map(float),
                         st.floats(min_value=0, max_value=3_500, allow_nan=False))


@given(SELL_VOLUMES, HELD, LOT_TERMS)
def test_valid_sell_properties(volume, held, terms):
    q = valid_sell(volume, held, terms)
    assert _is_valid_sell(q, held, terms)
    assert q <= held
    assert q <= volume + TOL  # never more than asked (the whole holding only when asked for it)
    # an odd remainder (a non-lot quantity) goes only together with the whole odd part of the position
    if terms.lot_step == terms.lot and q % terms.lot:
        assert q % terms.lot == held % terms.lot
    # maximal: no valid quantity between q and the request (brute force over whole shares)
    limit = min(volume + TOL, held)
    assert [c for c in range(int(q) + 1, int(limit) + 1) if _is_valid_sell(c, held, terms)] == []


@given(st.integers(min_value=100, max_value=10_000).map(lambda c: c / 100),  # price 1.00 … 100.00
       st.integers(min_value=0, max_value=10_000_000).map(lambda f: f / 100),  # cash, whole fen
       LOT_TERMS)
def test_cash_shortfall_buys_the_largest_quantity_that_fits(price, cash, terms):
    config = BacktestConfig(participation_cap=1.0)
    quote = Bar(price, math.nan, math.nan, math.nan, True)
    wanted = 1e9  # always more than the cash buys

    def cost(v: float) -> float:
        return v * price + sum(fees(v * price, False, terms, True))

    fill = match(True, wanted, quote, terms, config, cash=cash)
    assert _is_valid_buy(fill.volume, terms)
    assert fill.volume == 0 or cost(fill.volume) <= cash + 1e-9
    following = valid_buy(fill.volume + terms.lot_step if fill.volume else terms.lot, terms)
    assert cost(following) > cash + 1e-9  # the next valid quantity would not fit


@given(st.integers(min_value=0, max_value=100_000_000))
def test_cents_rounds_half_up_exactly(thousandths):
    # amounts with three decimals up to 100000 CNY (any realistic single fee): exact half-up to the fen
    amount = Decimal(thousandths) / 1000
    expected = float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert cents(float(amount)) == expected


@given(st.floats(min_value=0, max_value=1e5, allow_nan=False))
def test_cents_is_on_the_fen_grid_and_close(amount):
    c = cents(amount)
    assert abs(c * 100 - round(c * 100)) < 1e-6
    assert -0.005 - 1e-9 <= c - amount <= 0.005 + 1e-9


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False), st.booleans(), LOT_TERMS)
def test_fees_are_whole_fen_and_respect_the_minimum(value, sell, terms):
    commission, stamp, transfer = fees(value, sell, terms, round_costs=True)
    for amount in (commission, stamp, transfer):
        assert abs(amount * 100 - round(amount * 100)) < 1e-6
    if value > 0:
        assert commission >= terms.commission_min
    assert stamp == (cents(value * terms.stamp_rate) if sell else 0.0)
