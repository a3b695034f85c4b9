"""The instrument table: classification, dated rules, and refusal to guess."""

from datetime import date

import pytest

from vnpy_rotation.errors import InputRejected, UnknownInstrument
from vnpy_rotation.market.instruments import InstrumentKind as K
from vnpy_rotation.market.instruments import load_table, lookup

D_OLD, D_NEW = date(2020, 8, 21), date(2020, 8, 24)

# vt_symbol, kind, limit before/after 2020-08-24, T+0 on 2024-01-02, lot, step, tick, stamp duty, transfer fee
CASES = [
    ("600519.SSE", K.MAIN_BOARD_STOCK, 0.10, 0.10, False, 100, 100, 0.01, True, True),
    ("000001.SZSE", K.MAIN_BOARD_STOCK, 0.10, 0.10, False, 100, 100, 0.01, True, True),
    ("300750.SZSE", K.CHINEXT_STOCK, 0.10, 0.20, False, 100, 100, 0.01, True, True),
    ("688981.SSE", K.STAR_STOCK, 0.20, 0.20, False, 200, 1, 0.01, True, True),
    ("830799.BSE", K.BSE_STOCK, None, None, False, 100, 1, 0.01, True, True),
    ("510300.SSE", K.EQUITY_ETF, 0.10, 0.10, False, 100, 100, 0.001, False, False),
    ("159915.SZSE", K.CHINEXT_ETF, 0.10, 0.20, False, 100, 100, 0.001, False, False),
    ("159949.SZSE", K.CHINEXT_ETF, 0.10, 0.20, False, 100, 100, 0.001, False, False),
    ("588000.SSE", K.STAR_ETF, 0.20, 0.20, False, 100, 100, 0.001, False, False),
    ("513100.SSE", K.CROSS_BORDER_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("159941.SZSE", K.CROSS_BORDER_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("511010.SSE", K.BOND_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("518880.SSE", K.GOLD_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("511990.SSE", K.MONEY_MARKET_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("501300.SSE", K.LOF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("161725.SZSE", K.LOF, 0.10, 0.10, False, 100, 100, 0.001, False, False),
    # From the fund master (SZSE 159xxx have no prefix rule).
    ("159901.SZSE", K.EQUITY_ETF, 0.10, 0.10, False, 100, 100, 0.001, False, False),
    ("159813.SZSE", K.EQUITY_ETF, 0.10, 0.10, False, 100, 100, 0.001, False, False),
    ("159967.SZSE", K.CHINEXT_ETF, 0.10, 0.20, False, 100, 100, 0.001, False, False),
    ("159781.SZSE", K.STAR_ETF, 0.20, 0.20, False, 100, 100, 0.001, False, False),
    ("159792.SZSE", K.CROSS_BORDER_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("159985.SZSE", K.COMMODITY_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("511880.SSE", K.MONEY_MARKET_ETF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("162411.SZSE", K.LOF, 0.10, 0.10, True, 100, 100, 0.001, False, False),
    ("508000.SSE", K.REIT, None, None, False, 100, 100, 0.001, False, False),
]


@pytest.mark.parametrize("vt_symbol,kind,old,new,t0,lot,step,tick,stamp,transfer", CASES)
def test_rules(vt_symbol, kind, old, new, t0, lot, step, tick, stamp, transfer):
    inst = lookup(vt_symbol)
    assert inst.kind == kind
    assert inst.vt_symbol == vt_symbol
    assert inst.price_limit(D_OLD) == old
    assert inst.price_limit(D_NEW) == new
    assert inst.is_t0(date(2024, 1, 2)) is t0
    assert (inst.rules.lot, inst.rules.lot_step, inst.rules.tick) == (lot, step, tick)
    assert (inst.rules.stamp_duty, inst.rules.transfer_fee) == (stamp, transfer)


def test_st_limits_and_dates():
    main = lookup("600000.SSE")
    assert main.price_limit(date(2024, 1, 2), is_st=True) == 0.05
    assert main.price_limit(date(2025, 7, 7), is_st=True) == 0.10
    assert lookup("300001.SZSE").price_limit(date(2021, 1, 4), is_st=True) == 0.20
    # Cross-border ETFs became T+0 on 2015-01-19.
    qdii = lookup("513100.SSE")
    assert not qdii.is_t0(date(2015, 1, 16)) and qdii.is_t0(date(2015, 1, 19))
    # REITs: ±10 % after their listing day (first listings 2021-06-21), T+1.
    reit = lookup("508000.SSE")
    assert reit.price_limit(date(2022, 1, 4)) == 0.10 and not reit.is_t0(date(2022, 1, 4))


@pytest.mark.parametrize("vt_symbol,wanted,expected", [
    ("510300.SSE", 250, 200), ("510300.SSE", 99, 0), ("688981.SSE", 199, 0), ("688981.SSE", 257, 257),
    ("830799.BSE", 150, 150), ("600519.SSE", 1999, 1900),
])
def test_round_buy(vt_symbol, wanted, expected):
    assert lookup(vt_symbol).round_buy(wanted) == expected


def test_fee_schedule():
    from vnpy_rotation.market.instruments import default_registry

    reg = default_registry()
    assert reg.stamp_duty_rate(date(2023, 8, 25)) == 0.001
    assert reg.stamp_duty_rate(date(2023, 8, 28)) == 0.0005
    assert reg.transfer_fee_rate(date(2022, 4, 28)) == 0.00002
    assert reg.transfer_fee_rate(date(2022, 4, 29)) == 0.00001


@pytest.mark.parametrize("vt_symbol", ["159000.SZSE", "700000.SSE", "999999.BSE", "519999.SSE"])
def test_unknown_codes_are_errors(vt_symbol):
    with pytest.raises(UnknownInstrument):
        lookup(vt_symbol)


def test_bad_table_names_the_field(tmp_path):
    bad = tmp_path / "instruments.yaml"
    text = (load_table.__globals__["TABLE_PATH"]).read_text(encoding="utf-8")
    bad.write_text(text.replace("lot: 200", "lot: -5", 1), encoding="utf-8")
    with pytest.raises(InputRejected) as info:
        load_table(bad)
    assert any("rule_sets.star.lot" in p.reason and p.source == str(bad) for p in info.value.problems)
