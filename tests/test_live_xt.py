"""The live stack trading through vnpy_xt's real ``XtGateway`` over the fake xtquant (tests/fakes).

* A rebalance driven phase by phase (``Stack.phase``): the sell is partly filled, the MiniQMT link drops
  while the rest fills, vnpy_xt reconnects and publishes every trade of the day again; the buy goes out on
  the new session, is partly filled and cancelled by the exchange, the retry sends the remainder once.
  No order is sent twice, the cycle's fills are exactly the broker's trades, the strategy keeps trading
  and the day's summary reconciles with the broker's positions.
* ``run_live`` on a fake clock: open, retry, deadline and close run, ``once`` returns 0 after the close,
  and ``stop`` ends a daemon waiting for the next session; both close the MainEngine.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import date, datetime
from datetime import time as clock_time

import pytest
from conftest import fresh_bundled_store
from fakes import fake_xttrader
from fakes.fake_xttrader import C, wait_until
from fakes.xt_harness import live_stack

fake_xt_trading = fake_xttrader.fake_xt_trading  # the fixture, visible to this module's tests

DAY = date(2025, 6, 16)  # a Monday after the bundled bars end: the close decides nothing new
A, B = "510300.SSE", "510500.SSE"
CODES = {A: "510300.SH", B: "510500.SH"}
NAME = "xt_rot"
TIMEOUT = 5.0


def local_epoch(day: date, at: clock_time) -> float:
    """The epoch whose local wall time is ``day at``: vnpy_xt stamps ticks with the machine's local time
    labelled Asia/Shanghai, so ticks of this epoch belong to ``day`` whatever the machine's zone."""
    return datetime.combine(day, at).timestamp()


def list_market(broker) -> None:
    broker.market.add_instrument(CODES[A], "沪深300ETF", sector="沪深ETF", pre_close=4.0)
    broker.market.add_instrument(CODES[B], "中证500ETF", sector="沪深ETF", pre_close=6.0)
    broker.cash = 100_000.0
    broker.set_position(CODES[A], 10_000, open_price=3.9)
    broker.clock = lambda: local_epoch(DAY, clock_time(10, 0))


def push_ticks(broker) -> None:
    stamp = int(local_epoch(DAY, clock_time(9, 31)) * 1000)
    broker.push_tick(CODES[A], 4.0, open=4.0, pre_close=4.0, time_ms=stamp)
    broker.push_tick(CODES[B], 6.0, open=6.0, pre_close=6.0, time_ms=stamp)


def refresh_book(stack, broker) -> None:
    """What vnpy_xt's timer does every 2 s (account and positions in turn): it has no handler for the
    account and position pushes, so vnpy's cache catches up with fills only through these queries. The
    close runs long after the deadline in live trading; here the phases follow each other at once."""
    stack.gateway.query_account()
    stack.gateway.query_position()
    broker.wait_delivered()
    stack.drain()


def broker_positions(broker) -> dict[str, float]:
    vt = {code: vt_symbol for vt_symbol, code in CODES.items()}
    return {vt[code]: float(p.volume) for code, p in broker.positions.items() if p.volume}


@pytest.fixture
def xt_module(fake_xt_trading, monkeypatch, tmp_path):
    """vnpy_xt bound to the fake, with its own xtdc lock file (vnpy_xt never releases the lock it takes
    in the connect thread, and filelock's locks are thread-local)."""
    import vnpy_xt

    monkeypatch.setattr(sys.modules["vnpy_xt.xt_gateway"].XtMdApi, "lock_filepath", tmp_path / "xt_lock")
    list_market(fake_xt_trading)
    fresh_bundled_store()  # the close's decision reads the database: the bundled bars (ending 2024)
    cwd = os.getcwd()
    yield vnpy_xt
    os.chdir(cwd)  # MainEngine chdirs into the runtime folder


@pytest.fixture
def stack(xt_module, fake_xt_trading, tmp_path):
    with live_stack(xt_module.XtGateway, tmp_path / "state") as built:
        yield built


def test_a_rebalance_survives_a_lost_link_and_reconciles(stack, fake_xt_trading):
    from vnpy.trader.event import EVENT_TRADE

    from vnpy_rotation.live.plan import OrderPlan

    broker = fake_xt_trading
    trade_events: list[str] = []
    stack.event_engine.register(EVENT_TRADE, lambda event: trade_events.append(event.data.vt_tradeid))

    def settle() -> None:
        broker.wait_delivered()
        stack.drain()

    stack.main_engine.connect(broker.gateway_setting(), "XT")
    stack.gateway.thread.join(TIMEOUT)
    wait_until(stack.main_engine.get_all_accounts, "the account report")
    settle()
    stack.size_risk_rules(1_000_000.0, lambda _: None)

    engine = stack.engine
    engine.add_strategy(NAME, "EqualWeightStrategy", {"symbols": [A, B]}, gateway="XT")
    engine.init_strategy(NAME)
    settle()
    engine.start_strategy(NAME)
    instance = engine.instances[NAME]
    cycle = instance.cycle
    assert instance.trading and cycle is not None, instance.error
    assert sorted(broker.market.subscriptions()) == [(CODES[A], "tick"), (CODES[B], "tick")]
    cycle.adopt(OrderPlan(NAME, "2025-06-13", [A, B], [0.2, 0.7]))  # 140,000 equity: sell A, buy B
    push_ticks(broker)
    settle()

    # open: the sell goes out first; the buy waits until it is settled
    stack.phase("open", DAY)
    [sell] = wait_until(lambda: list(broker.orders.values()), "the sell order")
    assert (sell.stock_code, sell.buy) == (CODES[A], False)
    broker.report(sell.order_id)
    first = broker.fill(sell.order_id, sell.order_volume // 3 // 100 * 100)
    settle()
    assert len(broker.orders) == 1  # no buy while the sell works

    # the link drops; the rest of the sell fills while nobody listens; vnpy_xt reconnects
    outage: list = []
    broker.disconnect(restore=True, meanwhile=lambda: outage.append(broker.fill(sell.order_id)))
    settle()
    assert len(broker.requests_of("connect")) == 2 and stack.gateway.td_api.connected
    assert trade_events.count(f"XT.{first.traded_id}") == 2  # the reconnect published the first fill again

    # the cycle heard the outage fill from the reconnect's queries and sends the buy on the new session
    buy = wait_until(lambda: next((o for o in broker.orders.values() if o.buy), None), "the buy order")
    assert buy.stock_code == CODES[B] and buy.session == broker.clients[-1].session
    broker.report(buy.order_id)
    broker.fill(buy.order_id, buy.order_volume // 2 // 100 * 100)
    broker.cancel(buy.order_id)  # the exchange cancels the rest (部撤)
    settle()

    # retry: only the buy's remainder goes out again
    stack.phase("retry", DAY)
    settle()
    orders = sorted(broker.orders.values(), key=lambda o: o.order_id)
    assert len(orders) == 3
    again = orders[-1]
    assert (again.stock_code, again.buy) == (CODES[B], True)
    assert again.order_volume <= buy.order_volume - buy.traded_volume
    broker.report(again.order_id)
    broker.fill(again.order_id)
    settle()

    stack.phase("deadline", DAY)
    settle()
    refresh_book(stack, broker)
    stack.phase("close", DAY)
    settle()

    # every order was sent once: one broker order per reference, per attempt of each leg
    summary = cycle.state.history[-1]
    assert cycle.state.last_close == DAY.isoformat() and cycle.state.progress is None
    requests = [r for r in broker.requests_of("order_stock") if not r.dropped]
    assert len(requests) == len(broker.orders) == summary["orders"] == 3
    assert len({o.order_remark for o in broker.orders.values()}) == 3
    assert [o.status for o in orders] == [C.ORDER_SUCCEEDED, C.ORDER_PART_CANCEL, C.ORDER_SUCCEEDED]

    # the cycle's fills are the broker's trades, each once, despite the republished trades
    saved = json.loads((stack.engine.state_folder / f"{NAME}.json").read_text(encoding="utf-8"))
    assert saved["history"][-1] == summary
    assert summary["fills"] == len(broker.trades) == 4
    assert outage and outage[0] in broker.trades

    # the strategy is still trading, and the summary reconciles with the broker
    assert instance.trading and not instance.error
    assert summary["reconciliation"] == []
    assert summary["positions"] == broker_positions(broker)
    assert summary["cash"] == pytest.approx(broker.cash, abs=0.01)
    assert broker_positions(broker)[A] == 10_000 - sell.order_volume
    assert summary["unfilled"] == {}


def test_trades_and_fills_match_one_to_one(stack, fake_xt_trading):
    """The recorded fills, by trade id, volume and price, are the broker's trades (a lost link mid-sell)."""
    from vnpy_rotation.live.plan import OrderPlan

    broker = fake_xt_trading
    broker.auto_report = True
    journal: list = []

    def settle() -> None:
        broker.wait_delivered()
        stack.drain()

    stack.engine.day_closed.append(lambda name, progress, summary: journal.append(progress))
    stack.main_engine.connect(broker.gateway_setting(), "XT")
    stack.gateway.thread.join(TIMEOUT)
    wait_until(stack.main_engine.get_all_accounts, "the account report")
    settle()
    stack.size_risk_rules(1_000_000.0, lambda _: None)
    stack.engine.add_strategy(NAME, "EqualWeightStrategy", {"symbols": [A, B]}, gateway="XT")
    stack.engine.init_strategy(NAME)
    settle()
    stack.engine.start_strategy(NAME)
    instance = stack.engine.instances[NAME]
    instance.cycle.adopt(OrderPlan(NAME, "2025-06-13", [A, B], [0.2, 0.7]))
    push_ticks(broker)
    settle()

    stack.phase("open", DAY)
    [sell] = wait_until(lambda: list(broker.orders.values()), "the sell order")
    wait_until(lambda: broker.order(sell.order_id).status == C.ORDER_REPORTED, "the sell reported")
    broker.fill(sell.order_id, 100)
    broker.fill(sell.order_id, 200, 4.001)
    settle()
    broker.disconnect(restore=True, meanwhile=lambda: broker.fill(sell.order_id, price=4.002))
    settle()
    buy = wait_until(lambda: next((o for o in broker.orders.values() if o.buy), None), "the buy order")
    wait_until(lambda: broker.order(buy.order_id).status == C.ORDER_REPORTED, "the buy reported")
    broker.fill(buy.order_id)
    settle()
    for phase in ("retry", "deadline", "close"):
        if phase == "close":
            refresh_book(stack, broker)
        stack.phase(phase, DAY)
        settle()

    [progress] = journal
    recorded = sorted((f.trade_id, f.volume, f.price) for f in progress.fills)
    expected = sorted((f"XT.{t.traded_id}", float(t.volume), t.price) for t in broker.trades)
    assert recorded == expected and len(recorded) == 4
    assert len(broker.orders) == len(progress.orders) == 2
    assert instance.trading and not instance.error
    summary = instance.cycle.state.history[-1]
    assert summary["reconciliation"] == [] and summary["positions"] == broker_positions(broker)


# --------------------------------------------------------------------------------------------------
# run_live on a fake clock
# --------------------------------------------------------------------------------------------------
class GatedClock:
    """Always ``at``; the first reading waits until the test says the market data is in."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.ready = threading.Event()

    def __call__(self) -> datetime:
        assert self.ready.wait(TIMEOUT), "the test never released the clock"
        return self.at


@pytest.mark.parametrize("once", [True, False])
def test_run_live_trades_a_session_and_ends_cleanly(xt_module, fake_xt_trading, tmp_path, once):
    from vnpy_rotation.apps.rotation.daemon import TradeSpec
    from vnpy_rotation.apps.rotation.live_daemon import run_live
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.live.plan import OrderPlan, StrategyState
    from vnpy_rotation.live.schedule import SHANGHAI, SessionTimes
    from vnpy_rotation.live.state_file import write_atomic

    broker = fake_xt_trading
    broker.auto_report = True  # reported orders can be cancelled at the deadline

    gateways: list = []

    class RecordedXtGateway(xt_module.XtGateway):  # lets the test see the daemon's gateway and engines
        default_name = "XT"

        def __init__(self, event_engine, gateway_name) -> None:
            super().__init__(event_engine, gateway_name)
            gateways.append(self)

    out = tmp_path / "out"
    spec = TradeSpec("equal_weight", {"symbols": [A, B]}, BacktestConfig(), out)
    plan = OrderPlan("equal_weight", "2025-06-13", [A, B], [0.2, 0.7])
    write_atomic(out / "state" / "equal_weight.json", StrategyState(plan=plan).to_json())

    # phases: open and retry past, the deadline and the close a moment away (real waits of 0.2 s)
    now = datetime.combine(DAY, clock_time(10, 0), SHANGHAI)
    times = SessionTimes(open=clock_time(9, 31), retries=(clock_time(9, 45),),
                         deadline=clock_time(10, 0, 0, 200_000), close=clock_time(10, 0, 0, 400_000))
    clock = GatedClock(now)
    stop = threading.Event()
    result: list = []
    lines: list[str] = []

    def daemon() -> None:
        try:
            result.append(run_live(spec, RecordedXtGateway, broker.gateway_setting(), once=once, stop=stop,
                                   times=times, now=clock, output=lines.append))
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            result.append(exc)

    thread = threading.Thread(target=daemon, name="live-daemon", daemon=True)
    thread.start()
    try:
        # the strategy subscribed its symbols: publish the opening ticks, then let the clock run
        wait_until(lambda: len(broker.market.subscriptions()) == 2, "the strategy's subscriptions", 30.0)
        push_ticks(broker)
        broker.wait_delivered()
        clock.ready.set()

        journal = out / "journal" / f"{DAY.isoformat()}.json"
        wait_until(journal.exists, "the day's journal", 30.0)
        if not once:
            stop.set()  # the daemon waits for the next session's open: stop ends the wait
        thread.join(30.0)
        assert not thread.is_alive(), "run_live did not return"
    finally:
        stop.set()
        clock.ready.set()
        thread.join(30.0)
        for gateway in gateways:
            if gateway.thread is not None:
                gateway.thread.join(TIMEOUT)

    assert result == [0]
    [gateway] = gateways
    assert not gateway.event_engine._active  # noqa: SLF001 (MainEngine.close stopped the event engine)

    record = json.loads(journal.read_text(encoding="utf-8"))
    summary, progress = record["summary"], record["progress"]
    assert summary["day"] == DAY.isoformat()
    # open sent the sell; nobody filled it; the deadline cancelled it; the close reconciled
    [order] = progress["orders"]
    assert (order["symbol"], order["buy"]) == (A, False)
    [broker_order] = broker.orders.values()
    assert broker_order.order_remark == order["order_id"].split(".", 1)[1]
    assert broker_order.status == C.ORDER_CANCELED
    assert summary["fills"] == 0 and summary["reconciliation"] == []
    assert summary["positions"] == broker_positions(broker) == {A: 10_000.0}
    state = json.loads((out / "state" / "equal_weight.json").read_text(encoding="utf-8"))
    assert state["last_close"] == DAY.isoformat() and state["progress"] is None
    assert (out / "daily_summary.csv").exists()
