"""The terminal monitor: the pure renderer (exact cells), the tick-file reader and its replay, ``--once``,
and a scripted session in a real pseudo-terminal (screen emulated by pyte)."""

from __future__ import annotations

import math
import os
import signal
import sys
import termios
import time
from datetime import datetime

import pytest
from conftest import ROOT, run_cli
from fakes import xt_harness

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.monitor.records import Alert, Indicators, Severity
from vnpy_rotation.monitor.view import MonitorView
from vnpy_rotation.tui.render import Label, alert_cells, status_line, table_cells
from vnpy_rotation.tui.ticks import ReplayFeed, read_ticks

fake_xt_trading = xt_harness.fake_xt_trading
EXAMPLE = ROOT / "examples" / "monitor_ticks.csv"
T = datetime(2025, 6, 16, 9, 36, 0)
HEADER = "datetime,vt_symbol,last,pre_close,volume,turnover,limit_up,limit_down,bid1,ask1\n"


def indicators(vt_symbol: str, **changes) -> Indicators:
    base = dict(vt_symbol=vt_symbol, time=T, last=11.0, pre_close=10.0, open=10.3, change=0.1, limit_up=11.0,
                limit_down=9.0, feed_limit_up=11.0, feed_limit_down=9.0, limit_mismatch=False, to_limit_up=0.0,
                to_limit_down=2 / 11, sealed_up=True, sealed_down=False, vwap=10.6543, volume=1e6, turnover=1.06543e7,
                volume_ratio=3.14159, turnover_rate=None, return_1m=0.0123, return_5m=-0.004, minute=6,
                minute_volume=1e4, suspended=False)
    base.update(changes)
    return Indicators(**base)


def alert(rule: str, vt_symbol: str, minute: int, severity: Severity = Severity.WARNING) -> Alert:
    return Alert(rule, vt_symbol, T.replace(minute=minute), severity, f"{rule} reason")


VIEW = MonitorView(
    at=T,
    rows=(("600000.SSE", indicators("600000.SSE")),
          ("510300.SSE", indicators("510300.SSE", last=3.901, change=0.000256, to_limit_up=0.0997, to_limit_down=0.1002,
                                    sealed_up=False, vwap=3.90123, volume_ratio=None, return_1m=None,
                                    return_5m=math.nan, limit_mismatch=True)),
          ("000001.SZSE", indicators("000001.SZSE", time=T.replace(minute=31), sealed_up=False, suspended=True)),
          ("300750.SZSE", None)),
    alerts=(alert("gap_open", "600000.SSE", 25, Severity.INFO), alert("stale_quote", "000001.SZSE", 32),
            alert("limit_up_sealed", "600000.SSE", 35), alert("stop_crossed", "600000.SSE", 35, Severity.CRITICAL)),
    connected=False,
)


def test_table_cells_are_exact():
    labels = {"510300.SSE": Label("沪深300ETF", 3), "600000.SSE": Label("浦发银行", 2)}
    assert table_cells(VIEW, labels) == [
        ("600000.SSE", "浦发银行", "11.00", "+10.00", "+0.00", "+18.18", "10.65", "3.14", "+1.23", "-0.40", "封↑"),
        ("510300.SSE", "沪深300ETF", "3.901", "+0.03", "+9.97", "+10.02", "3.901", "—", "—", "—", "≠limit"),
        ("000001.SZSE", "", "11.00", "+10.00", "+0.00", "+18.18", "10.65", "3.14", "+1.23", "-0.40", "停 stale"),
        ("300750.SZSE", "", "—", "—", "—", "—", "—", "—", "—", "—", "no quote"),
    ]


def test_a_quote_after_the_stale_alert_clears_the_flag():
    fresh = MonitorView(VIEW.at, (("000001.SZSE", indicators("000001.SZSE", sealed_up=False)),), VIEW.alerts)
    assert table_cells(fresh)[0][-1] == ""  # quoted at 09:36, after the 09:32 stale alert


def test_alerts_newest_first_and_the_status_line():
    assert alert_cells(VIEW, limit=3) == [
        ("09:35:00", "critical", "stop_crossed", "600000.SSE", "stop_crossed reason"),
        ("09:35:00", "warning", "limit_up_sealed", "600000.SSE", "limit_up_sealed reason"),
        ("09:32:00", "warning", "stale_quote", "000001.SZSE", "stale_quote reason"),
    ]
    assert status_line(VIEW, "XT") == "XT  2025-06-16 09:36:00  DISCONNECTED  4 alerts  q: quit"


@pytest.mark.parametrize("line, where, field", [
    ("2025-06-16 09:30:03,600000.SSE,abc,10,0,0,11,9,10,10.01", 3, "last"),
    ("2025-06-16 09:30:03,600000.SH,10,10,0,0,11,9,10,10.01", 3, "vt_symbol"),
    ("2025-06-16 9h30,600000.SSE,10,10,0,0,11,9,10,10.01", 3, "datetime"),
    ("2025-06-16 09:29:59,600000.SSE,10,10,0,0,11,9,10,10.01", 3, "datetime"),  # earlier than line 2
    ("2025-06-16 09:30:03,600000.SSE,10,10,-5,0,11,9,10,10.01", 3, "volume"),
    ("2025-06-16 09:30:03,600000.SSE,10,10,0", 3, None),  # too few cells
])
def test_a_bad_tick_line_is_rejected_with_file_and_line(tmp_path, line, where, field):
    path = tmp_path / "ticks.csv"
    path.write_text(HEADER + "2025-06-16 09:30:00,600000.SSE,10,10,0,0,11,9,10,10.01\n" + line + "\n")
    with pytest.raises(InputRejected) as caught:
        read_ticks(path)
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == (str(path), where)
    if field:
        assert problem.reason.startswith(f"{field}:")


def test_an_unknown_column_is_rejected_at_the_header(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text(HEADER.replace("bid1", "bid") + "2025-06-16 09:30:00,600000.SSE,10,10,0,0,11,9,10,10.01\n")
    with pytest.raises(InputRejected) as caught:
        read_ticks(path)
    assert [(p.line, "bid" in p.reason) for p in caught.value.problems] == [(1, True)]


def test_the_replay_clock_runs_at_the_given_speed():
    ticks = read_ticks(EXAMPLE)
    feed = ReplayFeed(ticks, ["600000.SSE"], speed=60)
    wall0 = datetime(2030, 1, 1, 12, 0, 0)
    assert feed.poll(wall0).at == datetime(2025, 6, 16, 9, 25)
    view = feed.poll(wall0.replace(second=6))  # 6 s × 60 = 6 replayed minutes: 09:31:00
    assert view.at == datetime(2025, 6, 16, 9, 31)
    [(symbol, ind)] = view.rows
    assert (symbol, ind.time, ind.last) == ("600000.SSE", datetime(2025, 6, 16, 9, 31), 10.45)
    assert [a.rule for a in view.alerts] == ["gap_open"]
    assert not feed.finished
    end = feed.poll(wall0.replace(hour=13))  # long after the file's end: the clock stops at the last tick
    assert feed.finished and end.at == datetime(2025, 6, 16, 9, 40)
    assert [a.rule for a in end.alerts] == ["gap_open", "approaching_limit_up", "price_spike", "limit_up_sealed"]
    assert dict(end.rows)["600000.SSE"].sealed_up


def test_once_prints_one_frame_and_bad_input_is_one_line(tmp_path):
    done = run_cli("monitor", "--ticks", str(EXAMPLE), "--once", home=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "limit_up_sealed" in done.stdout and "600000.SSE" in done.stdout and "封↑" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "2025-06-16 09:30:00,600000.SSE,x,10,0,0,11,9,10,10.01\n")
    refused = run_cli("monitor", "--ticks", str(bad), "--once", home=tmp_path, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [f"error: {bad}:2: last: 'x' is not a number"]
    piped = run_cli("monitor", "--ticks", str(EXAMPLE), home=tmp_path, timeout=60)  # no terminal, no --once
    assert piped.returncode == 2 and piped.stdout == "" and len(piped.stderr.splitlines()) == 1
    no_app = run_cli("monitor", "--gateway", "xt", "--watchlist", "A_SHARE", "--once", home=tmp_path, timeout=60)
    assert no_app.returncode == 2 and len(no_app.stderr.splitlines()) == 1


@pytest.mark.parametrize("quit_key", ["q", "\x03", "SIGTERM"], ids=["q", "ctrl-c", "sigterm"])
def test_scripted_terminal_session(tmp_path, quit_key):
    pexpect = pytest.importorskip("pexpect")
    pyte = pytest.importorskip("pyte")
    columns, lines = 80, 30  # a standard SSH terminal
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    # the size comes from the pty alone (an inherited COLUMNS would override it)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, [str(ROOT / "run.py"), "monitor", "--ticks", str(EXAMPLE), "--speed", "0",
                                           "--refresh", "0.2", "--home", str(tmp_path)],
                          cwd=str(tmp_path), dimensions=(lines, columns), timeout=30, env=env)
    raw = bytearray()

    def pump(until, seconds: float = 30.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                chunk = b""
            except pexpect.EOF:
                break
            raw.extend(chunk)
            stream.feed(chunk)
            text = "\n".join(screen.display)
            if until(text):
                return text
        return "\n".join(screen.display)

    try:
        shown = pump(lambda text: "limit_up_sealed" in text and "000001.SZSE" in text)
        assert "limit_up_sealed" in shown, shown
        table = [line for line in shown.splitlines() if "600000.SSE" in line and "封↑" in line]
        assert table and "+10.00" in table[0], shown
        assert screen.cursor.hidden  # the live screen hides the cursor
        if quit_key == "SIGTERM":
            child.kill(signal.SIGTERM)
        else:
            child.send(quit_key)
        pump(lambda text: False, seconds=10)  # to EOF
        child.expect(pexpect.EOF, timeout=10)
        settings = termios.tcgetattr(child.child_fd)  # the pty's modes as the monitor left them
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, bytes(raw[-400:])
    assert settings[3] & termios.ECHO and settings[3] & termios.ICANON  # cbreak mode undone
    assert b"\x1b[?1049h" in raw and raw.rindex(b"\x1b[?1049l") > raw.rindex(b"\x1b[?1049h")  # main screen back
    assert not screen.cursor.hidden


def test_the_live_feed_is_the_monitor_apps_engine_on_xt(fake_xt_trading, monkeypatch, tmp_path):
    """``--gateway xt``'s feed over vnpy_xt's real XtGateway on the fake xtquant (skipped without the app)."""
    pytest.importorskip("vnpy_rotation.apps.monitor.engine")
    import vnpy_xt  # noqa: F401  imported after the fake is installed: binds to it

    from vnpy_rotation.apps.rotation import live_daemon
    from vnpy_rotation.tui.live import xt_feed

    broker = fake_xt_trading
    broker.market.add_instrument("600000.SH", "浦发银行", sector="沪深A股", pre_close=10.0)
    monkeypatch.setattr(sys.modules["vnpy_xt.xt_gateway"].XtMdApi, "lock_filepath", tmp_path / "xt_lock")
    monkeypatch.setattr(live_daemon, "xt_setting", lambda override=None: broker.gateway_setting())
    cwd = os.getcwd()
    feed = xt_feed(["600000.SSE"])
    try:
        gateway = feed.main_engine.get_gateway("XT")
        gateway.thread.join(5)
        broker.push_tick("600000.SH", 11.0, volume=1000, amount=1.1e6, open=10.5, pre_close=None,
                         bid_prices=[11.0, 10.99, 10.98, 10.97, 10.96], ask_prices=[0, 0, 0, 0, 0])
        broker.wait_delivered()
        deadline = time.monotonic() + 5
        while (row := dict(feed.poll(datetime.now()).rows)["600000.SSE"]) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert row is not None and (row.last, row.sealed_up, row.volume) == (11.0, True, 100_000)
    finally:
        feed.close()
        os.chdir(cwd)


def test_watchlist_by_pool_by_file_and_refusals(tmp_path):
    from vnpy_rotation.tui.watchlist import read_watchlist

    assert read_watchlist("OTHER") == ["518880.SSE", "511010.SSE"]  # configs/etf_pools.yaml
    good = tmp_path / "banks.yaml"
    good.write_text("name: banks\nsymbols: [600000.SSE, 000001.SZSE, 600000.SSE]\n")
    assert read_watchlist(str(good)) == ["600000.SSE", "000001.SZSE"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: [600000.SSE, 600000.SH]\n")
    with pytest.raises(InputRejected) as caught:
        read_watchlist(str(bad))
    assert [(p.source, "600000.SH" in p.reason) for p in caught.value.problems] == [(str(bad), True)]
    with pytest.raises(InputRejected) as caught:
        read_watchlist("NO_SUCH_POOL")
    assert caught.value.problems[0].source == "--watchlist"
    assert read_watchlist("NO_SUCH_POOL", required=False) is None  # the live monitor asks the app's lists


def test_a_tick_file_stamped_in_utc_replays_and_renders_in_china_time(tmp_path):
    path = tmp_path / "aware.csv"
    path.write_text("datetime,vt_symbol,last,pre_close,volume\n"
                    "2025-06-16T01:30:00+00:00,600000.SSE,10,10,100\n"
                    "2025-06-16T01:31:00+00:00,000001.SZSE,10,10,100\n"
                    "2025-06-16T01:35:00+00:00,000001.SZSE,10,10,200\n")
    view = ReplayFeed(read_ticks(path), speed=0).poll(datetime(2030, 1, 1))
    rows = dict(view.rows)
    assert rows["600000.SSE"].time == datetime(2025, 6, 16, 9, 30)  # naive China wall time
    # the quote times are compared with the alerts' without a TypeError
    assert table_cells(view)[0][-1] == "stale"


def test_a_repeated_column_is_rejected_at_the_header(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("datetime,vt_symbol,last,pre_close,datetime\n2025-06-16 09:30:00,600000.SSE,10,10,x\n")
    with pytest.raises(InputRejected) as caught:
        read_ticks(path)
    assert [(p.line, "datetime" in p.reason) for p in caught.value.problems] == [(1, True)]


def test_a_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_bytes(b"\xff\xfe" + HEADER.encode("utf-16-le"))
    with pytest.raises(InputRejected) as caught:
        read_ticks(path)
    assert [(p.source, p.line) for p in caught.value.problems] == [(str(path), None)]
    refused = run_cli("monitor", "--ticks", str(path), "--once", home=tmp_path, timeout=60)
    assert refused.returncode == 2 and refused.stdout == "" and len(refused.stderr.splitlines()) == 1
