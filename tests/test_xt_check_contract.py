"""The contracts vnpy_xt's gateway publishes, checked against the instrument table.

* ``check_contract``: a scenario table (agree, name differs, tick differs, a stock code the table calls an
  ETF, vnpy_xt's uninformative INDEX, an unknown code);
* through vnpy_xt's real ``XtGateway`` over the fake xtquant: a traded symbol whose XT name and tick
  contradict the table is recorded in ``RotationEngine.contract_mismatches``, whether the contracts arrive
  before or after the strategy is initialised; an untraded code with a wrong name is not checked.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from fakes import fake_xttrader
from fakes.fake_xttrader import wait_until
from fakes.xt_harness import live_stack

from vnpy_rotation.market.instruments import InstrumentKind as K
from vnpy_rotation.market.instruments import lookup
from vnpy_rotation.market.xt_check import XtMismatch, check_contract

fake_xt_trading = fake_xttrader.fake_xt_trading  # the fixture, visible to this module's tests

TIMEOUT = 5.0


def _etf_on_stock_code():
    """600000.SSE as a user file might misclassify it: an equity ETF."""
    return replace(lookup("510300.SSE"), code="600000", name="浦发银行")


# instrument (a thunk: the registry is read when the test runs), contract name, product, tick, expected
CASES = {
    "agree": (lambda: lookup("510300.SSE"), "沪深300ETF", "Fund", 0.001, []),
    "agree, XT adds the manager": (lambda: lookup("159901.SZSE"), "深证100ETF易方达", "Fund", 0.001, []),
    "agree, stock": (lambda: lookup("600519.SSE"), "贵州茅台", "Stock", 0.01, []),
    "name differs": (lambda: lookup("510500.SSE"), "中证1000ETF", "Fund", 0.001,
                     [XtMismatch("510500.SSE", "name", "中证500ETF", "中证1000ETF")]),
    "tick differs": (lambda: lookup("510300.SSE"), "沪深300ETF", "Fund", 0.01,
                     [XtMismatch("510300.SSE", "tick", "0.001", "0.01")]),
    "stock code the table calls an ETF": (_etf_on_stock_code, "浦发银行", "Stock", 0.001,
                                          [XtMismatch("600000.SSE", "type", "equity_etf", "stock")]),
    "fund code the table calls a stock": (lambda: replace(lookup("600519.SSE"), code="510300"), "", "ETF", 0.01,
                                          [XtMismatch("510300.SSE", "type", "main_board_stock", "fund")]),
    # vnpy_xt labels ChiNext stocks and 56/58xxxx ETFs INDEX by their code: no type to compare.
    "INDEX from vnpy_xt is no type": (lambda: lookup("588000.SSE"), "", "Index", 0.001, []),
    "unknown code": (lambda: None, "某某ETF", "Fund", 0.01, []),
}


@pytest.mark.parametrize("instrument,name,product,tick,expected", CASES.values(), ids=CASES.keys())
def test_check_contract(instrument, name, product, tick, expected):
    assert check_contract(instrument(), name, product, tick) == expected


def test_the_stock_fixture_is_what_the_table_says():
    """The scenario above relies on the table's kinds; a changed table must not make it vacuous."""
    assert (lookup("600000.SSE").kind, _etf_on_stock_code().kind) == (K.MAIN_BOARD_STOCK, K.EQUITY_ETF)


# --------------------------------------------------------------------------------------------------
# through vnpy_xt's gateway and the rotation engine
# --------------------------------------------------------------------------------------------------
A, B = "510300.SSE", "510500.SSE"
NAME = "xt_check"


@pytest.fixture
def stack(fake_xt_trading, monkeypatch, tmp_path):
    """The live stack on vnpy_xt over the fake; 510500's XT name and tick contradict the table, and so does
    600000's name (not traded)."""
    import vnpy_xt

    market = fake_xt_trading.market
    market.add_instrument("510300.SH", "沪深300ETF", sector="沪深ETF", pre_close=4.0)
    market.add_instrument("510500.SH", "中证1000ETF", sector="沪深ETF", pre_close=6.0, price_tick=0.01)
    market.add_instrument("600000.SH", "招商银行", sector="沪深A股", pre_close=10.0)
    monkeypatch.setattr(sys.modules["vnpy_xt.xt_gateway"].XtMdApi, "lock_filepath", tmp_path / "xt_lock")
    with live_stack(vnpy_xt.XtGateway, tmp_path / "state") as built:
        yield built


def _connect(stack, broker) -> None:
    stack.main_engine.connect(broker.gateway_setting(), "XT")
    stack.gateway.thread.join(TIMEOUT)
    wait_until(lambda: stack.main_engine.get_contract(B), "the contracts")
    broker.wait_delivered()
    stack.drain()


def _init(stack) -> None:
    stack.engine.add_strategy(NAME, "EqualWeightStrategy", {"symbols": [A, B]}, gateway="XT")
    stack.engine.init_strategy(NAME)
    stack.drain()
    assert stack.engine.instances[NAME].inited, stack.engine.instances[NAME].error


@pytest.mark.parametrize("connect_first", [True, False], ids=["contracts-before-init", "contracts-after-init"])
def test_a_traded_symbol_contradicting_the_table_is_recorded(stack, fake_xt_trading, connect_first):
    from vnpy.event import Event
    from vnpy.trader.event import EVENT_CONTRACT

    from vnpy_rotation.apps.rotation.engine import EVENT_ROTATION_LOG

    if connect_first:
        _connect(stack, fake_xt_trading)
        _init(stack)
    else:
        _init(stack)
        _connect(stack, fake_xt_trading)

    assert stack.engine.contract_mismatches == {
        B: [XtMismatch(B, "name", "中证500ETF", "中证1000ETF"), XtMismatch(B, "tick", "0.001", "0.01")]}

    # the same contract again (a reconnect republishes them) adds no second warning
    logs: list[str] = []
    stack.event_engine.register(EVENT_ROTATION_LOG, lambda event: logs.append(event.data))
    stack.event_engine.put(Event(EVENT_CONTRACT, stack.main_engine.get_contract(B)))
    stack.drain()
    assert logs == [] and list(stack.engine.contract_mismatches) == [B]
