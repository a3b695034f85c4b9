"""Live indicators against hand-computed values: change, VWAP, 量比, turnover rate, minute returns, limit
prices by board/date/ST with the project's rule, and the mismatch flag against the feed's limits."""

import math
from datetime import date

import pytest
from monitor_ticks import quote

from vnpy_rotation.market.instruments import lookup
from vnpy_rotation.monitor import MonitorCore, Reference
from vnpy_rotation.monitor.indicators import limit_prices


def core(**kw):
    return MonitorCore(**kw)


def test_change_vwap_volume_ratio_and_turnover_rate():
    ref = Reference("600000.SSE", avg_volume_5d=2_400_000, float_shares=60_000_000)
    m = core(references=[ref])
    m.on_quote(quote("09:25:00", 10.0, 50_000, 500_000))
    got = m.snapshot()["600000.SSE"]
    assert got.volume_ratio == pytest.approx(5.0)  # 50 000 / 1 min ÷ (2 400 000 / 240)
    m.on_quote(quote("10:00:00", 10.3, 600_000, 6_030_000))
    got = m.snapshot()["600000.SSE"]
    assert got.change == pytest.approx(0.03)
    assert got.vwap == pytest.approx(10.05)  # 6 030 000 / 600 000
    assert got.volume_ratio == pytest.approx(2.0)  # 600 000 / 30 min ÷ 10 000 per min
    assert got.turnover_rate == pytest.approx(0.01)
    m.on_quote(quote("13:00:00", 10.3, 2_400_000, 24_000_000))
    assert m.snapshot()["600000.SSE"].volume_ratio == pytest.approx(2.0)  # lunch does not count: 120 min


def test_without_reference_data_the_ratios_are_none():
    m = core()
    m.on_quote(quote("10:00:00", 10.0, 1000, 10_000))
    got = m.snapshot()["600000.SSE"]
    assert got.volume_ratio is None and got.turnover_rate is None


def test_one_and_five_minute_returns_carry_a_quiet_minute():
    m = core()
    prices = [("10:00:00", 10.00), ("10:01:00", 10.10), ("10:03:30", 10.20), ("10:05:10", 10.40)]
    seen = []
    for hms, price in prices:
        m.on_quote(quote(hms, price, 100))
        s = m.snapshot()["600000.SSE"]
        seen.append((s.return_1m, s.return_5m))
    assert seen[0] == (None, None) and seen[1][0] == pytest.approx(0.01) and seen[1][1] is None
    assert seen[2][0] == pytest.approx(10.20 / 10.10 - 1)  # 10:02 had no trade: it carries 10:01's close
    assert seen[3][0] == pytest.approx(10.40 / 10.20 - 1)  # 10:04 carries 10:03's close
    assert seen[3][1] == pytest.approx(0.04)  # against 10:00's close


@pytest.mark.parametrize("vt_symbol, day, pre_close, is_st, up, down", [
    ("600000.SSE", date(2024, 3, 1), 10.00, False, 11.00, 9.00),  # main board ±10 %
    ("000001.SZSE", date(2024, 3, 1), 12.34, False, 13.57, 11.11),  # 13.574 and 11.106 rounded half up
    ("300750.SZSE", date(2024, 3, 1), 180.00, False, 216.00, 144.00),  # ChiNext ±20 %
    ("300750.SZSE", date(2020, 8, 21), 10.05, False, 11.06, 9.05),  # ChiNext ±10 % before 2020-08-24
    ("688981.SSE", date(2024, 3, 1), 50.00, False, 60.00, 40.00),  # STAR ±20 %
    ("600000.SSE", date(2024, 3, 1), 10.05, True, 10.55, 9.55),  # ST ±5 %: 10.5525, 9.5475
    ("510300.SSE", date(2024, 3, 1), 3.230, False, 3.553, 2.907),  # ETF, tick 0.001
])
def test_limit_prices_by_board_date_and_st(vt_symbol, day, pre_close, is_st, up, down):
    assert limit_prices(lookup(vt_symbol), day, pre_close, is_st) == (up, down)


def test_an_index_has_no_limit():
    assert all(math.isnan(x) for x in limit_prices(lookup("000300.SSE"), date(2024, 3, 1), 3500.0))


@pytest.mark.parametrize("vt_symbol, is_st, feed_up, feed_down, mismatch", [
    ("600000.SSE", False, 11.00, 9.00, False),
    ("600000.SSE", False, 11.01, 9.00, False),  # one tick apart: tolerated
    ("600000.SSE", False, 11.02, 9.00, True),
    ("600000.SSE", False, 11.00, 8.98, True),
    ("600000.SSE", True, 11.00, 9.00, True),  # the feed does not know the stock is ST
    ("600000.SSE", False, 0.0, 0.0, False),  # the feed sent no limits
])
def test_limit_mismatch_flag(vt_symbol, is_st, feed_up, feed_down, mismatch):
    m = core(references=[Reference(vt_symbol, is_st=is_st)])
    m.on_quote(quote("10:00:00", 10.0, 100, vt_symbol=vt_symbol, limit_up=feed_up, limit_down=feed_down))
    got = m.snapshot()[vt_symbol]
    assert got.limit_mismatch is mismatch
    assert got.limit_up == (10.5 if is_st else 11.0)  # ours, whatever the feed says
    assert got.to_limit_up == pytest.approx((got.limit_up - 10.0) / 10.0)


def test_without_a_rule_of_ours_the_feed_limits_are_used():
    m = core(instruments=lambda vt: None)
    m.on_quote(quote("10:00:00", 10.0, 100, limit_up=11.0, limit_down=9.0))
    got = m.snapshot()["600000.SSE"]
    assert (got.limit_up, got.limit_down, got.limit_mismatch) == (11.0, 9.0, False)
