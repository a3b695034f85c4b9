"""Every anomaly rule on scripted quotes through MonitorCore, with the exact alerts expected; the cool-down
table; the storm limiter's summaries."""

from datetime import date, datetime, timedelta

import pytest
from monitor_ticks import DAY, at, quote
from pydantic import ValidationError

from vnpy_rotation.config import validate_section
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.monitor import Alert, Holding, MonitorConfig, MonitorCore, Severity
from vnpy_rotation.monitor.rules import COOL_DOWN, CoolDown, Gate, default_rules
from vnpy_rotation.monitor.storm import SUMMARY_RULE, StormLimiter


def timer(hms, day=DAY):
    return at(hms, day)


def run(steps, **kw):
    """Feed quotes and timer ticks; every alert as (rule, vt_symbol, HH:MM:SS)."""
    m = MonitorCore(**kw)
    out = []
    for step in steps:
        alerts = m.on_timer(step) if isinstance(step, datetime) else m.on_quote(step)
        out += [(a.rule, a.vt_symbol, a.time.strftime("%H:%M:%S")) for a in alerts]
    return out


SZ = "000001.SZSE"

SCENARIOS = {
    "limit-up approached, sealed, then opened (开板)": ([
        quote("10:00:00", 10.00, 100, bid1=9.99, ask1=10.00),
        quote("10:00:03", 10.90, 200, bid1=10.89, ask1=10.90),
        quote("10:00:06", 11.00, 300, bid1=11.00, ask1=0.0),
        quote("10:00:09", 11.00, 400, bid1=11.00, ask1=0.0),
        quote("10:00:12", 10.98, 500, bid1=10.98, ask1=10.99),  # near again, but within the cool-down
    ], [
        ("approaching_limit_up", "600000.SSE", "10:00:03"),
        ("limit_up_sealed", "600000.SSE", "10:00:06"),
        ("limit_up_opened", "600000.SSE", "10:00:12"),
    ]),
    "limit-down sealed then opened (翘板)": ([
        quote("10:00:00", 9.00, 100, bid1=0.0, ask1=9.00),
        quote("10:00:03", 9.00, 200, bid1=0.0, ask1=9.00),
        quote("10:00:06", 9.02, 300, bid1=9.01, ask1=9.02),
    ], [
        ("limit_down_sealed", "600000.SSE", "10:00:00"),
        ("limit_down_opened", "600000.SSE", "10:00:06"),  # and not approaching_limit_down as well
    ]),
    "sealed, opened, re-sealed, opened within 300 s: every seal and every 开板 alerts": ([
        quote("10:00:00", 11.00, 100, bid1=11.00, ask1=0.0),
        quote("10:00:09", 10.98, 200, bid1=10.98, ask1=10.99),
        quote("10:01:00", 11.00, 300, bid1=11.00, ask1=0.0),
        quote("10:02:00", 10.97, 400, bid1=10.97, ask1=10.98),
        quote("10:03:00", 10.97, 500, bid1=10.97, ask1=10.98),
    ], [
        ("limit_up_sealed", "600000.SSE", "10:00:00"),
        ("limit_up_opened", "600000.SSE", "10:00:09"),  # no approaching_limit_up for the same event
        ("limit_up_sealed", "600000.SSE", "10:01:00"),
        ("limit_up_opened", "600000.SSE", "10:02:00"),
        ("approaching_limit_up", "600000.SSE", "10:03:00"),  # near the limit after the open: a new state
    ]),
    "a price beyond our limit (a day without limits): not sealed, the mismatch reported once": ([
        quote("10:00:00", 12.00, 100, bid1=12.00, ask1=0.0),
        quote("10:00:03", 12.50, 200, bid1=12.50, ask1=0.0),
    ], [
        ("limit_mismatch", "600000.SSE", "10:00:00"),
    ]),
    "at the limit price but not sealed: asks still there": ([
        quote("10:00:00", 11.00, 100, bid1=10.99, ask1=11.00),
    ], [
        ("approaching_limit_up", "600000.SSE", "10:00:00"),
    ]),
    "the feed's limits disagree with ours: once a day": ([
        quote("10:00:00", 10.0, 100, limit_up=11.05, limit_down=9.0),
        quote("10:00:03", 10.0, 200, limit_up=11.05, limit_down=9.0),
        quote("10:00:06", 10.0, 300, limit_up=11.0, limit_down=9.0),
        quote("10:20:00", 10.0, 400, limit_up=11.05, limit_down=9.0),
    ], [("limit_mismatch", "600000.SSE", "10:00:00")]),
    "gap up at the auction print, once": ([
        quote("09:20:00", 0.0, 0),
        quote("09:25:00", 10.30, 5000, open=10.30),
        quote("09:30:00", 10.31, 6000, open=10.30),
        quote("09:40:00", 10.25, 6100, open=10.30),  # 100: no surge over bar 0's 1000 traded
    ], [("gap_open", "600000.SSE", "09:25:00")]),
    "gap down 2.5 %": ([quote("09:25:00", 9.75, 5000, open=9.75)], [("gap_open", "600000.SSE", "09:25:00")]),
    "a 1 % gap is no gap": ([quote("09:25:00", 10.10, 5000, open=10.10)], []),
    "spike: +3.1 % over 5 minutes": ([
        quote("10:00:00", 10.00, 100), quote("10:02:00", 10.10, 200), quote("10:05:10", 10.31, 300),
        quote("10:05:20", 10.35, 400),
    ], [("price_spike", "600000.SSE", "10:05:10")]),
    "drop: -3 % over 5 minutes": ([
        quote("10:00:00", 10.00, 100), quote("10:05:00", 9.70, 200),
    ], [("price_drop", "600000.SSE", "10:05:00")]),
    "+2.9 % is no spike": ([quote("10:00:00", 10.00, 100), quote("10:05:00", 10.29, 200)], []),
    "volume surge: 5× the 10-minute mean": ([
        *(quote(f"09:{30 + k}:00", 10.0, 1000 * (k + 1)) for k in range(11)),  # 1000 a minute
        quote("09:40:30", 10.0, 15_000),  # minute 10: 1000 + 4000 = 5× the mean
        quote("09:40:40", 10.0, 16_000),
    ], [("volume_surge", "600000.SSE", "09:40:30")]),
    "the opening auction print is not in the surge baseline": ([
        quote("09:25:00", 10.0, 100_000),  # the auction print: bar 0 holds it, the baseline does not
        quote("09:30:30", 10.0, 100_100),
        *[quote(f"09:{31 + k}:30", 10.0, 100_100 + 100 * (k + 1)) for k in range(9)],
        quote("09:40:30", 10.0, 101_500),  # 500 = 5× the mean 100 of 09:30..09:39's trades
    ], [("volume_surge", "600000.SSE", "09:40:30")]),
    "the closing auction print is no surge": ([
        quote("14:48:00", 10.0, 1000),
        *[quote(f"14:{49 + k}:30", 10.0, 1000 + 100 * (k + 1)) for k in range(10)],
        quote("14:59:30", 10.0, 2100),
        quote("15:00:05", 10.0, 50_000),  # the 14:57–15:00 call auction's print joins bar 239
    ], []),
    "4.999× is no surge": ([
        *(quote(f"09:{30 + k}:00", 10.0, 1000 * (k + 1)) for k in range(11)),
        quote("09:40:30", 10.0, 14_999),
    ], []),
    "stale feed in continuous trading: once; a new stale spell inside the cool-down waits for its end": ([
        quote("10:00:00", 10.0, 100), timer("10:00:30"), timer("10:01:00"), timer("10:01:30"),
        quote("10:02:00", 10.0, 200), timer("10:02:30"), timer("10:03:00"),  # stale again within 300 s
        timer("10:05:59"), timer("10:06:00"), timer("10:07:00"),
    ], [("stale_quote", "600000.SSE", "10:01:00"), ("stale_quote", "600000.SSE", "10:06:00")]),
    "a stale spell that ends inside the cool-down never alerts": ([
        quote("10:00:00", 10.0, 100), timer("10:01:00"), quote("10:02:00", 10.0, 200), timer("10:03:00"),
        quote("10:03:30", 10.0, 300), timer("10:04:00"), timer("10:04:29"),
    ], [("stale_quote", "600000.SSE", "10:01:00")]),
    "stale over lunch counts only trading seconds": ([
        quote("11:29:50", 10.0, 100), timer("11:45:00"), timer("12:59:59"), timer("13:00:30"),
        timer("13:00:50"),
    ], [("stale_quote", "600000.SSE", "13:00:50")]),
    "no stale alert in the auctions": ([
        quote("09:20:00", 0.0, 0), timer("09:26:00"), timer("09:29:59"), timer("09:31:00"),
    ], [("stale_quote", "600000.SSE", "09:31:00")]),
    "no stale alert in the closing auction (SZSE stock)": ([
        quote("14:56:30", 10.0, 100, vt_symbol=SZ), timer("14:58:00"), timer("14:59:59"), timer("15:05:00"),
    ], []),
    "an SSE ETF trades on to 15:00, so it can go stale at 14:57:30": ([
        quote("14:56:30", 3.0, 100, vt_symbol="510300.SSE", pre_close=3.0), timer("14:57:30"),
    ], [("stale_quote", "510300.SSE", "14:57:30")]),
    "no stale alert for a suspended stock": ([
        quote("10:00:00", 10.0, 0, suspended=True), timer("10:05:00"),
    ], []),
    "no stale alert on a Saturday": ([
        quote("10:00:00", 10.0, 100, day=date(2024, 3, 2)), timer("10:05:00", date(2024, 3, 2)),
    ], []),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_rule_scenarios(name):
    steps, expected = SCENARIOS[name]
    assert run(steps) == expected


@pytest.mark.parametrize("feed, limit_up", [((0.0, 0.0), None), ((13.2, 10.8), 13.2), ((11.0, 9.0), None)])
def test_a_price_beyond_our_limit_drops_it_for_the_feeds_only_when_consistent(feed, limit_up):
    m = MonitorCore()
    [alert] = m.on_quote(quote("10:00:00", 12.00, 100, bid1=12.00, ask1=0.0, limit_up=feed[0], limit_down=feed[1]))
    ind = m.snapshot()["600000.SSE"]
    assert (alert.rule, ind.limit_mismatch, ind.sealed_up) == ("limit_mismatch", True, False)
    assert ind.limit_up == limit_up if limit_up else ind.limit_up != ind.limit_up  # NaN: unknown


def test_core_queues_closed_bars_closes_them_by_the_clock_and_counts_dropped_quotes():
    m = MonitorCore()
    m.on_quote(quote("09:25:00", 10.0, 1000, 10_000))
    m.on_quote(quote("09:30:30", 10.1, 1500, 15_050))
    m.on_quote(quote("09:30:20", 10.1, 1400, 14_000))  # older: dropped, no alerts, no change
    assert m.dropped() == {"600000.SSE": 1} and m.snapshot()["600000.SSE"].volume == 1500
    assert m.bars_closed() == [] and m.on_timer(at("09:31:02")) == [] and m.bars_closed() == []
    m.on_timer(at("09:31:03"))
    [bar] = m.bars_closed()
    assert (bar.datetime, bar.volume, bar.turnover, bar.close) == (at("09:30"), 1500, 15_050, 10.1)
    assert m.bars_closed() == []  # drained
    m.on_quote(quote("09:31:10", 10.2, 1600, 16_070))
    assert [b.index for b in m.close_day()] == [1] and [b.index for b in m.bars_closed()] == [1]
    daily = m.daily_bars()["600000.SSE"]
    assert (daily.open, daily.high, daily.close, daily.volume, daily.provisional) == (10.0, 10.2, 10.2, 1600, True)


def test_aware_times_are_read_as_china_time():
    from datetime import timezone
    m = MonitorCore()
    q = quote("10:00:00", 10.0, 100)
    utc = q.datetime.replace(hour=2, tzinfo=timezone.utc)  # 02:00 UTC is 10:00 in Shanghai
    m.on_quote(type(q)(q.vt_symbol, utc, q.last, q.pre_close, q.volume))
    assert m.snapshot()["600000.SSE"].minute == 30


def test_a_watched_symbol_that_never_quotes_goes_stale_after_the_open():
    m = MonitorCore()
    m.watch(["600000.SSE", SZ], at("09:15:00"))
    m.on_quote(quote("09:25:00", 10.0, 100, vt_symbol=SZ))  # the market is open today
    assert m.on_timer(at("09:29:00")) == [] and m.on_timer(at("09:30:59")) == []
    [alert] = [a for a in m.on_timer(at("09:31:00")) if a.vt_symbol == "600000.SSE"]
    assert (alert.rule, alert.vt_symbol, alert.value("quiet_seconds")) == ("stale_quote", "600000.SSE", 60.0)


def test_no_stale_alerts_while_no_watched_symbol_has_quoted_today():
    m = MonitorCore()  # a holiday the calendar does not know yet looks like a trading day without quotes
    m.watch(["600000.SSE", SZ], at("09:00:00"))
    assert [a for minute in range(30, 60) for a in m.on_timer(at(f"10:{minute}:00"))] == []
    m.on_quote(quote("10:59:30", 10.0, 100, vt_symbol=SZ))  # quotes after all: the other one is stale
    [alert] = m.on_timer(at("11:00:00"))
    assert (alert.vt_symbol, alert.value("quiet_seconds")) == ("600000.SSE", 5400.0)  # since 09:30


def test_stop_crossing_alerts_on_each_cross_after_the_cool_down():
    steps = [
        quote("10:00:00", 9.60, 100), quote("10:00:03", 9.50, 200), quote("10:00:06", 9.40, 300),
        quote("10:00:09", 9.70, 400), quote("10:01:00", 9.49, 500),  # crossed again inside 300 s: quiet
        quote("10:06:00", 9.70, 600), quote("10:06:03", 9.45, 700),  # and again after: alerts
    ]
    assert run(steps, holdings=[Holding("600000.SSE", 1000, 9.50)]) == [
        ("stop_crossed", "600000.SSE", "10:00:03"), ("stop_crossed", "600000.SSE", "10:06:03")]
    assert run(steps) == []  # not held: nothing


def test_stop_alert_is_critical_with_its_numbers():
    m = MonitorCore(holdings=[Holding("600000.SSE", 1000, 9.50)])
    [alert] = m.on_quote(quote("10:00:00", 9.48, 100))
    assert alert.severity is Severity.CRITICAL and alert.value("stop") == 9.50 and alert.value("last") == 9.48


def test_pool_member_suspended_alerts_once_a_day():
    steps = [quote("09:25:00", 10.0, 0, suspended=True), quote("10:00:00", 10.0, 0, suspended=True),
             quote("09:25:00", 10.0, 0, suspended=True, day=DAY + timedelta(days=3))]
    assert run(steps, pool=["600000.SSE"]) == [("pool_suspended", "600000.SSE", "09:25:00")] * 2
    assert run(steps, pool=["510300.SSE"]) == []


def test_the_cool_down_table():
    assert len(COOL_DOWN) == 12  # every (state, condition, cooled) once
    assert sorted(k for k, (_, fire) in COOL_DOWN.items() if fire) == [
        (Gate.IDLE, True, True), (Gate.PENDING, True, True)]
    rule = default_rules(MonitorConfig(cooldown_seconds=60))[0]
    gate, t0 = CoolDown(), at("10:00:00")
    seq = [(0, True), (10, True), (20, False), (30, True), (59, True), (60, True), (61, False), (70, True),
           (100, False), (130, True)]
    assert [gate.admit(rule, "X", c, t0 + timedelta(seconds=s)) for s, c in seq] == \
        [True, False, False, False, False, True, False, False, False, True]


def alert(rule, symbol, second=0, severity=Severity.WARNING):
    return Alert(rule, symbol, at("10:00:00") + timedelta(seconds=second), severity, "r")


def test_storm_holds_the_excess_and_summarises_it_once_per_window():
    storm = StormLimiter(60, max_global=3, max_per_symbol=2)
    batch = [alert("price_spike", "A"), alert("volume_surge", "A"), alert("gap_open", "A"),  # 3rd of A held
             alert("gap_open", "B"), alert("gap_open", "C"), alert("gap_open", "D"),  # C, D over global
             alert("stop_crossed", "E", severity=Severity.CRITICAL)]  # always passes
    passed = storm.admit(batch, at("10:00:00"))
    assert [(a.rule, a.vt_symbol) for a in passed] == [
        ("price_spike", "A"), ("volume_surge", "A"), ("gap_open", "B"), ("stop_crossed", "E")]
    assert storm.tick(at("10:00:59")) == []
    [summary] = storm.tick(at("10:01:00"))
    assert (summary.rule, summary.vt_symbol, summary.time) == (SUMMARY_RULE, "*", at("10:01:00"))
    assert dict(summary.values) == {"held": 3.0, "symbols": 3.0, "gap_open": 3.0}
    assert storm.tick(at("10:02:00")) == []  # one summary per window
    assert storm.admit([alert("gap_open", "F")], at("10:03:00")) != []  # a new window lets it through


def test_no_summary_for_a_window_without_excess():
    storm = StormLimiter(60, 3, 2)
    storm.admit([alert("gap_open", "A")], at("10:00:00"))
    assert storm.tick(at("10:05:00")) == []


def test_storm_through_the_core_at_the_open():
    config = MonitorConfig(storm_max_global=2, storm_max_per_symbol=1)
    m = MonitorCore(config)
    codes = ["600000", "600004", "600006", "600007"]
    passed = [a.vt_symbol for c in codes for a in m.on_quote(quote("09:25:00", 10.5, 100, open=10.5,
                                                                         vt_symbol=f"{c}.SSE"))]
    assert passed == ["600000.SSE", "600004.SSE"]
    [summary] = [a for a in m.on_timer(at("09:26:00")) if a.rule == SUMMARY_RULE]
    assert summary.value("gap_open") == 2.0


def test_a_feed_disconnect_makes_every_symbol_stale_once_and_the_storm_summarises_the_rest():
    codes = [f"6000{k:02d}.SSE" for k in range(40)]
    m = MonitorCore(MonitorConfig(storm_max_global=30))
    for code in codes:
        m.on_quote(quote("10:00:00", 10.0, 100, vt_symbol=code))
    assert m.on_timer(at("10:00:59")) == []
    burst = m.on_timer(at("10:01:00"))  # the feed went silent at 10:00:00
    assert [a.rule for a in burst] == ["stale_quote"] * 30
    assert m.on_timer(at("10:01:30")) == []  # still silent: nothing repeats
    summary, *late = m.on_timer(at("10:02:00"))
    assert (summary.rule, summary.value("stale_quote"), summary.value("symbols")) == (SUMMARY_RULE, 10.0, 10.0)
    # the held ten were not cooled down: still stale, they alert in the next window
    assert [(a.rule, a.vt_symbol) for a in late] == [("stale_quote", code) for code in codes[30:]]
    assert m.on_timer(at("10:02:30")) == []


def test_an_alert_the_storm_held_back_is_named_and_alerts_when_the_window_reopens():
    m = MonitorCore(MonitorConfig(storm_max_per_symbol=2))
    steps = [quote("09:30:00", 10.50, 1000, open=10.5, bid1=10.49, ask1=10.50),  # gap_open
             quote("09:30:10", 10.95, 2000, open=10.5, bid1=10.94, ask1=10.95),  # approaching_limit_up
             quote("09:30:20", 11.00, 3000, open=10.5, bid1=11.00, ask1=0.0),  # sealed: 3rd in the window, held
             quote("09:30:50", 11.00, 3100, open=10.5, bid1=11.00, ask1=0.0),  # held again, counted once
             quote("09:31:00", 11.00, 3200, open=10.5, bid1=11.00, ask1=0.0)]  # a new window: it alerts
    out = [a for step in steps for a in m.on_quote(step)]
    assert [(a.rule, a.time) for a in out] == [
        ("gap_open", at("09:30:00")), ("approaching_limit_up", at("09:30:10")),
        (SUMMARY_RULE, at("09:31:00")), ("limit_up_sealed", at("09:31:00"))]
    assert dict(out[2].values) == {"held": 1.0, "symbols": 1.0, "limit_up_sealed": 1.0}
    assert "limit_up_sealed: 600000.SSE" in out[2].reason  # the summary names what it held
    assert m.on_quote(quote("09:31:03", 11.00, 3300, open=10.5, bid1=11.00, ask1=0.0)) == []  # once


def test_config_is_validated_and_frozen():
    with pytest.raises(InputRejected) as err:
        validate_section(MonitorConfig, {"spike_pct": 0, "storm_max_global": 2, "storm_max_per_symbol": 3},
                         "monitor.yaml")
    assert [p.reason.split(":")[0] for p in err.value.problems] == ["spike_pct"]
    with pytest.raises(InputRejected):
        validate_section(MonitorConfig, {"storm_max_global": 2, "storm_max_per_symbol": 3}, "monitor.yaml")
    with pytest.raises(InputRejected):
        validate_section(MonitorConfig, {"stale_secs": 5}, "monitor.yaml")
    with pytest.raises(ValidationError):
        MonitorConfig().spike_pct = 0.1  # type: ignore[misc]
