"""The risk app with the rotation app on one real stack (replay gateway, bundled data): the strategy's rung
the rotation app reports reaches the vnpy_riskmanager rule, and the risk app's resets reach the strategy."""

from __future__ import annotations

from datetime import date

from vnpy.event import Event

from vnpy_rotation.risk.config import RiskConfig
from vnpy_rotation.risk.events import EVENT_RISK_DENIAL, EVENT_RISK_STRATEGY, RiskDenial, StrategyRiskUpdate


def test_the_rotation_apps_orders_meet_the_strategys_rung(tmp_path, runtime_home):
    """Through the whole stack: a frozen strategy's plan is refused by the rule, leg by leg; the rotation app
    sees empty order ids, notifies each refusal and keeps trading; nothing reaches the replay book."""
    from conftest import fresh_bundled_store

    from vnpy_rotation.apps.rotation.daemon import Stack
    from vnpy_rotation.gateways.replay import ReplayGateway

    fresh_bundled_store()
    built = Stack(ReplayGateway, tmp_path / "state", notifications=False)
    try:
        kinds: list[str] = []
        built.engine.notify = lambda kind, subject, content: kinds.append(kind)
        denials: list[RiskDenial] = []
        built.event_engine.register(EVENT_RISK_DENIAL, lambda e: denials.append(e.data))
        built.main_engine.connect({"初始资金": 1_000_000.0, "开始日期": "2024-06-27", "结束日期": "2024-07-02",
                                   "账本文件": ""}, "REPLAY")
        built.drain()
        built.size_risk_rules(1_000_000.0, lambda _: None)
        built.engine.add_strategy("rot", "EtfRotationStrategy", gateway="REPLAY", history_start="2024-06-27")
        built.engine.init_strategy("rot")
        built.engine.start_strategy("rot")
        frozen = StrategyRiskUpdate("rot", date(2024, 6, 27), "HALTED", ("frozen by hand",), 1_000_000.0,
                                    1_000_000.0, flatten=False)

        def keep_frozen(event: Event) -> None:  # the rotation app reports its own (ACTIVE) rung at each close
            if event.data.rung != "HALTED":
                built.event_engine.put(Event(EVENT_RISK_STRATEGY, frozen))

        built.event_engine.register(EVENT_RISK_STRATEGY, keep_frozen)
        built.event_engine.put(Event(EVENT_RISK_STRATEGY, frozen))
        while built.engine.clock.replay_next(built.gateway) is not None:
            pass
        state = built.engine.instances["rot"].cycle.state
        orders = sum(day["orders"] for day in state.history)
        assert orders > 0 and built.engine.instances["rot"].trading
        assert len(built.gateway.book.state.orders) == 0  # nothing reached the broker
        assert len(denials) == orders and {(d.strategy, d.rung) for d in denials} == {("rot", "HALTED")}
        assert kinds.count("rejected_order") == orders  # the rotation app's refusal path, once per order
        assert built.risk.state_file.last_day == "2024-07-02"  # the account ladder saw every close
    finally:
        built.close()


def test_the_rotation_app_reports_its_ladder_and_a_reset_reaches_it(tmp_path, runtime_home):
    """An account ladder with a tight threshold halts on real bars: the rotation app reports the strategy's rung
    after each close, the risk app records it, and an account ``reset`` there returns the strategy's copy of the
    account ladder to ACTIVE too (withdrawing its pending flattening sales)."""
    from conftest import fresh_bundled_store

    from vnpy_rotation.apps.rotation.daemon import Stack
    from vnpy_rotation.gateways.replay import ReplayGateway

    fresh_bundled_store()
    tight = {"risk": {"ladder": {"reduce_at": 0.002, "halt_at": 0.004, "cooldown": 50, "halt_cooldown": 50}}}
    built = Stack(ReplayGateway, tmp_path / "state", notifications=False,
                  risk=RiskConfig.model_validate(tight["risk"]))
    try:
        updates: list[StrategyRiskUpdate] = []
        built.event_engine.register(EVENT_RISK_STRATEGY, lambda e: updates.append(e.data))
        built.main_engine.connect({"初始资金": 1_000_000.0, "开始日期": "2024-06-27", "结束日期": "2024-07-12",
                                   "账本文件": ""}, "REPLAY")
        built.drain()
        built.size_risk_rules(1_000_000.0, lambda _: None)
        built.engine.add_strategy("rot", "EtfRotationStrategy", gateway="REPLAY", history_start="2024-06-27",
                                  backtest=tight)
        built.engine.init_strategy("rot")
        built.engine.start_strategy("rot")
        while built.engine.clock.replay_next(built.gateway) is not None:
            pass
        built.drain()
        book = built.engine.instances["rot"].cycle.state.risk
        assert [u.day for u in updates] == [date.fromisoformat(h["day"]) for h in
                                            built.engine.instances["rot"].cycle.state.history]
        assert updates[-1].rung == book.rung_name == "HALTED"  # what the rule enforces is the strategy's own rung
        assert built.risk.state_file.strategies["rot"]["rung"] == "HALTED"
        assert built.risk.state_file.account_gate().rung == "HALTED"  # the app's own account ladder agrees
        built.risk.reset("account", "reviewed the losses", who="test")
        built.drain()
        assert book.rung_name == "ACTIVE" and book.status()["pending"] == {}
    finally:
        built.close()
