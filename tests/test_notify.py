"""The notification layer: DingTalk signing and delivery, the background notifier, vnpy's email path.

Everything runs on loopback: a fake DingTalk (``http.server``) that verifies the signature the way
DingTalk does (tests/fakes/dingtalk_server.py). vnpy's email path is in test_notify_email.py.
No real network.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes import loopback
from fakes.dingtalk_server import FakeDingTalk, server_side_sign_ok
from fakes.loopback import WAIT, closed_port
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vnpy_rotation.errors import InputRejected, RotationError
from vnpy_rotation.notify import (
    ALL_KINDS,
    DingTalkChannel,
    Notifier,
    NotifyConfig,
    NotifyError,
    NotifyKind,
    load_notify_config,
    sign,
    signed_url,
)

SECRET = "SECtest-secret"

_no_proxy = loopback.no_proxy  # autouse


# ----------------------------------------------------------------------------------------------
# Helpers: the fake DingTalk robot (tests/fakes/dingtalk_server.py), test channels


@pytest.fixture
def dingtalk():
    """Factory of :class:`FakeDingTalk` robots, all shut down after the test."""
    with ExitStack() as stack:
        def make(**kwargs) -> FakeDingTalk:
            robot = FakeDingTalk(**kwargs)
            stack.callback(robot.close)
            return robot

        yield make


class Recorder:
    """A channel that records what it was given (optionally waiting for ``gate`` first)."""

    name = "recorder"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, content: str) -> None:
        if self.gate is not None:
            self.gate.wait(WAIT)
        self.sent.append((subject, content))


class Raising:
    """A channel that always fails with an arbitrary exception."""

    def send(self, subject: str, content: str) -> None:
        raise RuntimeError("boom")


def quiet_config(**kwargs) -> NotifyConfig:
    """A config without vnpy's channel (these tests pass their own channels)."""
    return NotifyConfig(vnpy_notification=False, **kwargs)


# ----------------------------------------------------------------------------------------------
# Signing


def test_sign_matches_a_value_computed_independently():
    # printf '1700000000004\nSECtest-secret' | openssl dgst -sha256 -hmac SECtest-secret -binary | base64
    # -> QoTeoLX0GS/n4SXI2eHeDOjG3hApCWkc0m+XGixSz+A=  ('/', '+' and '=' must be URL-encoded)
    assert sign(SECRET, 1700000000004) == "QoTeoLX0GS%2Fn4SXI2eHeDOjG3hApCWkc0m%2BXGixSz%2BA%3D"


def test_signed_url_appends_timestamp_and_sign():
    base = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    assert signed_url(base, SECRET, 1700000000004) == (
        f"{base}&timestamp=1700000000004&sign=QoTeoLX0GS%2Fn4SXI2eHeDOjG3hApCWkc0m%2BXGixSz%2BA%3D")
    assert signed_url(base, None, 1700000000004) == base
    assert signed_url("https://example.com/hook", SECRET, 5).startswith("https://example.com/hook?timestamp=5&sign=")


@settings(max_examples=200, database=None)  # write no example database
@given(secret=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
       timestamp_ms=st.integers(min_value=0, max_value=10**14))
def test_sign_verifies_server_side(secret, timestamp_ms):
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, timestamp_ms)
    query = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert query["access_token"] == ["abc"]
    assert query["timestamp"] == [str(timestamp_ms)]
    assert server_side_sign_ok(secret, query["timestamp"][0], query["sign"][0])
    assert not server_side_sign_ok(secret + "x", query["timestamp"][0], query["sign"][0])


# ----------------------------------------------------------------------------------------------
# The DingTalk channel against the fake robot


def test_channel_posts_signed_markdown(dingtalk):
    robot = dingtalk(secret=SECRET)
    DingTalkChannel(robot.webhook, SECRET).send("调仓失败 Rebalance failed", "510300.SSE: rejected\nsecond line")

    [request] = robot.requests
    assert request["accepted"]
    assert request["query"]["access_token"] == ["token123"]
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["body"] == {"msgtype": "markdown", "markdown": {
        "title": "调仓失败 Rebalance failed",
        "text": "#### 调仓失败 Rebalance failed\n\n510300.SSE: rejected\nsecond line"}}


def test_channel_posts_text_unsigned(dingtalk):
    robot = dingtalk()
    DingTalkChannel(robot.webhook, None, msgtype="text").send("Daily summary", "equity 1,000,000")

    [request] = robot.requests
    assert "timestamp" not in request["query"] and "sign" not in request["query"]
    assert request["body"] == {"msgtype": "text", "text": {"content": "Daily summary\nequity 1,000,000"}}


def test_bad_signature_is_an_error_although_http_200(dingtalk):
    robot = dingtalk(secret=SECRET)
    with pytest.raises(NotifyError):
        DingTalkChannel(robot.webhook, "SECwrong").send("s", "c")
    assert robot.requests and robot.accepted == []
    assert issubclass(NotifyError, RotationError)


def test_stale_timestamp_is_refused(dingtalk):
    robot = dingtalk(secret=SECRET)
    two_hours_ago = time.time() - 7200
    with pytest.raises(NotifyError):
        DingTalkChannel(robot.webhook, SECRET, clock=lambda: two_hours_ago).send("s", "c")


def failing_webhook(mode: str, dingtalk) -> str:
    """A webhook that fails in ``mode``: refused (closed port), or a fake robot misbehaving."""
    if mode == "refused":
        return f"http://127.0.0.1:{closed_port()}/robot/send?access_token=x"
    return dingtalk(secret=SECRET, mode=mode).webhook


FAILURES = ["http500", "errcode", "refused", "hang"]
TIMEOUT = 0.3  # the channel's timeout in these tests; the fake robot hangs far longer


@pytest.mark.parametrize("mode", FAILURES)
def test_channel_failure_raises_notify_error_within_timeout(mode, dingtalk):
    channel = DingTalkChannel(failing_webhook(mode, dingtalk), SECRET, timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(NotifyError):
        channel.send("s", "c")
    assert time.monotonic() - started < TIMEOUT + 1.0


@pytest.mark.parametrize("mode", FAILURES)
def test_failing_dingtalk_is_logged_and_the_worker_survives(mode, dingtalk):
    bad = DingTalkChannel(failing_webhook(mode, dingtalk), SECRET, timeout=TIMEOUT)
    good_robot = dingtalk(secret=SECRET)
    good = DingTalkChannel(good_robot.webhook, SECRET, timeout=WAIT)
    logs: list[str] = []
    notifier = Notifier(quiet_config(), log=logs.append, channels=[bad, good])
    try:
        assert notifier.notify("failure", "first", "1")  # returns at once, whatever the network does
        assert notifier.flush(WAIT)
        assert len(logs) == 1
        assert notifier.notify(NotifyKind.REJECTED_ORDER, "second", "2")
        assert notifier.flush(WAIT)
        assert len(logs) == 2
        assert [body["markdown"]["title"] for body in good_robot.accepted] == ["first", "second"]
    finally:
        assert notifier.close(WAIT)


def test_the_same_channel_delivers_again_after_a_failure(dingtalk):
    robot = dingtalk(secret=SECRET, script=("http500",))
    logs: list[str] = []
    with Notifier(quiet_config(), log=logs.append,
                  channels=[DingTalkChannel(robot.webhook, SECRET, timeout=WAIT)]) as notifier:
        notifier.notify("failure", "lost", "1")
        notifier.notify("failure", "delivered", "2")
        assert notifier.flush(WAIT)
    assert len(logs) == 1
    assert [body["markdown"]["title"] for body in robot.accepted] == ["delivered"]


# ----------------------------------------------------------------------------------------------
# The notifier


def test_notify_returns_while_a_channel_is_blocked():
    gate = threading.Event()
    recorder = Recorder(gate)
    notifier = Notifier(quiet_config(), channels=[recorder])
    try:
        assert notifier.notify("failure", "a", "1")
        assert notifier.notify("failure", "b", "2")
        assert not notifier.flush(0.1)  # still blocked in the channel
        assert recorder.sent == []
        gate.set()
        assert notifier.flush(WAIT)
        assert recorder.sent == [("a", "1"), ("b", "2")]
    finally:
        gate.set()
        notifier.close(WAIT)


def test_a_raising_channel_and_a_raising_log_never_reach_the_caller():
    def broken_log(line: str) -> None:
        raise ValueError("the log itself fails")

    recorder = Recorder()
    notifier = Notifier(quiet_config(), log=broken_log, channels=[Raising(), recorder])
    try:
        for i in range(3):
            assert notifier.notify("failure", f"s{i}", f"c{i}")
        assert notifier.flush(WAIT)
        assert recorder.sent == [("s0", "c0"), ("s1", "c1"), ("s2", "c2")]
    finally:
        assert notifier.close(WAIT)


def test_vnpy_channel_gets_content_then_subject(dingtalk):
    robot = dingtalk(secret=SECRET)
    calls: list[tuple[str, str]] = []
    config = NotifyConfig.model_validate({"dingtalk": {"webhook": robot.webhook, "secret": SECRET}})
    with Notifier(config, send_notification=lambda *args: calls.append(args)) as notifier:
        notifier.notify("daily_summary", "Daily summary", "equity up")
        assert notifier.flush(WAIT)
    assert calls == [("equity up", "Daily summary")]
    assert [body["markdown"]["title"] for body in robot.accepted] == ["Daily summary"]


def test_vnpy_channel_can_be_switched_off():
    calls: list[tuple] = []
    with Notifier(quiet_config(), send_notification=lambda *args: calls.append(args)) as notifier:
        assert notifier.channels == ()
        notifier.notify("failure", "s", "c")
        assert notifier.flush(WAIT)
    assert calls == []


def test_kinds_not_enabled_are_dropped():
    recorder = Recorder()
    config = quiet_config(kinds=frozenset({NotifyKind.FAILURE}))
    with Notifier(config, log=lambda line: None, channels=[recorder]) as notifier:
        assert not notifier.notify("daily_summary", "summary", "x")
        assert not notifier.notify(NotifyKind.REJECTED_ORDER, "rejected", "x")
        assert not notifier.notify("no_such_kind", "typo", "x")  # dropped, not raised
        assert notifier.notify("failure", "failed", "x")
        assert notifier.flush(WAIT)
    assert recorder.sent == [("failed", "x")]


def test_close_drains_the_queue_and_is_idempotent():
    gate = threading.Event()
    recorder = Recorder(gate)
    notifier = Notifier(quiet_config(), log=lambda line: None, channels=[recorder])
    for i in range(3):
        notifier.notify("failure", f"s{i}", "c")
    gate.set()
    assert notifier.close(WAIT)
    assert recorder.sent == [("s0", "c"), ("s1", "c"), ("s2", "c")]
    assert notifier.close(WAIT)
    assert notifier.close(0)
    assert notifier.closed
    assert not notifier.notify("failure", "late", "c")
    assert notifier.flush(0.1)
    assert len(recorder.sent) == 3


def test_a_full_queue_drops_instead_of_blocking():
    gate = threading.Event()
    recorder = Recorder(gate)
    notifier = Notifier(quiet_config(), log=lambda line: None, channels=[recorder], max_pending=2)
    try:
        assert notifier.notify("failure", "a", "c")
        assert notifier.notify("failure", "b", "c")
        assert not notifier.notify("failure", "c", "c")
        gate.set()
        assert notifier.flush(WAIT)
        assert [s for s, _ in recorder.sent] == ["a", "b"]
    finally:
        gate.set()
        notifier.close(WAIT)


# ----------------------------------------------------------------------------------------------
# Configuration


def test_missing_file_gives_the_defaults(tmp_path):
    config = load_notify_config(tmp_path / "notify.json")
    assert config == NotifyConfig()
    assert not config.dingtalk.enabled
    assert config.kinds == ALL_KINDS
    assert config.vnpy_notification


def test_config_file_is_read(tmp_path):
    path = tmp_path / "notify.json"
    path.write_text(json.dumps({
        "dingtalk": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=t", "secret": "SEC1",
                     "msgtype": "text", "timeout": 2.5},
        "kinds": ["failure", "rejected_order"],
        "vnpy_notification": False}), encoding="utf-8")
    config = load_notify_config(path)
    assert config.dingtalk.enabled
    assert config.dingtalk.secret == "SEC1"
    assert config.dingtalk.msgtype == "text" and config.dingtalk.timeout == 2.5
    assert config.kinds == {NotifyKind.FAILURE, NotifyKind.REJECTED_ORDER}
    assert config.enabled("failure") and not config.enabled("daily_summary")
    assert not config.vnpy_notification
    [channel] = Notifier(config).channels
    assert isinstance(channel, DingTalkChannel) and channel.timeout == 2.5 and channel.msgtype == "text"


def test_blank_webhook_means_disabled(tmp_path):
    path = tmp_path / "notify.json"
    path.write_text('{"dingtalk": {"webhook": "", "secret": ""}}', encoding="utf-8")
    assert not load_notify_config(path).dingtalk.enabled


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        NotifyConfig().vnpy_notification = False  # type: ignore[misc]


def rejected(tmp_path, text: str):
    """Write ``text`` as notify.json and load it: the path and the one problem it was rejected for."""
    path = tmp_path / "notify.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputRejected) as excinfo:
        load_notify_config(path)
    [problem] = excinfo.value.problems
    return path, problem


@pytest.mark.parametrize("text, field", [
    ('{"kinds": ["failure", "bogus"]}', "kinds.1"),
    ('{"dingtalk": {"webhook": "oapi.dingtalk.com/robot/send"}}', "dingtalk.webhook"),
    ('{"dingtalk": {"webhook": "https://x.example/hook", "timeout": 0}}', "dingtalk.timeout"),
    ('{"dingtalk": {"webhook": "https://x.example/hook", "msgtype": "card"}}', "dingtalk.msgtype"),
    ('{"dingtalk": {"secret": "SEC1"}}', "dingtalk"),
    ('{"vnpy_notifications": true}', "vnpy_notifications"),
    ('{"vnpy_notification": "maybe"}', "vnpy_notification"),
])
def test_bad_field_names_the_file_and_the_field(tmp_path, text, field):
    path, problem = rejected(tmp_path, text)
    assert problem.source == str(path)
    assert problem.reason.split(":")[0] == field


@pytest.mark.parametrize("text, line", [('{\n  "kinds": [\n}', 3), ("[1, 2]", None)])
def test_bad_json_names_the_file(tmp_path, text, line):
    path, problem = rejected(tmp_path, text)
    assert (problem.source, problem.line) == (str(path), line)
