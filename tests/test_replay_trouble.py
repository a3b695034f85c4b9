"""Trouble injected through the replay book and gateway: extra slippage, rejections, partial fills, on
hand-written bars with prices and fees computed by hand; no trouble leaves the book exactly as it was."""

from __future__ import annotations

import json

import live_harness
import pandas as pd
import pytest
from live_harness import BookBroker, live_run, rows
from pydantic import ValidationError
from scenario_market import AUG, ETF, STOCK, flat, make_panels, money, plan
from vnpy.event import EventEngine
from vnpy.trader.constant import Direction, Exchange, Offset, OrderType, Status
from vnpy.trader.object import OrderRequest

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.gateways.replay import ReplayGateway
from vnpy_rotation.live.ports import ACTIVE, CANCELLED, FILLED, REJECTED
from vnpy_rotation.live.replay_book import ReplayBook
from vnpy_rotation.live.trouble import SETTING, Trouble, read_trouble, trouble_from_setting

CAPITAL = 100_000.0
DAYS = AUG[:5]  # 2023-08-21 … 08-25: stamp duty 0.1 % on stock sells, transfer fee 0.001 % on stocks
# ETF 4.000 (tick 0.001), stock 10.00 (tick 0.01), every day; plenty of volume
BARS = {ETF: [flat(4.0)] * 5, STOCK: [flat(10.0)] * 5}


@pytest.fixture(scope="module")
def market():
    return build_market_data(make_panels(DAYS, BARS))


def book_on(market, trouble: Trouble | None, day: str = "2023-08-22", path=None, stock: float = 0.0) -> ReplayBook:
    book = ReplayBook(BacktestConfig(capital=CAPITAL), path, trouble)
    book.market = market
    if stock and not book.state.positions:
        book.state.positions[STOCK] = stock  # held since before the span (not locked by T+1)
    book.begin_day(pd.Timestamp(day))
    return book


# ---------------------------------------------------------------------------------------------------
# Extra slippage: price and fees by hand
# ---------------------------------------------------------------------------------------------------

# (symbol, buy, volume, limit, extra bps, expected price, value, commission, stamp, transfer, held after)
SLIPPAGE = [
    # buy 1 000 ETF at 4.000 + 50 bp = 4.020 (on the 0.001 tick): 4 020.00; commission 0.025 % = 1.005 → 1.01;
    # an ETF pays no stamp duty or transfer fee
    (ETF, True, 1000, 4.100, 50.0, 4.020, 4020.00, 1.01, 0.0, 0.0, 1000.0),
    # sell 1 000 shares of stock at 10.00 − 50 bp = 9.95: 9 950.00; commission 2.4875 → the 5.00 minimum;
    # stamp duty 0.1 % (before 2023-08-28) = 9.95; transfer 0.001 % = 0.0995 → 0.10
    (STOCK, False, 1000, 9.50, 50.0, 9.95, 9950.00, 5.00, 9.95, 0.10, 0.0),
    # buy 1 000 stock at 10.00 + 12 bp = 10.012 → up to the 0.01 tick: 10.02; 10 020.00; commission 5.00 minimum;
    # transfer 0.1002 → 0.10
    (STOCK, True, 1000, 10.50, 12.0, 10.02, 10020.00, 5.00, 0.0, 0.10, 2000.0),
]


@pytest.mark.parametrize("symbol,buy,volume,limit,bps,price,value,commission,stamp,transfer,held", SLIPPAGE)
def test_extra_slippage_prices_the_fill_worse_and_charges_fees_on_its_value(
        market, symbol, buy, volume, limit, bps, price, value, commission, stamp, transfer, held):
    book = book_on(market, Trouble(extra_slippage_bps=bps), stock=1000.0)
    cash = book.state.cash
    order, trade = book.submit(symbol, buy, volume, limit, "r")
    assert (order.status, order.traded) == (FILLED, volume)
    assert (trade.price, trade.volume) == (pytest.approx(price, abs=1e-9), volume)
    cost = commission + stamp + transfer
    assert book.state.cash == money(cash + (-value if buy else value) - cost)
    assert book.state.positions[symbol] == held


def test_a_slipped_price_beyond_the_limit_leaves_the_order_resting_unfilled_until_cancelled(market):
    # 4.000 + 50 bp = 4.020 is above the 4.010 limit: no fill; without trouble it fills at 4.000
    book = book_on(market, Trouble(extra_slippage_bps=50.0))
    cash = book.state.cash
    order, trade = book.submit(ETF, True, 1000, 4.010, "r")
    assert (order.status, order.traded, trade) == (ACTIVE, 0.0, None)
    assert book.state.cash == cash and not book.state.positions.get(ETF)
    assert book.cancel(order.order_id).status == CANCELLED
    assert book.order(order.order_id).status == CANCELLED
    plain = book_on(market, None)
    assert plain.submit(ETF, True, 1000, 4.010, "r")[0].status == FILLED


# ---------------------------------------------------------------------------------------------------
# Rejections, partial fills, the symbols and the window
# ---------------------------------------------------------------------------------------------------


def test_every_second_order_is_rejected(market):
    book = book_on(market, Trouble(reject_every=2))
    results = [book.submit(ETF, True, 100, 4.1, f"r{k}") for k in range(1, 6)]
    assert [o.status for o, _ in results] == [FILLED, REJECTED, FILLED, REJECTED, FILLED]
    assert [t is None for _, t in results] == [False, True, False, True, False]
    assert book.state.positions[ETF] == 300.0
    assert book.state.orders["2"]["reasons"] == ["trouble_reject"]


@pytest.mark.parametrize("buy,volume,filled", [
    (True, 1000, 500),  # half of 1 000
    (True, 300, 100),  # 150 rounded down to the 100-share lot
    (False, 1000, 500),
    (True, 100, 0),  # 50 is less than a lot: nothing fills, it all rests
])
def test_fill_ratio_fills_a_share_in_whole_lots_and_leaves_the_rest_working(market, buy, volume, filled):
    book = book_on(market, Trouble(fill_ratio=0.5), stock=1000.0)
    symbol = ETF if buy else STOCK
    order, trade = book.submit(symbol, buy, volume, 4.1 if buy else 9.0, "r")
    assert (order.status, order.traded) == (ACTIVE, filled)
    assert (trade.volume if trade else 0.0) == filled
    cancelled = book.cancel(order.order_id)
    assert (cancelled.status, cancelled.traded) == (CANCELLED, filled)
    held = book.state.positions.get(symbol, 0.0)
    assert held == (filled if buy else 1000.0 - filled)


def test_working_orders_expire_at_the_next_session(market):
    book = book_on(market, Trouble(fill_ratio=0.5))
    order, _ = book.submit(ETF, True, 1000, 4.1, "r")
    assert book.begin_day(pd.Timestamp("2023-08-23")) == [book.order(order.order_id)]
    assert (book.order(order.order_id).status, book.order(order.order_id).traded) == (CANCELLED, 500.0)


def test_symbols_limit_the_trouble(market):
    book = book_on(market, Trouble(extra_slippage_bps=50.0, reject_every=1, symbols=(STOCK,)), stock=1000.0)
    etf, etf_trade = book.submit(ETF, True, 1000, 4.1, "a")
    stock, _ = book.submit(STOCK, False, 100, 9.0, "b")
    assert (etf.status, etf_trade.price, stock.status) == (FILLED, 4.0, REJECTED)
    assert book.state.trouble_orders == 1  # only the covered order counts


def test_the_window_bounds_the_trouble_and_the_count_starts_at_its_start(market):
    trouble = Trouble(start="2023-08-23", end="2023-08-24", reject_every=2)
    book = book_on(market, trouble, day="2023-08-21")
    statuses = []
    for day in ("2023-08-21", "2023-08-22", "2023-08-23", "2023-08-24", "2023-08-25"):
        book.begin_day(pd.Timestamp(day))
        statuses += [book.submit(ETF, True, 100, 4.1, day)[0].status for _ in range(3)]
    assert statuses == [FILLED] * 6 + [FILLED, REJECTED, FILLED] + [REJECTED, FILLED, REJECTED] + [FILLED] * 3


def test_a_restarted_book_keeps_the_count_and_rejects_the_same_orders(market, tmp_path):
    path = tmp_path / "replay_book.json"
    trouble = Trouble(reject_every=3)
    book = book_on(market, trouble, path=path)
    first = [book.submit(ETF, True, 100, 4.1, f"r{k}")[0].status for k in range(2)]
    resumed = book_on(market, trouble, path=path)  # the process was killed and started again
    later = [resumed.submit(ETF, True, 100, 4.1, f"r{k}")[0].status for k in range(2, 6)]
    assert first + later == [FILLED, FILLED, REJECTED, FILLED, FILLED, REJECTED]
    assert json.loads(path.read_text())["trouble_orders"] == 6


# ---------------------------------------------------------------------------------------------------
# No trouble: the book as before
# ---------------------------------------------------------------------------------------------------


def orders_and_trades(market, trouble: Trouble | None):
    book = book_on(market, trouble, stock=1000.0)
    for symbol, buy, volume, limit in ((STOCK, False, 1000, 9.5), (ETF, True, 2000, 4.1), (ETF, True, 100, 3.9),
                                       (STOCK, True, 10_000, 10.5), (ETF, False, 500, 3.9)):
        book.submit(symbol, buy, volume, limit, "r")
    return book.state.orders, book.state.trades, book.state.positions, book.state.cash


@pytest.mark.parametrize("trouble", [Trouble(), Trouble(reject_every=1, extra_slippage_bps=50, symbols=("X.SSE",)),
                                     Trouble(fill_ratio=0.5, start="2023-08-23")])
def test_trouble_that_covers_nothing_or_does_nothing_changes_nothing(market, trouble):
    assert orders_and_trades(market, trouble) == orders_and_trades(market, None)


# ---------------------------------------------------------------------------------------------------
# Bad configuration
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,field", [
    ('{"fill_ratio": 0}', "fill_ratio"),
    ('{"fill_ratio": 1.5}', "fill_ratio"),
    ('{"extra_slippage_bps": -5}', "extra_slippage_bps"),
    ('{"reject_every": -1}', "reject_every"),
    ('{"reject_every": 1.5}', "reject_every"),
    ('{"start": "2023-13-01"}', "start"),
    ('{"slippage": 5}', "slippage"),
])
def test_a_bad_setting_names_the_setting_and_the_field(text, field):
    with pytest.raises(InputRejected) as caught:
        trouble_from_setting(text)
    assert [str(p).split(":")[:2] for p in caught.value.problems] == [[SETTING, f" {field}"]]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"start": "2023-08-24", "end": "2023-08-23"}'])
def test_a_malformed_setting_names_the_setting(text):
    with pytest.raises(InputRejected) as caught:
        trouble_from_setting(text)
    assert [p.source for p in caught.value.problems] == [SETTING]


def test_an_empty_setting_is_no_trouble_and_a_file_reads_as_the_setting(tmp_path):
    assert trouble_from_setting("") is None and trouble_from_setting(None) is None
    path = tmp_path / "trouble.yaml"
    path.write_text("start: 2023-08-23\nreject_every: 2\nfill_ratio: 0.5\nsymbols: [510300.SSE]\n")
    assert read_trouble(path) == trouble_from_setting(
        '{"start": "2023-08-23", "reject_every": 2, "fill_ratio": 0.5, "symbols": ["510300.SSE"]}')
    path.write_text("fill_ratio: 2\n")
    with pytest.raises(InputRejected) as caught:
        read_trouble(path)
    assert caught.value.problems[0].source == str(path) and caught.value.problems[0].reason.startswith("fill_ratio")


def test_trouble_is_frozen():
    with pytest.raises(ValidationError):
        Trouble().fill_ratio = 0.5  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------
# Through the vnpy gateway: the setting, the attribute, vnpy's order states and cancels
# ---------------------------------------------------------------------------------------------------


class Recorder:
    """The replay gateway with its order and trade pushes recorded (no event engine running)."""

    def __init__(self, market, setting: dict, trouble: Trouble | None = None) -> None:
        self.gateway = ReplayGateway(EventEngine(), "REPLAY")
        self.gateway.config = BacktestConfig(capital=CAPITAL)
        self.gateway.trouble = trouble
        self.orders, self.trades = [], []
        self.gateway.on_order = self.orders.append
        self.gateway.on_trade = self.trades.append
        self.gateway.connect({"初始资金": CAPITAL, **setting})
        self.gateway.book.market = market
        self.gateway.book.begin_day(pd.Timestamp("2023-08-22"))

    def send(self, volume: float, price: float = 4.1) -> str:
        return self.gateway.send_order(OrderRequest(symbol="510300", exchange=Exchange.SSE, direction=Direction.LONG,
                                                    type=OrderType.LIMIT, volume=volume, price=price,
                                                    offset=Offset.NONE, reference="r"))


def test_the_setting_rejects_every_second_order_as_vnpy_rejected(market):
    replay = Recorder(market, {SETTING: '{"reject_every": 2}'})
    for _ in range(4):
        replay.send(100)
    assert [o.status for o in replay.orders] == [Status.ALLTRADED, Status.REJECTED] * 2
    assert [o.orderid for o in replay.orders if o.status == Status.REJECTED] == ["2", "4"]


def test_a_partial_fill_works_in_vnpy_until_cancelled(market):
    replay = Recorder(market, {}, trouble=Trouble(fill_ratio=0.5))  # the attribute a drill sets
    vt_orderid = replay.send(1000)
    assert [(t.volume, t.price) for t in replay.trades] == [(500.0, 4.0)]
    order = replay.orders[-1]
    assert (order.status, order.traded, order.is_active()) == (Status.PARTTRADED, 500.0, True)
    replay.gateway.cancel_order(order.create_cancel_request())
    assert (replay.orders[-1].vt_orderid, replay.orders[-1].status, replay.orders[-1].traded) == (
        vt_orderid, Status.CANCELLED, 500.0)


def test_a_bad_setting_refuses_the_connection_naming_the_field(market):
    with pytest.raises(InputRejected) as caught:
        Recorder(market, {SETTING: '{"fill_ratio": 0}'})
    assert str(caught.value).startswith(f"{SETTING}: fill_ratio")


def test_the_setting_wins_over_the_attribute(market):
    replay = Recorder(market, {SETTING: '{"reject_every": 1}'}, trouble=Trouble(fill_ratio=0.5))
    assert replay.gateway.book.trouble == Trouble(reject_every=1)


# ---------------------------------------------------------------------------------------------------
# The live cycle measures it (the session steps of the rotation engine over the troubled book)
# ---------------------------------------------------------------------------------------------------


class CancellingBroker(BookBroker):
    """The harness broker whose cancels reach the book (trouble leaves orders working there)."""

    def cancel(self, order_id: str) -> None:
        order = self.book.cancel(order_id)
        if order is not None:
            self.events.append(order)


def cycle_run(monkeypatch, trouble: Trouble | None) -> tuple[list[tuple], list[str]]:
    """The live trades and the book's final order states."""
    md = build_market_data(make_panels(AUG[:6], {ETF: [flat(4.0)] * 6, STOCK: [flat(10.0)] * 6}))
    books: list[ReplayBook] = []

    def troubled_book(config: BacktestConfig) -> ReplayBook:
        books.append(ReplayBook(config, trouble=trouble))
        return books[-1]

    monkeypatch.setattr(live_harness, "ReplayBook", troubled_book)
    monkeypatch.setattr(live_harness, "BookBroker", CancellingBroker)
    targets = plan({"2023-08-21": {ETF: 1000, STOCK: 1000}}, md.symbols)  # bought at the 08-22 open
    trades = rows(live_run(md, targets, BacktestConfig(capital=CAPITAL), roundtrip=True).trades)
    return trades, [o["status"] for o in books[0].state.orders.values()]


def day_fills(day: str, etf: float, stock: float, etf_price: float = 4.0, stock_price: float = 10.0) -> list[tuple]:
    return [(day, ETF, True, etf, etf_price), (day, STOCK, True, stock, stock_price)]


@pytest.mark.parametrize("trouble,expected,states", [
    (None, day_fills("2023-08-22", 1000, 1000), [FILLED, FILLED]),
    # half of each order fills, the rest is cancelled at the deadline and the plan carries it to the next
    # session: 500, then half of 500 in lots (200), half of 300 (100), half of 200 (100); half of the last
    # 100 is less than a lot, so on 08-28 nothing fills
    (Trouble(fill_ratio=0.5), day_fills("2023-08-22", 500, 500) + day_fills("2023-08-23", 200, 200)
     + day_fills("2023-08-24", 100, 100) + day_fills("2023-08-25", 100, 100), [CANCELLED] * 10),
    # the second order (the stock) is rejected; the session's retry round sends it again (the third order)
    (Trouble(reject_every=2), day_fills("2023-08-22", 1000, 1000), [FILLED, REJECTED, FILLED]),
    # the replay sends its limits at the expected price (no tolerance): every slipped price is beyond it,
    # so nothing fills while the trouble lasts (the fill rate measures it, not the slippage)
    (Trouble(extra_slippage_bps=50, end="2023-08-23"), day_fills("2023-08-24", 1000, 1000),
     [CANCELLED] * 4 + [FILLED] * 2),
])
def test_the_cycle_meets_the_trouble(monkeypatch, trouble, expected, states):
    assert cycle_run(monkeypatch, trouble) == (expected, states)
