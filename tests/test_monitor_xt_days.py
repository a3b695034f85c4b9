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

    timer(mon, "09:32:10")  # the 09:31 bar is over: saved
    bars = minute_bars_in_database("600000.SSE", at("09:00:00"), at("15:00:00"))
    assert [(b.datetime.astimezone(CN).strftime("%H:%M"), b.volume, b.turnover) for b in bars] == \
        [("09:30", 150_000.0, 1_505_000.0), ("09:31", 50_000.0, 510_000.0)]  # shares, as the daily bars
    assert mon.engine.close_day() == {"600000.SSE": [DAY]}
    assert mon.store.stored_bars("600000", "SSE").loc[pd.Timestamp(DAY), "volume"] == 200_000.0
