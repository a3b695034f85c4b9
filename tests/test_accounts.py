"""Several accounts in one MainEngine: strategies bound to accounts, capital allocated by the risk engine's
record (reviewed on its schedule, persisted), buys capped by it, reconciliation per account, and the batch
operations (cancel a strategy's or an account's orders, flatten a strategy) through the crash-safe cycle.

Two replay accounts (REPLAY_A, REPLAY_B), three equal-weight strategies on one ETF each, rebalanced daily:
s1 (510300) and s2 (510500) share REPLAY_A, s3 (159915) trades REPLAY_B.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import pandas as pd
import pytest
from conftest import fresh_bundled_store
from fakes import xt_accounts
from fakes.fake_xttrader import wait_until
from vnpy.trader.constant import Direction

from vnpy_rotation.allocation import allocation_config
from vnpy_rotation.apps.risk.state_file import RiskStateFile
from vnpy_rotation.apps.rotation.daemon import Stack
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.gateways.replay import ReplayGateway

START, END = "2024-06-24", "2024-07-05"  # two weeks: Mondays 06-24 and 07-01
CAPITAL = 1_000_000.0
SYMBOLS = {"s1": "510300.SSE", "s2": "510500.SSE", "s3": "159915.SZSE"}
ACCOUNT_OF = {"s1": "REPLAY_A", "s2": "REPLAY_A", "s3": "REPLAY_B"}
ALLOCATION = {
    "accounts": [{"id": "a", "gateway": "REPLAY_A", "kind": "replay"},
                 {"id": "b", "gateway": "REPLAY_B", "kind": "replay"}],
    "strategies": [{"name": "s1", "account": "a"}, {"name": "s2", "account": "a"},
                   {"name": "s3", "account": "b", "cap": 0.4}],
    "rule": "risk_parity", "lookback": 2, "reserve": 0.05, "min_change": 0.0,
    "schedule": {"every": "weekly", "day": 1},
}


def build(tmp_path, allocation=ALLOCATION, trouble_b: str = "") -> Stack:
    config = allocation_config(allocation, "test") if allocation is not None else None
    stack = Stack(ReplayGateway, tmp_path / "state", notifications=False, accounts=("REPLAY_A", "REPLAY_B"),
                  allocation=config)
    for name in stack.gateways:
        setting = {"初始资金": CAPITAL, "开始日期": START, "结束日期": END, "账本文件": ""}
        if name == "REPLAY_B" and trouble_b:
            setting["故障注入"] = trouble_b
        stack.main_engine.connect(setting, name)
    stack.drain()
    stack.size_risk_rules(CAPITAL, lambda _: None)
    for name, symbol in SYMBOLS.items():
        if name not in stack.engine.instances:
            stack.engine.add_strategy(name, "EqualWeightStrategy", {"symbols": [symbol], "rebalance": "daily"},
                                      gateway=ACCOUNT_OF[name], history_start=START)
        stack.engine.init_strategy(name)
        stack.engine.start_strategy(name)
    stack.drain()
    return stack


def sessions(stack) -> list[pd.Timestamp]:
    days = stack.gateways["REPLAY_A"].sessions()
    assert days == stack.gateways["REPLAY_B"].sessions()
    return days


def buys_by_day(stack) -> dict[tuple[str, str], list]:
    """(strategy, day) -> its orders (the vnpy orders, whose reference is ``strategy|day|leg|n``)."""
    out: dict[tuple[str, str], list] = {}
    for order in stack.main_engine.get_all_orders():
        strategy, day = order.reference.split("|")[:2]
        out.setdefault((strategy, day), []).append(order)
    return out


@pytest.fixture(scope="module")
def store(runtime_home):
    """The bundled bars, imported once for the module (its tests only read them)."""
    return fresh_bundled_store()


def test_two_accounts_three_strategies_allocated_capped_and_reconciled(store, tmp_path):
    stack = build(tmp_path)
    records: dict[str, dict] = {}  # session -> the allocation in force after its close
    holdings: dict[str, dict[str, float]] = {}  # session -> every strategy's shares at its close
    try:
        days = sessions(stack)
        for day in days:
            stack.engine.clock.replay_session(list(stack.gateways.values()), day)
            for instance in stack.engine.instances.values():
                assert instance.trading, instance.error
            records[day.date().isoformat()] = stack.risk.allocation().to_json()
            holdings[day.date().isoformat()] = {n: i.cycle.broker.holdings().get(SYMBOLS[n], 0.0)
                                                for n, i in stack.engine.instances.items()}
        orders = buys_by_day(stack)

        # each account holds exactly its own strategies' symbols, and per account the books agree
        a = {p.vt_symbol for p in stack.main_engine.get_all_positions() if p.gateway_name == "REPLAY_A" and p.volume}
        b = {p.vt_symbol for p in stack.main_engine.get_all_positions() if p.gateway_name == "REPLAY_B" and p.volume}
        assert a == {"510300.SSE", "510500.SSE"} and b == {"159915.SZSE"}
        assert stack.engine.reconcile_accounts() == {"REPLAY_A": [], "REPLAY_B": []}

        # a position nobody's strategy holds shows in its own account's reconciliation only
        gateway_b = stack.gateways["REPLAY_B"]
        gateway_b.book.state.positions["511010.SSE"] = 300.0
        gateway_b.query_position()
        stack.drain()
        assert stack.engine.reconcile_accounts() == {
            "REPLAY_A": [], "REPLAY_B": [{"symbol": "511010.SSE", "expected": 0.0, "broker": 300.0}]}
    finally:
        stack.close()

    # the allocation was decided at the first close and re-decided on the next Monday only (weekly, day 1)
    stored = json.loads((tmp_path / "state" / "risk_state.json").read_text(encoding="utf-8"))
    assert [x["at"] for x in stored["allocations"]] == ["2024-06-24T15:00:00", "2024-07-01T15:00:00"]
    assert stored["allocations"][-1]["reason"].startswith("scheduled (weekly)")
    names = [d.date().isoformat() for d in days]
    for day in names:
        expected = stored["allocations"][0] if day < "2024-07-01" else stored["allocations"][1]
        assert records[day]["lines"] == expected["lines"], day
    first = {x["strategy"]: x for x in stored["allocations"][0]["lines"]}
    second = {x["strategy"]: x for x in stored["allocations"][1]["lines"]}
    # no returns at the first close: equal shares of 95 % in account a; s3 at its cap of 40 % in account b
    assert first["s1"]["amount"] == first["s2"]["amount"] == math.floor(CAPITAL * 0.475 * 100) / 100
    assert first["s3"]["amount"] == CAPITAL * 0.4
    assert second["s1"]["amount"] != first["s1"]["amount"]  # the re-allocation moved the shares

    # every session's buys: the strategy's book after them stays within the allocation decided the close
    # before, and a cut buy is the largest whole-lot volume that fits (the cap, not the target, decided it)
    cut = 0
    for k, day in enumerate(names[1:], start=1):
        amounts = {x["strategy"]: x["amount"] for x in records[names[k - 1]]["lines"]}
        for name in SYMBOLS:
            for order in orders.get((name, day), []):
                if order.direction != Direction.LONG:
                    continue
                held_before = holdings[names[k - 1]][name]
                room = amounts[name] - held_before * order.price
                assert order.volume * order.price <= room + 1e-6, (name, day)
                if (order.volume + 100) * order.price <= room:
                    continue  # not cut: the target asked for less
                cut += 1
                assert order.volume == math.floor(room / order.price / 100) * 100, (name, day)
    assert cut >= 3  # the first day's three buys at least: each strategy wants 99 % of its account

    # s1's and s2's first buys: each capped at its own allocation from the one account's shared cash
    s1, s2 = orders[("s1", names[1])][0], orders[("s2", names[1])][0]
    assert s1.volume == math.floor(first["s1"]["amount"] / s1.price / 100) * 100
    assert s2.volume == math.floor(first["s2"]["amount"] / s2.price / 100) * 100

    # the record survives a restart: a new risk state on the same folder holds the same allocation
    assert RiskStateFile(tmp_path / "state").allocation_decision().to_json() == stored["allocation"]


def test_without_allocation_nothing_is_capped(store, tmp_path):
    """No ``allocation:``: one strategy per account trades its whole account, as before."""
    allocation = None
    stack = build(tmp_path, allocation)
    try:
        days = sessions(stack)[:2]
        for day in days:
            stack.engine.clock.replay_session(list(stack.gateways.values()), day)
        assert stack.risk.allocation() is None
        s3 = buys_by_day(stack)[("s3", days[1].date().isoformat())][0]
        # s3 alone in REPLAY_B: 99 % of the account (equal weight's ``invested``), in whole lots
        assert s3.volume * s3.price > 0.9 * CAPITAL
    finally:
        stack.close()


def test_strategies_in_one_account_must_trade_different_symbols(store, tmp_path):
    stack = build(tmp_path)
    try:
        stack.engine.stop_strategy("s2")
        stack.engine.edit_strategy("s2", {"symbols": ["510300.SSE"]})
        stack.engine.init_strategy("s2")
        assert not stack.engine.instances["s2"].inited
        assert "trades the same symbols ['510300.SSE']" in stack.engine.instances["s2"].error
    finally:
        stack.close()


def test_cancel_an_accounts_orders_and_flatten_a_strategy(store, tmp_path):
    # REPLAY_B fills 50 bps worse than the limit allows: its orders rest unfilled (the trouble injection)
    stack = build(tmp_path, trouble_b=json.dumps({"extra_slippage_bps": 50}))
    engine = stack.engine
    try:
        days = sessions(stack)
        gateways = list(stack.gateways.values())
        engine.clock.replay_session(gateways, days[0])  # the first decision
        day = days[1].date()
        for gateway in gateways:
            gateway.begin_day(days[1])
        stack.drain()
        stack.phase("open", day)
        working = [o.vt_orderid for o in stack.main_engine.get_all_active_orders()]
        assert [o.split(".")[0] for o in working] == ["REPLAY_B"]  # s3's buy rests; A's filled
        with pytest.raises(InputRejected):
            engine.cancel_orders()
        assert engine.cancel_orders(account="REPLAY_B") == working
        stack.drain()
        assert stack.main_engine.get_all_active_orders() == []
        stack.phase("retry", day)  # the cancelled session sends nothing more
        assert [o.vt_orderid for o in stack.main_engine.get_all_orders() if o.gateway_name == "REPLAY_B"] == working
        stack.phase("deadline", day)
        for gateway in gateways:
            gateway.end_day(days[1])
        stack.drain()
        stack.phase("close", day)
        # the session's execution statistics (in the daily summary): s3's one buy cancelled unfilled, s1's filled
        s3 = {(x.scope, x.name): x for x in engine.instances["s3"].execution}
        assert (s3[("strategy", "s3")].orders, s3[("strategy", "s3")].filled_orders) == (1, 0)
        assert s3[("account", "REPLAY_B")].fill_rate_volume == 0.0
        s1 = {(x.scope, x.name): x for x in engine.instances["s1"].execution}[("strategy", "s1")]
        assert (s1.orders, s1.filled_orders, s1.fill_rate_volume) == (1, 1, 1.0)
        held = engine.instances["s1"].cycle.broker.holdings()["510300.SSE"]
        assert held > 0

        # flatten s1: at the next open it sells exactly what it holds, and nothing else; then it stops
        plan = engine.flatten_strategy("s1", "test")
        assert plan.target == [0.0] and plan.symbols == ["510300.SSE"]
        before = {o.vt_orderid for o in stack.main_engine.get_all_orders()}
        engine.clock.replay_session(gateways, days[2])
        new = [o for o in stack.main_engine.get_all_orders() if o.vt_orderid not in before
               and o.reference.startswith("s1|")]
        assert [(o.vt_symbol, o.direction, o.volume) for o in new] == [("510300.SSE", Direction.SHORT, held)]
        assert engine.instances["s1"].cycle.broker.holdings().get("510300.SSE", 0.0) == 0.0
        assert not engine.instances["s1"].trading and engine.instances["s1"].error == ""
        assert engine.instances["s2"].trading  # the account's other strategy carries on
    finally:
        stack.close()


# -- XT: two XtGateway instances over one fake MiniQMT with two accounts ---------------------------------
fake_xt_accounts = xt_accounts.fake_xt_accounts  # the fixture, visible to this module's tests
XT_DAY = date(2025, 6, 16)  # a Monday after the bundled bars end: the close decides nothing new
ACCOUNT_1, ACCOUNT_2 = "8880000001", "8880000002"


def test_two_xt_accounts_share_one_data_connection_and_trade_apart(store, fake_xt_accounts, monkeypatch, tmp_path):
    import os
    import sys
    from datetime import time as clock_time

    from vnpy_rotation.live.plan import OrderPlan

    qmt = fake_xt_accounts
    qmt.market.add_instrument("510300.SH", "沪深300ETF", sector="沪深ETF", pre_close=4.0)
    qmt.market.add_instrument("510500.SH", "中证500ETF", sector="沪深ETF", pre_close=6.0)
    qmt[ACCOUNT_1].cash = 100_000.0
    qmt[ACCOUNT_1].set_position("510300.SH", 10_000, open_price=3.9)
    qmt[ACCOUNT_2].cash = 200_000.0
    for broker in qmt.accounts.values():
        broker.clock = lambda: datetime.combine(XT_DAY, clock_time(10, 0)).timestamp()
    import vnpy_xt

    monkeypatch.setattr(sys.modules["vnpy_xt.xt_gateway"].XtMdApi, "lock_filepath", tmp_path / "xt_lock")
    config = allocation_config({
        "accounts": [{"id": "one", "gateway": "XT_A", "kind": "xt"}, {"id": "two", "gateway": "XT_B", "kind": "xt"}],
        "strategies": [{"name": "sa", "account": "one", "weight": 0.5}, {"name": "sb", "account": "two", "weight": 0.3}],
        "rule": "weights"}, "test")
    cwd = os.getcwd()
    stack = Stack(vnpy_xt.XtGateway, tmp_path / "state", notifications=False, accounts=("XT_A", "XT_B"),
                  allocation=config)

    def settle() -> None:
        qmt.wait_delivered()
        stack.drain()

    try:
        for name, account in (("XT_A", ACCOUNT_1), ("XT_B", ACCOUNT_2)):
            stack.main_engine.connect(qmt.gateway_setting(account), name)
            stack.gateways[name].thread.join(5.0)
            wait_until(lambda name=name: [a for a in stack.main_engine.get_all_accounts() if a.gateway_name == name],
                       f"{name}'s account report")
        settle()
        # one market-data service for the process, one trading session per account
        assert len(qmt.market.called("init")) == 1
        sessions = {c.session for c in qmt.clients}
        assert len(qmt.clients) == 2 and len(sessions) == 2
        assert sorted(tuple(c.subscribed_accounts) for c in qmt.clients) == [(ACCOUNT_1,), (ACCOUNT_2,)]
        accounts = {a.gateway_name: a.accountid for a in stack.main_engine.get_all_accounts()}
        assert accounts == {"XT_A": ACCOUNT_1, "XT_B": ACCOUNT_2}

        stack.size_risk_rules(1_000_000.0, lambda _: None)
        engine = stack.engine
        engine.add_strategy("sa", "EqualWeightStrategy", {"symbols": ["510500.SSE"]}, gateway="XT_A")
        engine.add_strategy("sb", "EqualWeightStrategy", {"symbols": ["510300.SSE"]}, gateway="XT_B")
        for name in ("sa", "sb"):
            engine.init_strategy(name)
            engine.start_strategy(name)
        settle()
        for gateway in stack.gateways.values():
            gateway.query_account()
            gateway.query_position()
        settle()
        decision = stack.risk.review_allocation(datetime(2025, 6, 13, 15), {})
        engine.instances["sa"].cycle.adopt(OrderPlan("sa", "2025-06-13", ["510500.SSE"], [1.0]))
        engine.instances["sb"].cycle.adopt(OrderPlan("sb", "2025-06-13", ["510300.SSE"], [0.5]))
        stamp = int(datetime.combine(XT_DAY, clock_time(9, 31)).timestamp() * 1000)
        qmt.market.push_tick("510300.SH", 4.0, open=4.0, pre_close=4.0, time_ms=stamp)
        qmt.market.push_tick("510500.SH", 6.0, open=6.0, pre_close=6.0, time_ms=stamp)
        settle()

        stack.phase("open", XT_DAY)
        [buy_a] = wait_until(lambda: list(qmt[ACCOUNT_1].orders.values()), "sa's buy")
        [buy_b] = wait_until(lambda: list(qmt[ACCOUNT_2].orders.values()), "sb's buy")
        # each buy went to its own account, capped at its allocation of that account's equity; sa is alone in
        # its account, so the 10,000 510300 there (40,000 CNY at the open) are its book and use its room
        assert (buy_a.stock_code, buy_a.order_volume) == (
            "510500.SH", math.floor((decision.amount("sa") - 10_000 * 4.0) / 6.0 / 100) * 100)
        assert (buy_b.stock_code, buy_b.order_volume) == (
            "510300.SH", math.floor(decision.amount("sb") / 4.0 / 100) * 100)
        assert decision.amount("sa") == 0.5 * 140_000.0 and decision.amount("sb") == 0.3 * 200_000.0
        for account, order in ((ACCOUNT_1, buy_a), (ACCOUNT_2, buy_b)):
            qmt[account].report(order.order_id)
            qmt[account].fill(order.order_id)
        settle()
        stack.phase("deadline", XT_DAY)
        settle()
        for gateway in stack.gateways.values():
            gateway.query_account()
            gateway.query_position()
        settle()
        stack.phase("close", XT_DAY)
        settle()
        # per account: the books agree with each broker; positions never cross accounts
        assert engine.reconcile_accounts() == {"XT_A": [], "XT_B": []}
        held = {(p.gateway_name, p.vt_symbol): p.volume for p in stack.main_engine.get_all_positions() if p.volume}
        assert held == {("XT_A", "510300.SSE"): 10_000, ("XT_A", "510500.SSE"): buy_a.order_volume,
                        ("XT_B", "510300.SSE"): buy_b.order_volume}
    finally:
        for gateway in stack.gateways.values():
            if gateway.thread is not None:
                gateway.thread.join(5.0)
        stack.close()
        os.chdir(cwd)


def test_trade_reads_the_allocation_section(tmp_path):
    """``run.py trade --config`` takes an ``allocation:`` section: a mistake names file:line and the field and
    nothing runs; a valid one is reviewed after the closes and stored in the run's risk state."""
    from conftest import run_cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("allocation:\n  accounts:\n    - {id: paper, gateway: REPLAY, kind: replay}\n  strategies:\n"
                   "    - {name: etf_rotation, account: paper, weight: 1.5}\n  rule: weights\n", encoding="utf-8")
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-06-24",
                   "--end", "2024-06-28", "--config", str(bad), "--out", str(tmp_path / "bad"), home=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{bad}:5:" in done.stderr and "weight" in done.stderr
    assert not (tmp_path / "bad" / "state").exists()

    good = tmp_path / "good.yaml"
    good.write_text("strategy: {symbols: ['510300.SSE'], rebalance: daily}\n"
                    "allocation:\n  accounts:\n    - {id: paper, gateway: PAPER, kind: replay}\n  strategies:\n"
                    "    - {name: equal_weight, account: paper, weight: 0.5}\n  rule: weights\n"
                    "  schedule: {every: weekly, day: 1}\n", encoding="utf-8")
    done = run_cli("trade", "--gateway", "replay", "--strategy", "equal_weight", "--start", "2024-06-24",
                   "--end", "2024-06-26", "--config", str(good), "--out", str(tmp_path / "good"), home=tmp_path)
    stored = json.loads((tmp_path / "good" / "state" / "risk_state.json").read_text(encoding="utf-8"))
    assert [x["at"] for x in stored["allocations"]] == ["2024-06-24T15:00:00"], done.stderr
    [line] = stored["allocation"]["lines"]
    assert (line["strategy"], line["account"], line["weight"]) == ("equal_weight", "paper", 0.5)
    # the strategy traded through the allocation's gateway, capped: half its account at most
    trades = pd.read_csv(tmp_path / "good" / "trades.csv")
    assert set(trades["direction"]) == {"buy"}, done.stdout
    # the replay differs from the uncapped backtest of the same config, and says so (exit 1)
    assert done.returncode == 1 and "DIFFERENT" in done.stdout
    first = trades.iloc[0]  # the first buy: the most whole lots the 500,000 CNY allocation holds
    assert first["volume"] == math.floor(line["amount"] / first["price"] / 100) * 100

    # run.py stats: the run's execution statistics, per strategy and account, the last session and cumulated
    done = run_cli("stats", "--run", str(tmp_path / "good"), "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = {(x["scope"], x["name"], x["period"]): x for x in json.loads(done.stdout)}
    total = stats[("strategy", "equal_weight", "cumulative")]
    assert (total["orders"], total["filled_orders"], total["day"]) == (len(trades), len(trades), "2024-06-26")
    assert total["traded_value"] == pytest.approx(float(trades["value"].sum()), abs=0.01)
    assert ("account", "replay", "day") in stats
    assert run_cli("stats", "--run", str(tmp_path / "bad"), home=tmp_path).returncode != 0
