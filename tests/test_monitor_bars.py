"""Quotes → 1-minute bars: the auctions merged into the first and last bar, lunch without bars, volume from
cumulative differences, late quotes dropped, the provisional daily bar; volume conservation."""

from datetime import datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_ticks import DAY, at, quote

from vnpy_rotation.monitor.bars import MinuteBars
from vnpy_rotation.monitor.records import DailyBar, MinuteBar


def feed(quotes):
    bars = MinuteBars("600000.SSE")
    out = []
    for q in quotes:
        out += bars.update(q)
    return bars, out


def rows(bars):
    return [(b.datetime.strftime("%H:%M"), b.index, b.open, b.high, b.low, b.close, b.volume, b.turnover, b.ticks)
            for b in bars]


def test_auction_joins_the_first_bar_and_volume_is_differenced():
    bars, closed = feed([
        quote("09:15:00", 0.0),  # auction snapshot before the print: no price
        quote("09:25:00", 10.10, 5000, 50500, open=10.10),  # the opening auction print
        quote("09:25:03", 10.10, 5000, 50500, open=10.10),
        quote("09:30:00", 10.12, 5300, 53536, open=10.10),
        quote("09:30:30", 10.08, 5400, 54544, open=10.10),
        quote("09:31:00", 10.15, 5600, 56574, open=10.10),
        quote("09:33:10", 10.20, 5650, 57084, open=10.10),  # 09:32 has no quote: no bar
    ])
    closed += bars.flush()
    assert rows(closed) == [
        ("09:30", 0, 10.10, 10.12, 10.08, 10.08, 5400, 54544, 4),
        ("09:31", 1, 10.15, 10.15, 10.15, 10.15, 200, 2030, 1),
        ("09:33", 3, 10.20, 10.20, 10.20, 10.20, 50, 510, 1),
    ]
    assert closed[0].datetime == datetime.combine(DAY, time(9, 30))


def test_closing_auction_joins_the_last_bar_and_lunch_makes_none():
    bars, closed = feed([
        quote("11:29:58", 10.0, 1000, 10000),  # started mid-day: the baseline
        quote("11:30:00", 10.1, 1200, 12020),  # the exchange's 11:30 snapshot
        quote("11:30:03", 10.1, 1200, 12020),
        quote("13:00:02", 10.2, 1300, 13040),
        quote("14:59:10", 10.3, 1400, 14070),
        quote("14:59:57", 10.3, 1400, 14070),  # the closing auction: no trades until 15:00
        quote("15:00:00", 10.4, 2400, 24470),  # the closing print
        quote("15:00:03", 10.4, 2400, 24470),
    ])
    closed += bars.flush()
    assert rows(closed) == [
        ("11:29", 119, 10.0, 10.1, 10.0, 10.1, 200, 2020, 3),
        ("13:00", 120, 10.2, 10.2, 10.2, 10.2, 100, 1020, 1),
        ("14:59", 239, 10.3, 10.4, 10.3, 10.4, 1100, 11430, 4),
    ]
    assert bars.daily == DailyBar("600000.SSE", DAY, 10.0, 10.4, 10.0, 10.4, 2400, 24470)


def test_volume_of_a_quote_without_price_goes_into_the_next_bar():
    bars, closed = feed([
        quote("09:15:00", 0.0, 0),
        quote("09:24:00", 0.0, 300, 3000),  # a feed that reports volume before it reports a price
        quote("09:25:00", 10.0, 1000, 10_000),
    ])
    assert rows(bars.flush()) == [("09:30", 0, 10.0, 10.0, 10.0, 10.0, 1000, 10_000, 1)]


def test_older_quote_dropped_and_counted_and_a_decrease_adds_nothing():
    bars, closed = feed([
        quote("10:00:00", 10.0, 1000), quote("10:00:10", 10.1, 1100),
        quote("10:00:05", 9.0, 1050),  # older than the previous: dropped
        quote("10:00:20", 10.2, 1080),  # cumulative volume went down: a glitch, adds nothing
        quote("10:00:30", 10.2, 1200),
    ])
    assert bars.dropped == 1 and bars.decreases == 1
    assert rows(bars.flush()) == [("10:00", 30, 10.0, 10.2, 10.0, 10.2, 200, 0, 4)]  # 1000 -> 1200, the dip not counted twice


def test_bar_closes_by_the_clock_after_its_grace_and_a_new_day_flushes():
    bars, closed = feed([quote("10:00:10", 10.0, 1000), quote("10:00:50", 10.1, 1100)])
    assert closed == [] and bars.due(at("10:01:02"), grace=3) == []
    assert rows(bars.due(at("10:01:03"), grace=3)) == [("10:00", 30, 10.0, 10.1, 10.0, 10.1, 100, 0, 2)]
    # a quote for the already-closed minute goes into the next bar, not a second 10:00 bar
    assert bars.update(quote("10:00:59", 10.1, 1150)) == []
    assert bars.flush()[0].datetime.time() == time(10, 1)
    bars.update(quote("14:00:00", 10.1, 1200))
    nxt = bars.update(quote("09:25:00", 11.0, 300, day=DAY + timedelta(days=3)))
    assert [(b.datetime.date(), b.index) for b in nxt] == [(DAY, 180)]
    assert rows(bars.flush()) == [("09:30", 0, 11.0, 11.0, 11.0, 11.0, 300, 0, 1)]


def test_the_last_bars_of_the_morning_and_the_day_wait_for_the_late_snapshots():
    bars, _ = feed([quote("11:29:30", 10.0, 1000), quote("11:29:50", 10.1, 1100)])
    assert bars.due(at("11:30:03"), grace=3) == [] and bars.due(at("11:30:59"), grace=3) == []
    bars.update(quote("11:30:04", 10.1, 1200))  # the exchange's 11:30 snapshot, delivered late
    assert rows(bars.due(at("11:31:00"), grace=3)) == [("11:29", 119, 10.0, 10.1, 10.0, 10.1, 200, 0, 3)]
    bars.update(quote("14:59:40", 10.2, 1300))
    assert bars.due(at("15:00:30"), grace=3) == []
    bars.update(quote("15:00:06", 10.3, 2300))  # the closing auction print, six seconds late
    assert rows(bars.due(at("15:01:00"), grace=3)) == [("14:59", 239, 10.2, 10.3, 10.2, 10.3, 1100, 0, 2)]
    assert bars.late_volume == 0


def full_day():
    """A synthetic day: a quote every 20 s from 09:15 to 15:00:03, 100 shares each in continuous trading."""
    quotes, volume = [], 0.0
    t = datetime.combine(DAY, time(9, 15))
    end = datetime.combine(DAY, time(15, 0, 3))
    while t <= end:
        hms = t.strftime("%H:%M:%S")
        clock = t.time()
        if time(9, 25) <= clock < time(9, 30) and volume == 0:
            volume = 5000  # the opening auction print
        elif time(9, 30) <= clock <= time(11, 30) or time(13) <= clock < time(14, 57):
            volume += 100
        elif clock >= time(15) and volume < 1e6:
            volume += 7000  # the closing auction print
            volume += 1e6  # marks it as done
        if not time(11, 30, 20) <= clock < time(13):  # nothing is sent over lunch
            quotes.append(quote(hms, 10.0 if volume else 0.0, volume, volume * 10))
        t += timedelta(seconds=20)
    return quotes


def test_a_full_day_has_240_bars_with_the_auctions_merged():
    quotes = full_day()
    bars, closed = feed(quotes)
    closed += bars.flush()
    assert len(closed) == 240
    assert [b.index for b in closed] == list(range(240))
    stamps = {b.datetime.strftime("%H:%M") for b in closed}
    assert {"09:30", "11:29", "13:00", "14:59"} <= stamps and not {"09:25", "11:30", "12:00", "15:00"} & stamps
    assert closed[0].volume == 5000 + 3 * 100  # auction print + 09:30:00, :20, :40
    assert closed[119].volume == 4 * 100  # 11:29:00, :20, :40 and the 11:30:00 snapshot
    assert closed[239].volume == 7000 + 1e6  # the closing auction only (14:57–15:00 has no trades)
    assert sum(b.volume for b in closed) == quotes[-1].volume


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.integers(0, 5000)), min_size=1, max_size=120))
def test_bar_volumes_sum_to_the_last_cumulative_volume(steps):
    t = datetime.combine(DAY, time(9, 25))
    volume = 1000.0
    quotes = [quote("09:25:00", 10.0, volume)]
    for seconds, added in steps:
        t += timedelta(seconds=seconds)
        if t.time() > time(15, 30):
            break
        volume += added
        quotes.append(quote(t.strftime("%H:%M:%S"), 10.0, volume))
    bars, closed = feed(quotes)
    closed += bars.flush()
    assert sum(b.volume for b in closed) == volume
    assert [b.index for b in closed] == sorted({b.index for b in closed})
    assert all(isinstance(b, MinuteBar) and 0 <= b.index < 240 for b in closed)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.integers(0, 5000), st.integers(0, 120)), min_size=1,
                max_size=120))
def test_volume_is_conserved_when_the_clock_closes_bars_between_quotes(steps):
    bars = MinuteBars("600000.SSE")
    t = datetime.combine(DAY, time(9, 25))
    volume = 1000.0
    closed = bars.update(quote("09:25:00", 10.0, volume))
    for seconds, added, clock_after in steps:
        if clock_after < seconds:  # the clock ticks between this quote and the next
            closed += bars.due(t + timedelta(seconds=clock_after), grace=3)
        t += timedelta(seconds=seconds)
        if t.time() > time(15, 30):
            break
        volume += added
        closed += bars.update(quote(t.strftime("%H:%M:%S"), 10.0, volume))
    closed += bars.flush()
    assert sum(b.volume for b in closed) + bars.late_volume == volume
    assert [b.index for b in closed] == sorted({b.index for b in closed})  # each minute once, in order
