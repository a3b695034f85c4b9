"""The market monitor app in a real MainEngine on vnpy_xt's real XtGateway over the fake xtquant: scripted tick
streams through XT's quote callback, the alerts they raise, the view's connection flag, the 1-minute bars in
vnpy's database and the provisional daily bar the official import replaces; the watchlist file; the window."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from fakes import xt_harness
from fakes.xt_harness import CN, connect, settle

fake_xt_trading = xt_harness.fake_xt_trading
xt = xt_harness.xt

DAY = date(2025, 1, 2)  # a Thursday, a trading day


def at(hms: str) -> datetime:
    """China wall time on DAY."""
    h, m, s = (int(p) for p in hms.split(":"))
    return datetime(DAY.year, DAY.month, DAY.day, h, m, s)


class Clock:
    def __init__(self) -> None:
        self.now = at("09:20:00")

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mon(xt, store):
    """The monitor app added to the xt fixture's MainEngine, on a scripted clock, alerts recorded."""
    from vnpy.trader.event import EVENT_TIMER

    from vnpy_rotation.apps.monitor import APP_NAME, EVENT_MONITOR_ALERT, MonitorApp

    xt.main_engine.add_app(MonitorApp)
    engine = xt.main_engine.get_engine(APP_NAME)
    xt.main_engine.event_engine.unregister(EVENT_TIMER, engine._process_timer)  # the test's clock drives it
    engine.init_engine(notifications=False)
    clock = Clock()
    engine.clock = clock
    notified: list[tuple[str, str, str]] = []
    engine.notify = lambda kind, subject, content: notified.append((kind, subject, content))
    published: list = []
    xt.main_engine.event_engine.register(EVENT_MONITOR_ALERT, lambda event: published.append(event.data))
    xt.clock, xt.engine, xt.notified, xt.published, xt.store = clock, engine, notified, published, store
    return xt


def tick(xt, code: str, hms: str, last: float, *, lots: int = 0, amount: float = 0.0, bid: float | None = None,
         ask: float | None = None, open_: float | None = None) -> None:
    """Push one XT tick stamped ``hms`` China time, after moving the monitor's clock there; wait until handled."""
    moment = at(hms)
    xt.clock.now = moment
    fields = {}
    if bid is not None:
        fields["bid_prices"] = [bid] + [round(bid - 0.01 * i, 2) for i in range(1, 5)]
    if ask is not None:
        fields["ask_prices"] = [ask] * 5 if ask == 0 else [round(ask + 0.01 * i, 2) for i in range(5)]
    xt.broker.push_tick(code, last, volume=lots, amount=amount, open=open_ if open_ is not None else last,
                        pre_close=None, time_ms=int(moment.replace(tzinfo=CN).timestamp() * 1000), **fields)
    settle(xt)


def timer(xt, hms: str):
    xt.clock.now = at(hms)
    view = xt.engine.on_timer()
    settle(xt)
    return view


def start(xt, *symbols: str) -> None:
    from vnpy_rotation.monitor import Reference

    connect(xt)
    xt.engine.start(symbols, "XT", references=[Reference(s, avg_volume_5d=1e6) for s in symbols])


def alerts_of(xt, vt_symbol: str) -> list[tuple[str, str]]:
    return [(f"{a.time:%H:%M:%S}", a.rule) for a in xt.published if a.vt_symbol == vt_symbol]


# -- subscription and conversion ------------------------------------------------------------------------
def test_start_subscribes_through_xt_and_converts_lots_to_shares(mon):
    start(mon, "600000.SSE", "510300.SSE")
    assert sorted(mon.market.subscriptions()) == [("510300.SH", "tick"), ("600000.SH", "tick")]

    tick(mon, "600000.SH", "09:31:00", 10.2, lots=1234, amount=1_258_680.0, bid=10.19, ask=10.2, open_=10.1)
    tick(mon, "000001.SZ", "09:31:00", 11.0, lots=5)  # not watched (and not subscribed): ignored
    view = mon.engine.view()
    ind = dict(view.rows)["600000.SSE"]
    assert ind.volume == 123_400  # XT's 1234 lots
    assert ind.vwap == pytest.approx(1_258_680.0 / 123_400)
    assert (ind.limit_up, ind.limit_down, ind.feed_limit_up, ind.feed_limit_down) == (11.0, 9.0, 11.0, 9.0)
    assert ind.time == at("09:31:00")  # XT's epoch read as China time whatever the machine's zone
    assert ind.change == pytest.approx(0.02)
    assert dict(view.rows)["510300.SSE"] is None and view.connected
    assert [s for s, _ in view.rows] == ["600000.SSE", "510300.SSE"]


# -- limit-up seal and 开板 -----------------------------------------------------------------------------
def test_limit_up_seal_then_open_alert_exactly_once_each(mon):
    start(mon, "600000.SSE")
    tick(mon, "600000.SH", "10:00:00", 10.5, lots=100, amount=105_000, bid=10.49, ask=10.5, open_=10.0)
    tick(mon, "600000.SH", "10:00:03", 11.0, lots=200, amount=215_000, bid=11.0, ask=0, open_=10.0)  # sealed
    tick(mon, "600000.SH", "10:00:06", 11.0, lots=300, amount=325_000, bid=11.0, ask=0, open_=10.0)  # still sealed
    timer(mon, "10:00:07")
    tick(mon, "600000.SH", "10:00:09", 10.98, lots=400, amount=434_800, bid=10.97, ask=10.98, open_=10.0)  # 开板
    tick(mon, "600000.SH", "10:00:12", 10.97, lots=450, amount=489_650, bid=10.96, ask=10.97, open_=10.0)

    rules = alerts_of(mon, "600000.SSE")
    assert rules.count(("10:00:03", "limit_up_sealed")) == 1
    assert rules.count(("10:00:09", "limit_up_opened")) == 1
    # 10:00:09 is one event (开板), not also approaching_limit_up; at 10:00:12 still near: approaching alerts
    assert sorted(rules) == [("10:00:03", "limit_up_sealed"), ("10:00:09", "limit_up_opened"),
                             ("10:00:12", "approaching_limit_up")]
    assert [(kind, subject.split()[1]) for kind, subject, _ in mon.notified] == \
        [("market_alert", rule) for _, rule in rules]  # every alert also went to the notifier
    assert [a.rule for a in mon.engine.view().alerts] == [rule for _, rule in rules]


# -- a stale feed ---------------------------------------------------------------------------------------
def test_stale_feed_alerts_in_continuous_trading_but_not_over_lunch(mon):
    start(mon, "510300.SSE")
    tick(mon, "510300.SH", "10:30:00", 4.0, lots=10)
    assert timer(mon, "10:30:50").alerts == ()  # 50 s quiet
    timer(mon, "10:31:05")  # 65 s quiet
    assert alerts_of(mon, "510300.SSE") == [("10:31:05", "stale_quote")]

    tick(mon, "510300.SH", "11:29:40", 4.01, lots=20)
    for hms in ("11:31:00", "12:00:00", "12:59:59", "13:00:30"):  # lunch, then 20 + 30 s of trading
        timer(mon, hms)
    assert alerts_of(mon, "510300.SSE") == [("10:31:05", "stale_quote")]
    timer(mon, "13:00:50")  # 20 + 50 s of continuous trading since 11:29:40
    assert alerts_of(mon, "510300.SSE") == [("10:31:05", "stale_quote"), ("13:00:50", "stale_quote")]


# -- a disconnect ---------------------------------------------------------------------------------------
def test_disconnect_clears_the_connected_flag_and_the_silence_alerts(mon):
    start(mon, "600000.SSE", "510300.SSE")
    tick(mon, "600000.SH", "10:00:00", 10.1, lots=10)
    tick(mon, "510300.SH", "10:00:01", 4.0, lots=10)
    assert timer(mon, "10:00:30").connected

    mon.broker.disconnect()  # MiniQMT drops; vnpy_xt's reconnect attempt fails while it is down
    settle(mon)
    view = timer(mon, "10:00:40")
    assert not view.connected and view.alerts == ()
    timer(mon, "10:01:30")  # no ticks since: 90 s and 89 s of continuous trading
    assert sorted(a.vt_symbol for a in mon.published if a.rule == "stale_quote") == ["510300.SSE", "600000.SSE"]
    assert not mon.engine.view().connected


# -- bars in the database -------------------------------------------------------------------------------
def stream_a_morning(mon) -> None:
    start(mon, "510300.SSE")
    tick(mon, "510300.SH", "09:25:00", 4.00, lots=10, amount=4_000)          # opening auction
    tick(mon, "510300.SH", "09:30:30", 4.02, lots=30, amount=12_040)         # bar 09:30: +20 lots
    tick(mon, "510300.SH", "09:31:10", 3.99, lots=60, amount=24_010)         # bar 09:31: +30 lots
    tick(mon, "510300.SH", "09:32:05", 4.01, lots=70, amount=28_020)         # bar 09:32: +10 lots
    timer(mon, "09:33:10")  # 09:32 is over (and its grace): closed by the clock


def test_closed_minute_bars_are_saved_in_vnpy_database(mon):
    from vnpy_rotation.apps.monitor.engine import minute_bars_in_database

    stream_a_morning(mon)
    bars = minute_bars_in_database("510300.SSE", at("09:00:00"), at("15:00:00"))
    got = [(b.datetime.astimezone(CN).strftime("%H:%M"), b.open_price, b.high_price, b.low_price, b.close_price,
            b.volume, b.turnover) for b in bars]
    assert got == [("09:30", 4.00, 4.02, 4.00, 4.02, 3000.0, 12_040.0),  # the auction joins the first bar
                   ("09:31", 3.99, 3.99, 3.99, 3.99, 3000.0, 11_970.0),
                   ("09:32", 4.01, 4.01, 4.01, 4.01, 1000.0, 4_010.0)]
    assert mon.engine.saved_minute_bars == 3


def test_provisional_daily_bar_is_replaced_by_the_official_import(mon, tmp_path):
    from vnpy_rotation.data.importer import ImportOptions, import_file

    stream_a_morning(mon)
    written = mon.engine.close_day()
    assert written == {"510300.SSE": [DAY]}
    store = mon.store
    assert store.provisional_days("510300", "SSE") == {DAY: "monitor"}
    bar = store.stored_bars("510300", "SSE").loc[pd.Timestamp(DAY)]
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (4.00, 4.02, 3.99, 4.01, 7000.0)

    official = tmp_path / "510300.csv"
    official.write_text("date,open,high,low,close,volume,turnover\n"
                        "2025-01-02,4.000,4.050,3.980,4.030,9000000,36000000\n", encoding="utf-8")
    report = import_file(official, store, ImportOptions())
    assert [(r.day, r.why) for r in report.replaced] == [(DAY, "provisional")]
    bar = store.stored_bars("510300", "SSE").loc[pd.Timestamp(DAY)]
    assert (bar["close"], bar["volume"]) == (4.03, 9_000_000.0)
    assert store.provisional_days("510300", "SSE") == {}


def test_a_provisional_bar_never_overwrites_an_official_one(mon, tmp_path):
    from vnpy_rotation.data.importer import ImportOptions, import_file

    official = tmp_path / "510300.csv"
    official.write_text("date,open,high,low,close,volume,turnover\n"
                        "2025-01-02,4.000,4.050,3.980,4.030,9000000,36000000\n", encoding="utf-8")
    import_file(official, mon.store, ImportOptions())
    stream_a_morning(mon)
    assert mon.engine.close_day() == {"510300.SSE": []}
    bar = mon.store.stored_bars("510300", "SSE").loc[pd.Timestamp(DAY)]
    assert (bar["close"], bar["volume"]) == (4.03, 9_000_000.0)
    assert mon.store.provisional_days("510300", "SSE") == {}


# -- watchlists -----------------------------------------------------------------------------------------
WATCHLISTS = """\
lists:
  banks:
    symbols: [600000.SSE, 000001.SZSE]
  etf:
    pools: [OTHER]
  csi:
    index: 000300.SSE
    symbols: [600000.SSE]
"""


def store_membership(day_snapshot: str, listed: list[str], changes: list[tuple[str, str, int]]) -> None:
    from vnpy_rotation.fundamentals.store import FundamentalStore

    def frame(rows):
        return pd.DataFrame({"day": pd.to_datetime([r[0] for r in rows]), "symbol": [r[1][:6] for r in rows],
                             "exchange": [r[1][7:] for r in rows], **({"change": [r[2] for r in rows]}
                                                                      if rows and len(rows[0]) == 3 else {})})

    store = FundamentalStore()
    store.replace_snapshots("000300.SSE", frame([(day_snapshot, s) for s in listed]))
    store.save_index_changes("000300.SSE", frame(changes))


def test_watchlists_resolve_symbols_pools_and_point_in_time_index_members(store, tmp_path):
    from vnpy_rotation.apps.monitor.watchlists import load_watchlists

    # 2025-06-30 list: A, B, C; C joined on 2025-06-16 replacing D. On 2025-06-10, D was still a member.
    store_membership("2025-06-30", ["600000.SSE", "600036.SSE", "601318.SSE"],
                     [("2025-06-16", "601318.SSE", 1), ("2025-06-16", "600519.SSE", -1)])
    path = tmp_path / "rotation_watchlists.yaml"
    path.write_text(WATCHLISTS, encoding="utf-8")

    lists = load_watchlists(date(2025, 6, 10), path)
    assert lists["banks"].symbols == ("600000.SSE", "000001.SZSE")
    assert lists["etf"].symbols == ("518880.SSE", "511010.SSE") and lists["etf"].pool_members == {
        "518880.SSE", "511010.SSE"}  # configs/etf_pools.yaml's OTHER pool
    assert lists["csi"].symbols == ("600000.SSE", "600036.SSE", "600519.SSE")
    assert load_watchlists(date(2025, 6, 20), path)["csi"].symbols == ("600000.SSE", "600036.SSE", "601318.SSE")


@pytest.mark.parametrize("text, line, field", [
    ("lists:\n  banks:\n    symbols: [600000.SSE, 60000.SSE]\n", 3, "lists.banks.symbols"),
    ("lists:\n  a:\n    symbols: [600000.SSE]\n  etf:\n    pools: [NOPE]\n", 5, "lists.etf.pools"),
    ("lists:\n  csi:\n    index: 000905.SSE\n", 3, "lists.csi.index"),  # nothing stored for it
    ("lists:\n  a:\n    symbol: [600000.SSE]\n", 3, "lists.a.symbol"),  # a misspelt field
])
def test_a_bad_watchlist_file_names_file_line_and_field(store, tmp_path, text, line, field):
    from vnpy_rotation.apps.monitor.watchlists import load_watchlists
    from vnpy_rotation.errors import InputRejected

    path = tmp_path / "rotation_watchlists.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputRejected) as caught:
        load_watchlists(date(2025, 6, 10), path)
    [problem] = caught.value.problems
    assert (problem.source, problem.line, problem.reason.split(":")[0]) == (str(path), line, field)


def test_start_watchlists_subscribes_the_named_lists_and_refuses_an_unknown_one(mon, tmp_path):
    from vnpy_rotation.errors import InputRejected

    path = tmp_path / "rotation_watchlists.yaml"
    path.write_text("lists:\n  banks:\n    symbols: [600000.SSE]\n  etf:\n    symbols: [510300.SSE]\n",
                    encoding="utf-8")
    connect(mon)
    with pytest.raises(InputRejected):
        mon.engine.start_watchlists("XT", ["nope"], path)
    assert mon.market.subscriptions() == [] and mon.engine.watchlist == ()
    assert mon.engine.start_watchlists("XT", ["banks"], path) == ("600000.SSE",)
    assert mon.market.subscriptions() == [("600000.SH", "tick")]


# -- the window -----------------------------------------------------------------------------------------
def test_window_shows_the_watchlist_and_alerts_and_a_screenshot(mon, qtbot, tmp_path):
    import os
    from pathlib import Path

    from vnpy.trader.ui import QtGui

    from vnpy_rotation.apps.monitor.ui import MarketMonitor

    window = MarketMonitor(mon.main_engine, mon.main_engine.event_engine)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    start(mon, "600000.SSE", "510300.SSE", "159915.SZSE")
    tick(mon, "600000.SH", "10:00:00", 10.5, lots=100, amount=105_000, bid=10.49, ask=10.5, open_=10.0)
    tick(mon, "600000.SH", "10:00:03", 11.0, lots=200, amount=215_000, bid=11.0, ask=0, open_=10.0)
    tick(mon, "510300.SH", "10:00:04", 3.92, lots=5_000, amount=1_960_000, open_=4.0)
    timer(mon, "10:00:05")
    qtbot.waitUntil(lambda: window.alert_table.rowCount() == 2, timeout=3000)

    table = window.watch_table
    cells = [[table.item(r, c).text() for c in (0, 1, 2, 11)] for r in range(table.rowCount())]
    assert cells == [["600000.SSE", "11.000", "+10.00%", "封涨停"], ["510300.SSE", "3.920", "-2.00%", ""],
                     ["159915.SZSE", "-", "-", "no quote"]]
    alerts = [[window.alert_table.item(r, c).text() for c in (0, 2, 3)] for r in range(2)]
    assert alerts == [["10:00:05", "stale_quote", "159915.SZSE"],  # never quoted: quiet since the open
                      ["10:00:03", "limit_up_sealed", "600000.SSE"]]  # newest first
    assert "connected" in window.status_label.text()

    folders = [tmp_path] + ([Path(os.environ["ROTATION_SCREENSHOTS"])] if os.environ.get("ROTATION_SCREENSHOTS")
                            else [])
    picture = window.grab()
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        assert picture.save(str(folder / "market_monitor.png"))
        image = QtGui.QImage(str(folder / "market_monitor.png"))
        assert not image.isNull() and image.width() > 50 and image.height() > 50


def test_run_py_gui_main_window_opens_the_monitor_from_its_menu(qtbot, runtime_home, tmp_path):
    import os

    from vnpy.trader.ui import QtCore, QtGui

    from vnpy_rotation.apps.monitor import APP_NAME, MonitorApp
    from vnpy_rotation.apps.monitor.ui import MarketMonitor
    from vnpy_rotation.cli.gui_cmd import build_main_window

    for fmt in (QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Format.IniFormat):  # MainWindow's layout
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    cwd = os.getcwd()
    _, main_engine, main_window = build_main_window()
    try:
        assert APP_NAME in {app.app_name for app in main_engine.get_all_apps()}
        actions = {a.text(): a for a in main_window.findChildren(QtGui.QAction)}
        actions[MonitorApp.display_name].trigger()
        window = main_window.widgets[APP_NAME]
        assert isinstance(window, MarketMonitor) and window.isVisible()
        assert window.watch_table.rowCount() == 0 and "0 symbols" in window.status_label.text()
        window.close()
    finally:
        main_window.hide()
        main_window.deleteLater()
        main_engine.close()
        os.chdir(cwd)


def test_started_before_connect_subscribes_when_the_contracts_arrive(mon):
    mon.engine.start(["510300.SSE"], "XT", references=[])
    assert mon.market.subscriptions() == [] and not mon.engine.view().connected  # nothing connected yet
    connect(mon)
    assert mon.market.subscriptions() == [("510300.SH", "tick")] and mon.engine.view().connected


def test_references_come_from_the_daily_bars_before_the_day(mon, tmp_path):
    from vnpy_rotation.data.importer import ImportOptions, import_file

    official = tmp_path / "510300.csv"
    rows = [("2024-12-24", 1_000_000), ("2024-12-25", 2_000_000), ("2024-12-26", 3_000_000),
            ("2024-12-27", 4_000_000), ("2024-12-30", 5_000_000), ("2024-12-31", 6_000_000),
            ("2025-01-02", 70_000_000)]  # the day itself is not history
    official.write_text("date,open,high,low,close,volume,turnover\n" + "".join(
        f"{d},4.000,4.000,4.000,4.000,{v},{v * 4}\n" for d, v in rows), encoding="utf-8")
    import_file(official, mon.store, ImportOptions())
    [reference] = mon.engine.load_references(["510300.SSE"], DAY)
    assert (reference.avg_volume_5d, reference.is_st) == (4_000_000.0, False)  # mean of 12-25 … 12-31
    [unknown] = mon.engine.load_references(["159915.SZSE"], DAY)
    assert unknown.avg_volume_5d is None  # fewer than 5 days stored: no 量比


# -- suspension from XT's instrument detail ------------------------------------------------------------------
def test_a_pool_member_xt_reports_suspended_alerts_and_is_never_stale(mon):
    """InstrumentStatus counts the days suspended (0 on the first day and for normal trading): 2 is suspended."""
    mon.market.add_instrument("600004.SH", "白云机场", sector="沪深A股", pre_close=10.0, InstrumentStatus=2)
    connect(mon)
    from vnpy_rotation.monitor import Reference

    symbols = ("600004.SSE", "600000.SSE")
    mon.engine.start(symbols, "XT", references=[Reference(s, avg_volume_5d=1e6) for s in symbols], pool=symbols)
    tick(mon, "600004.SH", "09:31:00", 10.0, lots=0)
    tick(mon, "600000.SH", "09:31:00", 10.0, lots=10, amount=10000)
    view = mon.engine.view()
    assert dict(view.rows)["600004.SSE"].suspended and not dict(view.rows)["600000.SSE"].suspended
    assert alerts_of(mon, "600004.SSE") == [("09:31:00", "pool_suspended")]
    timer(mon, "09:35:00")  # four minutes without a tick: the traded stock is stale, the suspended one is not
    assert ("09:35:00", "stale_quote") in alerts_of(mon, "600000.SSE")
    assert [r for _, r in alerts_of(mon, "600004.SSE")] == ["pool_suspended"]



# -- volumes by the feed, not by the gateway's name; the closing bar kept at shutdown ---------------------------
@pytest.mark.parametrize(("gateway_name", "raw", "shares"), [("XT", True, 123_400), ("XT_B", True, 123_400),
                                                              ("REPLAY", False, 1234)])
def test_lots_become_shares_for_every_xt_gateway_instance(gateway_name, raw, shares):
    from vnpy.trader.constant import Exchange
    from vnpy.trader.object import TickData

    from vnpy_rotation.apps.monitor.engine import tick_to_quote

    t = TickData(gateway_name=gateway_name, symbol="600000", exchange=Exchange.SSE, datetime=at("09:31:00"),
                 volume=1234, turnover=1_258_680.0, last_price=10.2, pre_close=10.0, bid_volume_1=5)
    if raw:
        t.extra = {"raw": {"lastPrice": 10.2}, "market_closed": False}
    quote = tick_to_quote(t)
    assert quote.volume == shares and quote.bid1_volume == 5 * shares / 1234


def test_quitting_after_the_bell_saves_the_bar_with_the_closing_auction(mon):
    from vnpy_rotation.apps.monitor.engine import minute_bars_in_database

    start(mon, "000001.SZSE")
    tick(mon, "000001.SZ", "14:58:30", 11.50, lots=100, amount=115_000)
    tick(mon, "000001.SZ", "14:59:10", 11.51, lots=110, amount=126_510)
    tick(mon, "000001.SZ", "15:00:02", 11.52, lots=200, amount=230_190)  # the closing auction's print
    timer(mon, "15:00:30")  # inside the last bar's wait for late snapshots
    mon.engine.close()  # the user quits
    bars = {b.datetime.strftime("%H:%M"): b.volume for b in
            minute_bars_in_database("000001.SZSE", at("09:00:00"), at("15:00:00"))}
    # the day's first snapshot is the volume base (traded before the monitor started); 14:59 = 10 + 90 lots
    assert bars == {"14:58": 0, "14:59": 10_000}
