"""The live cycle's pure core against an in-memory broker: sells before buys, buys sized on the cash the
sells left, limit prices, resubmission, the deadline, the retry carry-over, crash recovery by reference,
the phase table and the live schedule."""

from __future__ import annotations

import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from vnpy_rotation.attribution.execution import ExecutionInputs, FillRow, OrderRow, execution_stats
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.live.cycle import CLOSED, WORKING, ExecutionCycle, ExecutionSettings, PhaseError, advance
from vnpy_rotation.live.execution_inputs import from_journal
from vnpy_rotation.live.plan import INTENT, UNSENT, OrderPlan, StrategyState
from vnpy_rotation.live.ports import ACTIVE, CANCELLED, FILLED, BrokerOrder, BrokerTrade
from vnpy_rotation.live.schedule import SHANGHAI, SessionTimes, next_phase
from vnpy_rotation.live.sizing import Quote
from vnpy_rotation.live.terms import terms_on
from vnpy_rotation.market.calendar import default_calendar

DAY = date(2024, 7, 1)
A, B, C = "510300.SSE", "510500.SSE", "600000.SSE"


class Broker:
    """Keeps orders; the test decides when they fill. ``auto`` fills every order at its limit at once."""

    def __init__(self, cash: float, holdings: dict[str, float], auto: bool = False) -> None:
        self._cash, self._holdings, self.auto = cash, dict(holdings), auto
        self.book: dict[str, BrokerOrder] = {}
        self.trades: list[BrokerTrade] = []
        self.cycle: ExecutionCycle | None = None
        self.sent: list[str] = []  # references in sending order

    def send(self, symbol, buy, volume, price, reference):
        order_id = str(len(self.book) + 1)
        self.book[order_id] = BrokerOrder(order_id, reference, symbol, buy, volume, price, 0.0, ACTIVE)
        self.sent.append(reference)
        return order_id

    def report(self, order_id):
        self.cycle.on_order(self.book[order_id])

    def fill(self, order_id, volume=None, time=""):
        order = self.book[order_id]
        volume = order.volume - order.traded if volume is None else volume
        trade = BrokerTrade(f"t{len(self.trades) + 1}", order_id, order.symbol, order.buy, order.price, volume, time)
        self.trades.append(trade)
        value = volume * order.price
        self._cash += -value if order.buy else value  # fees are the cycle's own bookkeeping here
        self._holdings[order.symbol] = self._holdings.get(order.symbol, 0.0) + (volume if order.buy else -volume)
        traded = order.traded + volume
        self.book[order_id] = order = BrokerOrder(order_id, order.reference, order.symbol, order.buy, order.volume,
                                                    order.price, traded, FILLED if traded >= order.volume else ACTIVE)
        self.cycle.on_trade(trade)
        self.cycle.on_order(order)

    def cancel(self, order_id):
        order = self.book[order_id]
        self.book[order_id] = order = BrokerOrder(order_id, order.reference, order.symbol, order.buy, order.volume,
                                                    order.price, order.traded, CANCELLED)
        self.cycle.on_order(order)

    def orders(self):
        return list(self.book.values())

    def trades_of(self, order_id):
        return [t for t in self.trades if t.order_id == order_id]

    def holdings(self):
        return dict(self._holdings)

    def cash(self):
        return self._cash


def make_cycle(broker, plan, settings=ExecutionSettings(), state=None):
    saved = []
    state = state or StrategyState(plan=plan)
    cycle = ExecutionCycle("s", settings, broker, lambda symbol, day: terms_on(symbol, day, settings.config), state,
                           lambda st: saved.append(st.to_json()))
    broker.cycle = cycle
    return cycle, saved


PLAN = OrderPlan("s", "2024-06-28", [A, B, C], [0.5, 0.5, 0.0])
QUOTES = {A: Quote(3.5, 3.85, 3.15, 3.5), B: Quote(5.0, 5.5, 4.5, 5.0), C: Quote(7.0, 7.7, 6.3, 7.0)}


def open_session(cycle):
    cycle.open(DAY, QUOTES)


def test_sells_go_first_and_buys_are_sized_on_the_cash_they_left():
    broker = Broker(cash=10_000.0, holdings={C: 10_000})
    cycle, _ = make_cycle(broker, PLAN)
    open_session(cycle)
    assert [o.symbol for o in broker.book.values()] == [C]  # the buys wait for the sell
    broker.report("1")
    assert len(broker.book) == 1  # still working
    broker.fill("1")
    # equity at the open: 10 000 + 10 000 × 7 = 80 000 → 40 000 each; A at 3.5 = 11 428.6 → 11 400 shares
    assert (broker.book["2"].symbol, broker.book["2"].volume, broker.book["2"].price) == (A, 11_400, 3.5)
    assert "3" not in broker.book  # one buy at a time: the next waits for the broker's answer
    broker.report("2")
    assert (broker.book["3"].symbol, broker.book["3"].volume) == (B, 8_000)
    broker.fill("2")
    broker.fill("3")
    assert cycle.state.progress.phase == WORKING
    assert [f.symbol for f in cycle.state.progress.fills] == [C, A, B]
    sell = cycle.state.progress.fills[0]
    # a stock sell: 0.025 % commission, 0.05 % stamp duty (since 2023-08-28), 0.001 % transfer fee
    assert (sell.value, sell.commission, sell.stamp_duty, sell.transfer_fee) == (70_000.0, 17.5, 35.0, 0.7)


def test_each_order_records_when_it_was_sent_and_its_time_to_fill_is_exact():
    broker = Broker(cash=10_000.0, holdings={C: 10_000})
    cycle, _ = make_cycle(broker, PLAN)
    ticks = iter([datetime(2024, 7, 1, 9, 31, 5, tzinfo=SHANGHAI), datetime(2024, 7, 1, 9, 31, 50, tzinfo=SHANGHAI),
                  datetime(2024, 7, 1, 9, 32, 0, tzinfo=SHANGHAI)])
    cycle.clock = lambda: next(ticks)
    open_session(cycle)
    broker.report("1")
    broker.fill("1", time="2024-07-01T09:31:47")  # the broker's clock, naive: Asia/Shanghai
    broker.report("2")
    broker.fill("2", 5_000, time="2024-07-01T09:31:58")
    broker.fill("2", time="2024-07-01T09:32:30")
    broker.fill("3", time="2024-07-01T09:32:01")
    progress = cycle.state.progress
    assert [o.sent_at for o in progress.orders] == ["2024-07-01T09:31:05+08:00", "2024-07-01T09:31:50+08:00",
                                                    "2024-07-01T09:32:00+08:00"]
    # the journal's record gives the statistics: the open phase began at 09:31:00, but each order's own
    # sending time is the start of its wait: 42 s, 40 s (its last fill), 1 s
    record = {"strategy": "s", "summary": {"day": "2024-07-01"}, "progress": progress.to_json()}
    inputs = from_journal([record], "A", sent={DAY: datetime(2024, 7, 1, 9, 31, tzinfo=SHANGHAI)})
    [stats] = [s for s in execution_stats(inputs, DAY) if (s.scope, s.period) == ("strategy", "day")]
    assert (stats.timed_orders, stats.time_to_fill_median, stats.time_to_fill_p90) == (3, 40.0, 41.6)


def test_a_fill_stamped_before_its_sending_is_not_timed():
    # a replay's fills carry the open (09:30) while its open phase starts at 09:31: never a negative wait
    order = OrderRow(DAY, "s", "A", "r", A, True, 100, sent_at=datetime(2024, 7, 1, 9, 31, tzinfo=SHANGHAI))
    fill = FillRow(DAY, "s", "A", "r", A, True, 3.5, 100, 0.0, datetime(2024, 7, 1, 9, 30, tzinfo=SHANGHAI))
    [stats, _] = execution_stats(ExecutionInputs((order,), (fill,)), DAY)[:2]
    assert (stats.filled_orders, stats.timed_orders) == (1, 0) and math.isnan(stats.time_to_fill_median)


def test_a_buy_is_cut_to_the_cash_and_the_lot():
    broker = Broker(cash=10_000.0, holdings={})
    cycle, _ = make_cycle(broker, OrderPlan("s", "2024-06-28", [A], [1.0]))
    open_session(cycle)
    leg = cycle.state.progress.legs[0]
    # 10 000 / 3.5 = 2857.1 shares wanted; 2 857 do not fit with the commission, the lot makes it 2 800
    # (a fractional weight-derived quantity is not reported as lot rounding, as in the backtester)
    assert (leg.wanted, leg.submitted, leg.cuts) == (pytest.approx(2857.142857), 2_800, [])


def test_the_limit_moves_by_the_tolerance_on_the_tick_grid_inside_the_day_limits():
    broker = Broker(cash=100_000.0, holdings={C: 1_000})
    quotes = {**QUOTES, A: Quote(3.84, 3.85, 3.15, 3.5)}
    cycle, _ = make_cycle(broker, PLAN, ExecutionSettings(tolerance_bps=50))
    cycle.open(DAY, quotes)
    assert broker.book["1"].price == 6.96  # 7.0 × (1 − 0.5 %) = 6.965, down to the stock's 0.01 tick
    broker.fill("1")
    assert broker.book["2"].price == 3.85  # 3.84 × 1.005 = 3.859 capped at the limit-up price


def test_deadline_cancels_working_orders_and_an_unfilled_plan_is_carried():
    broker = Broker(cash=100_000.0, holdings={})
    cycle, _ = make_cycle(broker, OrderPlan("s", "2024-06-28", [A], [1.0]))
    open_session(cycle)
    broker.fill("1", 10_000)  # partly filled
    cycle.retry(QUOTES)  # nothing to resend while the order still works
    assert len(broker.book) == 1
    cycle.deadline()
    assert broker.book["1"].status == CANCELLED and cycle.state.progress.phase == CLOSED
    summary = cycle.close(DAY, {A: 3.6})
    assert summary["unfilled"] == {A: 28_500 - 10_000} and summary["carried"]
    assert cycle.state.plan is not None and cycle.state.progress is None


def test_retry_resends_the_unfilled_rest_then_stops_after_max_rounds():
    broker = Broker(cash=100_000.0, holdings={})
    cycle, _ = make_cycle(broker, OrderPlan("s", "2024-06-28", [A], [1.0]), ExecutionSettings(max_rounds=2))
    open_session(cycle)
    broker.fill("1", 10_000)
    broker.cancel("1")
    cycle.retry(QUOTES)
    assert broker.book["2"].volume == 18_500 and broker.book["2"].reference == "s|2024-07-01|0|1"
    broker.cancel("2")
    cycle.retry(QUOTES)
    assert len(broker.book) == 2


def test_a_filled_plan_is_done_and_a_new_decision_replaces_it():
    broker = Broker(cash=100_000.0, holdings={})
    cycle, _ = make_cycle(broker, OrderPlan("s", "2024-06-28", [A], [1.0]))
    open_session(cycle)
    broker.fill("1")
    cycle.deadline()
    assert cycle.close(DAY, {A: 3.5})["carried"] is False and cycle.state.plan is None
    assert cycle.close(DAY, {A: 3.5}) is None  # a repeated close (after a restart) changes nothing
    cycle.adopt(PLAN)
    assert cycle.state.plan is PLAN


def test_recovery_adopts_orders_the_broker_has_and_resends_those_it_never_got():
    broker = Broker(cash=10_000.0, holdings={C: 10_000})
    cycle, saved = make_cycle(broker, PLAN)
    open_session(cycle)
    broker.fill("1")
    broker.report("2")
    # the process dies: the last state written is what a restart reads; forge an intent that never left
    state = StrategyState.from_json(saved[-1])
    state.progress.orders[-1].state = INTENT
    lost = state.progress.orders[-1].reference
    broker.book.pop("3")  # the broker never received B's order
    broker.sent.remove(lost)
    restarted = Broker(cash=broker.cash(), holdings=broker.holdings())
    restarted.book, restarted.trades = dict(broker.book), list(broker.trades)
    cycle2, _ = make_cycle(restarted, None, state=state)
    notes = cycle2.recover()
    assert len(notes) == 2 and state.progress.orders[-1].state == UNSENT  # A's order adopted, B's unsent
    assert [f.symbol for f in state.progress.fills] == [C]  # C's fill known, not doubled
    cycle2.open(DAY, QUOTES)  # the daemon re-runs the open: the session carries on
    restarted.report("2")
    sent_b = [o for o in restarted.book.values() if o.symbol == B]
    assert len(sent_b) == 1 and sent_b[0].reference != lost  # sent once, under a new reference
    assert [o.symbol for o in restarted.book.values()].count(A) == 1  # A was adopted, not resent


def test_a_symbol_without_a_price_is_not_traded_and_the_plan_is_kept():
    broker = Broker(cash=100_000.0, holdings={})
    cycle, _ = make_cycle(broker, OrderPlan("s", "2024-06-28", [A], [1.0]))
    cycle.open(DAY, {A: Quote(math.nan, previous_close=3.5)})
    assert broker.book == {} and "suspended" in cycle.state.progress.legs[0].cuts
    cycle.deadline()
    assert cycle.close(DAY, {})["carried"]


def test_the_phase_table_refuses_events_that_mean_nothing():
    assert advance("idle", "open") == "selling"
    with pytest.raises(PhaseError):
        advance("idle", "deadline")


SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("now, done, expected", [
    (datetime(2024, 7, 1, 8, 0, tzinfo=SH), None, ("open", date(2024, 7, 1), "09:31")),
    (datetime(2024, 7, 1, 11, 0, tzinfo=SH), None, ("open", date(2024, 7, 1), "09:31")),  # late: run now
    (datetime(2024, 7, 1, 11, 0, tzinfo=SH), (date(2024, 7, 1), 2), ("retry", date(2024, 7, 1), "13:30")),
    (datetime(2024, 7, 1, 16, 0, tzinfo=SH), None, ("close", date(2024, 7, 1), "15:30")),
    (datetime(2024, 7, 1, 16, 0, tzinfo=SH), (date(2024, 7, 1), 5), ("open", date(2024, 7, 2), "09:31")),
    (datetime(2024, 7, 6, 10, 0, tzinfo=SH), None, ("open", date(2024, 7, 8), "09:31")),  # Saturday
    (datetime(2024, 10, 1, 2, 0, tzinfo=ZoneInfo("UTC")), None, ("open", date(2024, 10, 8), "09:31")),  # National Day
])
def test_live_schedule(now, done, expected):
    due = next_phase(now, default_calendar(), SessionTimes(), done)
    assert (due.phase, due.day, due.at.strftime("%H:%M")) == expected


def test_execution_settings_are_validated():
    with pytest.raises(ValueError):
        ExecutionSettings(BacktestConfig(), tolerance_bps=-1)


def test_orders_are_matched_by_reference_then_id_then_signature():
    """vnpy_xt echoes no reference after an order's first update: a restart falls back to the id we
    recorded, and for an order whose id we never learnt, to its symbol, side, volume and price."""
    from vnpy_rotation.live.cycle import match_orders
    from vnpy_rotation.live.plan import OrderRecord

    records = [OrderRecord("s|d|0|0", A, True, 100, 3.5, 3.5, 0, order_id="XT.1"),
               OrderRecord("s|d|1|0", B, True, 200, 5.0, 5.0, 1),  # killed before its id was saved
               OrderRecord("s|d|2|0", C, False, 300, 7.0, 7.0, 2),  # never sent
               OrderRecord("s|d|3|0", A, False, 100, 3.5, 3.5, 3, order_id="R.9")]
    broker = [BrokerOrder("XT.1", "", A, True, 100, 3.5, 100, FILLED),
              BrokerOrder("XT.2", "", B, True, 200, 5.0, 0, ACTIVE),
              BrokerOrder("XT.3", "", B, True, 200, 5.0, 0, ACTIVE),  # same signature, one claim only
              BrokerOrder("R.9", "s|d|3|0", A, False, 100, 3.5, 0, ACTIVE)]
    matched = match_orders(records, broker)
    assert {k: v.order_id for k, v in matched.items()} == {"s|d|0|0": "XT.1", "s|d|1|0": "XT.2", "s|d|3|0": "R.9"}
