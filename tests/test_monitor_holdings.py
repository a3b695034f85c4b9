"""The monitor app guards the rotation app's holdings: shares and entry from each instance's persisted risk
book, the stop level from the strategy's own single-stock stop (entry × (1 − stop)), followed on position
events; crossing it alerts once. Driven through vnpy_xt's XtGateway on the fake xtquant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fakes.xt_harness import settle
from test_monitor_app import alerts_of, at, fake_xt_trading, mon, tick, xt  # noqa: F401  (fixtures)

from vnpy_rotation.live.plan import StrategyState
from vnpy_rotation.live.risk_stage import RiskBook
from vnpy_rotation.live.state_file import write_atomic
from vnpy_rotation.risk.stops import RiskRules, stock_stop_level


def write_state(folder, symbols, entry, held, stock_stop=0.08):
    book = RiskBook.create(symbols, RiskRules(stock_stop=stock_stop), _risk_config())
    book.entry = np.array(entry, dtype=float)
    book.held_close = np.array(held, dtype=float)
    write_atomic(folder / "etf.json", StrategyState(risk=book).to_json())


def _risk_config():
    from vnpy_rotation.risk.config import RiskConfig

    return RiskConfig()


def position(vt_symbol: str, volume: float, price: float):
    from vnpy.trader.constant import Direction, Exchange
    from vnpy.trader.object import PositionData

    code, _, exchange = vt_symbol.partition(".")
    return PositionData(gateway_name="XT", symbol=code, exchange=Exchange(exchange), direction=Direction.NET,
                        volume=volume, price=price)


def test_stop_level_is_the_after_close_rules_threshold():
    assert stock_stop_level(10.0, 0.08) == pytest.approx(9.2)
    assert math.isnan(stock_stop_level(10.0, math.nan)) and math.isnan(stock_stop_level(math.nan, 0.08))


def test_a_holding_crossing_its_stop_alerts_once_and_positions_follow(mon, tmp_path):
    from fakes.xt_harness import connect
    from vnpy.event import Event
    from vnpy.trader.event import EVENT_POSITION

    from vnpy_rotation.monitor import Reference
    from vnpy_rotation.monitor.view import MonitorView  # noqa: F401

    write_state(tmp_path, ["600000.SSE", "000001.SZSE"], [10.0, math.nan], [1000, 0])
    mon.engine.state_folder = tmp_path
    connect(mon)
    symbols = ("600000.SSE", "000001.SZSE")
    mon.engine.start(symbols, "XT", references=[Reference(s, avg_volume_5d=1e6) for s in symbols])  # holdings: rotation
    assert [(h.vt_symbol, h.volume, round(h.stop, 6)) for h in mon.engine.rotation_holdings()] == \
        [("600000.SSE", 1000.0, 9.2)]

    tick(mon, "600000.SH", "10:00:00", 9.5, lots=10, amount=9500)
    tick(mon, "600000.SH", "10:00:03", 9.2, lots=20, amount=18700)  # at entry × (1 − 8 %): crossed
    tick(mon, "600000.SH", "10:00:06", 9.1, lots=30, amount=27800)  # still below: no repeat
    assert [r for _, r in alerts_of(mon, "600000.SSE") if r == "stop_crossed"] == ["stop_crossed"]
    assert ("10:00:03", "stop_crossed") in alerts_of(mon, "600000.SSE")

    # bought today (the book has no entry yet): the broker's average cost is the entry
    mon.main_engine.event_engine.put(Event(EVENT_POSITION, position("000001.SZSE", 500, 12.0)))
    settle(mon)
    tick(mon, "000001.SZ", "10:01:00", 11.1, lots=10, amount=11100)  # 12 × 0.92 = 11.04: not crossed
    tick(mon, "000001.SZ", "10:01:03", 11.0, lots=20, amount=22100)
    assert [t for t, r in alerts_of(mon, "000001.SZSE") if r == "stop_crossed"] == ["10:01:03"]

    # sold out: no longer guarded
    mon.main_engine.event_engine.put(Event(EVENT_POSITION, position("600000.SSE", 0, 0.0)))
    settle(mon)
    assert [h.vt_symbol for h in mon.engine.rotation_holdings()] == ["000001.SZSE"]


def test_explicit_holdings_are_not_replaced_by_position_events(mon, tmp_path):
    from fakes.xt_harness import connect
    from vnpy.event import Event
    from vnpy.trader.event import EVENT_POSITION

    from vnpy_rotation.monitor import Holding

    write_state(tmp_path, ["600000.SSE"], [10.0], [1000])
    mon.engine.state_folder = tmp_path
    connect(mon)
    mon.engine.start(["600000.SSE"], "XT", references=[], holdings=[Holding("600000.SSE", 100, 5.0)])
    mon.main_engine.event_engine.put(Event(EVENT_POSITION, position("600000.SSE", 1000, 10.0)))
    settle(mon)
    tick(mon, "600000.SH", "10:00:00", 9.0, lots=10, amount=9000)
    assert "stop_crossed" not in [r for _, r in alerts_of(mon, "600000.SSE")]


def test_other_files_in_the_state_folder_are_not_strategies(tmp_path):
    from vnpy_rotation.apps.monitor.holdings import holdings_from, rotation_books
    from vnpy_rotation.live.state_file import write_atomic as write

    write_state(tmp_path, ["600000.SSE"], [10.0], [1000])
    write(tmp_path / "risk_state.json", {"version": 1, "history": [], "strategies": {}})  # the risk app's
    books = rotation_books(object(), tmp_path)
    assert [(h.vt_symbol, h.volume) for h in holdings_from(books)] == [("600000.SSE", 1000.0)]
