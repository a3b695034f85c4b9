"""The rotation app's engine on a real MainEngine with the replay gateway and vnpy_riskmanager: instances
persisted and validated, strategy discovery from ./strategies, a failing strategy stopped alone with a
notification, rejected orders notified, and the phases driving a real rebalance."""

from __future__ import annotations

import json
import textwrap
from datetime import date

import pytest
from conftest import fresh_bundled_store

from vnpy_rotation.apps.rotation.daemon import Stack
from vnpy_rotation.apps.rotation.discovery import discover
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.gateways.replay import ReplayGateway
from vnpy_rotation.notify import Notifier, NotifyConfig

BROKEN = "def broken(:\n"
USER_STRATEGY = textwrap.dedent('''
    from vnpy_rotation.strategies.equal_weight import EqualWeightStrategy

    class ExplodingRotation(EqualWeightStrategy):
        name = "exploding"

        def targets(self, market):
            raise RuntimeError("a bug in the user's strategy")
''')


class Recorder:
    """A notification channel that keeps what it is sent, and the engine's notify calls by kind."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.kinds: list[tuple[str, str]] = []  # (kind, subject)

    def send(self, subject: str, content: str) -> None:
        self.sent.append((subject, content))


@pytest.fixture
def stack(tmp_path, runtime_home):
    fresh_bundled_store()
    built = Stack(ReplayGateway, tmp_path / "state", notifications=False)
    recorder = Recorder()
    built.engine.notifier = Notifier(NotifyConfig(), channels=[recorder])

    def notify(kind: str, subject: str, content: str) -> bool:
        recorder.kinds.append((kind, subject))
        return built.engine.notifier.notify(kind, subject, content)

    built.engine.notify = notify
    built.recorder = recorder
    yield built
    built.close()


def connect(stack, start: str, end: str) -> None:
    stack.main_engine.connect({"初始资金": 1_000_000.0, "开始日期": start, "结束日期": end, "账本文件": ""},
                              "REPLAY")
    stack.drain()


def run_sessions(stack) -> list[date]:
    """Every session of the replay span, stepped as the GUI's replay button does."""
    days = []
    while (day := stack.engine.clock.replay_next(stack.gateway)) is not None:
        days.append(day)
    assert days == [d.date() for d in stack.gateway.sessions()]
    return days


def test_instances_are_validated_persisted_and_reloaded(stack, tmp_path):
    engine = stack.engine
    engine.add_strategy("rot", "EtfRotationStrategy", {"top_n": 2}, gateway="REPLAY", tolerance_bps=20)
    engine.edit_strategy("rot", {"buffer": 1}, max_rounds=5)
    saved = json.loads((tmp_path / "state" / "rotation_strategy_setting.json").read_text(encoding="utf-8"))
    assert saved["rot"]["settings"] == {"top_n": 2, "buffer": 1}
    assert saved["rot"]["tolerance_bps"] == 20 and saved["rot"]["max_rounds"] == 5
    with pytest.raises(InputRejected, match="class_name"):
        engine.add_strategy("x", "NoSuchStrategy")
    with pytest.raises(InputRejected, match="top_n"):
        engine.add_strategy("y", "EtfRotationStrategy", {"top_n": -1})
    with pytest.raises(InputRejected, match="exists"):
        engine.add_strategy("rot", "EtfRotationStrategy")
    assert set(engine.instances) == {"rot"}  # nothing half-added

    engine.instances.clear()
    engine.init_engine(state_folder=tmp_path / "state", notifications=False)
    assert engine.instances["rot"].setting.settings == {"top_n": 2, "buffer": 1}
    engine.remove_strategy("rot")
    assert json.loads((tmp_path / "state" / "rotation_strategy_setting.json").read_text(encoding="utf-8")) == {}


def test_discovery_finds_user_classes_and_survives_a_broken_file(tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "mine.py").write_text(USER_STRATEGY, encoding="utf-8")
    (folder / "broken.py").write_text(BROKEN, encoding="utf-8")
    logged: list[str] = []
    classes = discover(folder, logged.append)
    assert "ExplodingRotation" in classes and "VqmStrategy" in classes
    assert len(logged) == 1 and "broken.py" in logged[0]


def test_a_failing_strategy_stops_alone_while_another_trades(stack, tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "mine.py").write_text(USER_STRATEGY, encoding="utf-8")
    engine = stack.engine
    engine.classes.update(discover(folder))
    connect(stack, "2024-06-24", "2024-07-05")
    engine.add_strategy("good", "EtfRotationStrategy", gateway="REPLAY", history_start="2024-06-24")
    # in one account each strategy trades its own symbols (it sees and sells only those): not etf_rotation's
    engine.add_strategy("bad", "ExplodingRotation", {"symbols": ["511990.SSE"]}, gateway="REPLAY",
                        history_start="2024-06-24")
    stack.size_risk_rules(1_000_000.0, lambda _: None)
    for name in ("good", "bad"):
        engine.init_strategy(name)
        engine.start_strategy(name)
    stack.drain()
    run_sessions(stack)
    engine.notifier.flush(5)
    bad, good = engine.instances["bad"], engine.instances["good"]
    assert not bad.trading and "RuntimeError" in bad.error  # the traceback is kept
    assert good.trading and good.error == ""
    assert good.cycle.state.history[-1]["positions"]  # the good one rebalanced into its targets
    kinds = stack.recorder.kinds
    # failed on day 1: notified at once; its daily summary goes out once every strategy closed (the account's
    # execution figures cover them all)
    assert [k for k, s in kinds if s.startswith("bad ")] == ["failure", "daily_summary"]
    assert [k for k, s in kinds if s.startswith("good ")] == ["daily_summary"] * 10  # one per session
    assert len(stack.recorder.sent) == len(kinds)  # every notification went out through the channel


def test_a_rejected_order_is_notified_and_the_session_goes_on(stack):
    """vnpy_riskmanager's default order-size rule (500 shares) stays active and refuses the plan's orders."""
    connect(stack, "2024-06-27", "2024-07-02")  # decided on Friday 06-28, sent on Monday 07-01
    engine = stack.engine
    engine.add_strategy("rot", "EtfRotationStrategy", gateway="REPLAY", history_start="2024-06-27")
    engine.init_strategy("rot")
    engine.start_strategy("rot")
    run_sessions(stack)
    engine.notifier.flush(5)
    rejected = [s for k, s in stack.recorder.kinds if k == "rejected_order"]
    state = engine.instances["rot"].cycle.state
    orders = sum(day["orders"] for day in state.history)
    reached = len(stack.gateway.book.state.orders)  # small enough for the 500-share rule
    assert len(rejected) == orders - reached > 0  # every refused order was notified
    assert engine.instances["rot"].trading and len(state.history) == 4
    assert state.plan is not None  # refused legs stay to be tried again, as the backtester would
