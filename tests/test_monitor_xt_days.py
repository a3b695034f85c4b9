"""The monitor app on vnpy_xt over the fake xtquant, across units and days: XT's lots against the daily bars the
XT import path stored (shares), VWAP, 量比 and the saved bars exact; a day roll with new limits, references and
suspensions."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from fakes import xt_harness
from fakes.xt_harness import CN, connect, settle
from test_monitor_app import mon  # noqa: F401  (the monitor app on XT, a scripted clock, alerts recorded)

fake_xt_trading = xt_harness.fake_xt_trading
xt = xt_harness.xt

DAY = date(2025, 1, 2)  # a Thursday, a trading day
NEXT = date(2025, 1, 3)  # Friday


def at(hms: str, day: date = DAY) -> datetime:
    h, m, s = (int(p) for p in hms.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s)


def tick(xt, code: str, hms: str, last: float, *, lots: int = 0, amount: float = 0.0, day: date = DAY,
         pre_close: float | None = None) -> None:
    """One XT tick (volume in lots, as XT sends it) stamped ``hms`` China time on ``day``; waits until handled."""
    moment = at(hms, day)
    xt.clock.now = moment
    xt.broker.push_tick(code, last, volume=lots, amount=amount, pre_close=pre_close,
                        time_ms=int(moment.replace(tzinfo=CN).timestamp() * 1000))
    settle(xt)


def timer(xt, hms: str, day: date = DAY):
    xt.clock.now = at(hms, day)
    view = xt.engine.on_timer()
    settle(xt)
    return view


def alerts_of(xt, vt_symbol: str) -> list[tuple[str, str]]:
    return [(f"{a.time:%m-%d %H:%M:%S}", a.rule) for a in xt.published if a.vt_symbol == vt_symbol]


def xt_daily_bars(rows: list[tuple[str, float]]):
    """Daily bars as vnpy_xt's datafeed returns them: ``volume`` is xtquant's, in lots (it passes it unchanged)."""
    from vnpy.trader.constant import Exchange, Interval
    from vnpy.trader.object import BarData

    return [BarData(gateway_name="XT", symbol="600000", exchange=Exchange.SSE, interval=Interval.DAILY,
                    datetime=datetime.fromisoformat(d).replace(tzinfo=CN), open_price=10.0, high_price=10.0,
                    low_price=10.0, close_price=10.0, volume=lots, turnover=lots * 100 * 10.0) for d, lots in rows]


# -- one unit everywhere: XT's lots become shares in ticks, daily references, saved bars --------------------
def test_xt_lots_agree_with_the_stored_daily_bars_in_vwap_volume_ratio_and_saved_bars(mon):
    from vnpy_rotation.apps.monitor.engine import minute_bars_in_database
    from vnpy_rotation.data.xt_fetch import bars_to_frame

    # the XT import path (scripts/fetch_xt_bars.py) stores vnpy_xt's daily bars in shares: 24,000 lots = 2,400,000 shares
    history = [("2024-12-25", 24_000), ("2024-12-26", 24_000), ("2024-12-27", 24_000), ("2024-12-30", 24_000),
               ("2024-12-31", 24_000)]
    mon.store.save_bars("600000", "SSE", bars_to_frame(xt_daily_bars(history)))
    assert mon.store.stored_bars("600000", "SSE")["volume"].tolist() == [2_400_000.0] * 5

    mon.market.instruments["600000.SH"]["FloatVolume"] = 2.0e9  # XT's 流通股本, in shares
    connect(mon)
    mon.engine.start(["600000.SSE"], "XT")  # references from the database: the 5-day average in shares
    tick(mon, "600000.SH", "09:25:00", 10.0, lots=1_000, amount=1_000_000)  # the opening auction: 100,000 shares
    tick(mon, "600000.SH", "09:30:30", 10.1, lots=1_500, amount=1_505_000)  # +500 lots at 10.1
    tick(mon, "600000.SH", "09:31:20", 10.2, lots=2_000, amount=2_015_000)  # +500 lots at 10.2
    ind = dict(mon.engine.view().rows)["600000.SSE"]
    assert ind.volume == 200_000 and ind.turnover == 2_015_000
    assert ind.vwap == pytest.approx(10.075)  # CNY per share: 2,015,000 / 200,000
    # 量比: (200,000 shares / 2 minutes begun) / (2,400,000 shares / 240 minutes) = 100,000 / 10,000
    assert ind.volume_ratio == pytest.approx(10.0)
    assert ind.turnover_rate == pytest.approx(200_000 / 2.0e9)  # 换手率: shares / float shares

    timer(mon, "09:32:10")  # the 09:31 bar is over: saved
    bars = minute_bars_in_database("600000.SSE", at("09:00:00"), at("15:00:00"))
    assert [(b.datetime.astimezone(CN).strftime("%H:%M"), b.volume, b.turnover) for b in bars] == \
        [("09:30", 150_000.0, 1_505_000.0), ("09:31", 50_000.0, 510_000.0)]  # shares, as the daily bars
    assert mon.engine.close_day() == {"600000.SSE": [DAY]}
    assert mon.store.stored_bars("600000", "SSE").loc[pd.Timestamp(DAY), "volume"] == 200_000.0


# -- a day roll while running: limits, references and suspensions follow the new day ----------------------
def test_a_monitor_running_into_the_next_day_takes_that_days_limits_references_and_suspensions(mon):
    from vnpy_rotation.data.xt_fetch import bars_to_frame

    history = [("2024-12-25", 24_000), ("2024-12-26", 24_000), ("2024-12-27", 24_000), ("2024-12-30", 24_000),
               ("2024-12-31", 24_000)]
    mon.store.save_bars("600000", "SSE", bars_to_frame(xt_daily_bars(history)))
    mon.market.instruments["000001.SZ"]["InstrumentStatus"] = 2  # suspended on DAY (its second day)
    mon.market.instruments["600000.SH"]["FloatVolume"] = 2.0e9
    connect(mon)  # vnpy_xt reads each symbol's UpStopPrice/DownStopPrice now, and never again
    mon.engine.start(["600000.SSE", "510300.SSE", "000001.SZSE"], "XT")
    assert mon.engine.suspended == {"000001.SZSE"}
    tick(mon, "600000.SH", "10:00:00", 10.5, lots=3_000, amount=3_150_000)
    tick(mon, "510300.SH", "10:00:00", 4.02, lots=10, amount=4_020)
    rows = dict(mon.engine.view().rows)
    assert (rows["600000.SSE"].limit_up, rows["600000.SSE"].limit_down, rows["600000.SSE"].feed_limit_up) == \
        (11.0, 9.0, 11.0)
    assert rows["600000.SSE"].volume_ratio == pytest.approx(1.0)  # (300,000 / 30 minutes) / (2,400,000 / 240)
    timer(mon, "15:05:00")
    mon.engine.close_day()  # DAY's provisional daily bar: 300,000 shares

    # MiniQMT rolls its instrument details some time before the next open; vnpy_xt keeps DAY's limits
    mon.market.instruments["000001.SZ"]["InstrumentStatus"] = 0
    timer(mon, "08:59:59", NEXT)
    assert mon.engine.suspended == {"000001.SZSE"}  # before the roll time nothing changed
    timer(mon, "09:00:00", NEXT)
    assert mon.engine.suspended == set()
    tick(mon, "600000.SH", "09:25:00", 10.5, lots=500, amount=525_000, day=NEXT, pre_close=10.5)
    ind = dict(mon.engine.view().rows)["600000.SSE"]
    assert (ind.limit_up, ind.limit_down, ind.feed_limit_up, ind.feed_limit_down) == (11.55, 9.45, 0.0, 0.0)
    mon.market.instruments["600000.SH"].update(PreClose=10.5, UpStopPrice=11.55, DownStopPrice=9.45)
    mon.market.instruments["510300.SH"].update(PreClose=4.1, UpStopPrice=4.6, DownStopPrice=3.69)  # a wrong band
    tick(mon, "600000.SH", "09:25:30", 10.5, lots=500, amount=525_000, day=NEXT, pre_close=10.5)
    assert dict(mon.engine.view().rows)["600000.SSE"].feed_limit_up == 0.0  # asked again a minute later
    tick(mon, "600000.SH", "09:31:00", 10.6, lots=990, amount=1_039_500, day=NEXT, pre_close=10.5)
    for hms in ("09:31:00", "09:31:03", "09:40:00"):
        tick(mon, "510300.SH", hms, 4.12, lots=20, amount=8_240, day=NEXT, pre_close=4.1)
    tick(mon, "000001.SZ", "09:31:00", 11.0, lots=5, amount=5_500, day=NEXT)
    rows = dict(mon.engine.view().rows)
    ind = rows["600000.SSE"]
    assert (ind.limit_up, ind.limit_down, ind.feed_limit_up, ind.feed_limit_down) == (11.55, 9.45, 11.55, 9.45)
    # 量比 on the new day's 5-day average: 12-26 … 12-31 and DAY's provisional bar, (4 × 2.4 M + 0.3 M) / 5
    assert ind.volume_ratio == pytest.approx(99_000 / (1_980_000 / 240))
    assert ind.turnover_rate == pytest.approx(99_000 / 2.0e9)  # XT's float shares again after the re-read references
    assert (rows["510300.SSE"].limit_up, rows["510300.SSE"].feed_limit_up) == (4.51, 4.6)
    assert not rows["000001.SZSE"].suspended
    mismatches = [(s, t) for s in ("600000.SSE", "510300.SSE", "000001.SZSE") for t, r in alerts_of(mon, s)
                  if r == "limit_mismatch"]
    assert mismatches == [("510300.SSE", "01-03 09:31:00")]  # the feed's own wrong band, once
