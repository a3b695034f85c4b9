"""The daemon's session log (``OUT/sessions.csv``) and availability computed from it.

* a phase is written ``ok``, ``late`` (started past the tolerance), ``failed`` (its error, or an exception
  written and raised again) with exact times;
* a restart after an outage: every slot of the live schedule between the last row and the phase about to
  run is written ``missed`` (a weekend is not a gap), a torn last line from a crash is cut first;
* availability over a hand-built log: each slot counted once by its best row, a slot without rows missing;
* a replay writes exactly one row per replayed phase, on its simulated clock.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import pytest
from conftest import run_cli
from test_live_xt import fake_xt_trading, xt_module  # noqa: F401 (fixtures of the live daemon's test)

from vnpy_rotation.live.schedule import SHANGHAI, SessionTimes
from vnpy_rotation.live.session_log import (
    SESSIONS_FILE,
    SessionLog,
    Slot,
    live_schedule,
    read_rows,
    replay_phases,
    slots,
)
from vnpy_rotation.market.calendar import default_calendar
from vnpy_rotation.ops.availability import availability, read_log


def at(day: str, clock: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), SHANGHAI)


class Clock:
    """Returns the given times in turn."""

    def __init__(self, *times: datetime) -> None:
        self.times = list(times)

    def __call__(self) -> datetime:
        return self.times.pop(0)


def test_a_phase_row_is_ok_late_or_failed_with_its_times(tmp_path):
    log = SessionLog(tmp_path)
    open_slot = Slot(date(2024, 7, 1), "open", at("2024-07-01", "09:31"))
    retry = Slot(date(2024, 7, 1), "retry", at("2024-07-01", "10:00"))
    deadline = Slot(date(2024, 7, 1), "deadline", at("2024-07-01", "14:50"))
    close = Slot(date(2024, 7, 1), "close", at("2024-07-01", "15:30"))
    assert log.run(open_slot, lambda: None, Clock(at("2024-07-01", "09:35"), at("2024-07-01", "09:36"))) == "ok"
    assert log.run(retry, lambda: None, Clock(at("2024-07-01", "10:05:01"), at("2024-07-01", "10:06"))) == "late"
    assert log.run(deadline, lambda: "the strategy stopped: boom",
                   Clock(at("2024-07-01", "14:50"), at("2024-07-01", "14:51"))) == "failed"

    def crash() -> None:
        raise TimeoutError("the event engine did not drain")

    with pytest.raises(TimeoutError):
        log.run(close, crash, Clock(at("2024-07-01", "15:30"), at("2024-07-01", "15:32")))
    rows = read_rows(tmp_path / SESSIONS_FILE)
    assert rows.values.tolist() == [
        ["2024-07-01", "open", "2024-07-01T09:31:00.000+08:00", "2024-07-01T09:35:00.000+08:00",
         "2024-07-01T09:36:00.000+08:00", "ok", ""],
        ["2024-07-01", "retry", "2024-07-01T10:00:00.000+08:00", "2024-07-01T10:05:01.000+08:00",
         "2024-07-01T10:06:00.000+08:00", "late", ""],
        ["2024-07-01", "deadline", "2024-07-01T14:50:00.000+08:00", "2024-07-01T14:50:00.000+08:00",
         "2024-07-01T14:51:00.000+08:00", "failed", "the strategy stopped: boom"],
        ["2024-07-01", "close", "2024-07-01T15:30:00.000+08:00", "2024-07-01T15:30:00.000+08:00",
         "2024-07-01T15:32:00.000+08:00", "failed", "TimeoutError: the event engine did not drain"],
    ]


def test_a_restart_after_an_outage_writes_the_missed_phases_of_the_live_schedule(tmp_path):
    """Down from Friday 2024-07-05 after the retry at 10:00 to Tuesday 07-09 10:20: the rest of Friday and
    all of Monday are missed, the weekend is not; Tuesday's open (its window still open) runs late."""
    times = SessionTimes()
    calendar = default_calendar()
    log = SessionLog(tmp_path)
    friday = live_schedule(calendar, times, date(2024, 7, 5), date(2024, 7, 5))
    for slot in friday[:2]:
        log.run(slot, lambda: None, Clock(slot.at, slot.at))
    (tmp_path / SESSIONS_FILE).open("a").write("2024-07-05,retry,2024-07-05T10:30")  # torn by the crash

    restarted = SessionLog(tmp_path)
    assert restarted.latest == at("2024-07-05", "10:00")
    tuesday_open = Slot(date(2024, 7, 9), "open", at("2024-07-09", "09:31"))
    missed = restarted.fill_missed(live_schedule(calendar, times, restarted.latest.date(), tuesday_open.day),
                                   tuesday_open.at)
    restarted.run(tuesday_open, lambda: None, Clock(at("2024-07-09", "10:20"), at("2024-07-09", "10:21")))
    rows = read_log(tmp_path / SESSIONS_FILE)
    expected_missed = [("2024-07-05", p, t) for p, t in (("retry", "10:30"), ("retry", "13:30"),
                                                           ("deadline", "14:50"), ("close", "15:30"))]
    expected_missed += [("2024-07-08", p, t) for p, t in (("open", "09:31"), ("retry", "10:00"), ("retry", "10:30"),
                                                            ("retry", "13:30"), ("deadline", "14:50"),
                                                            ("close", "15:30"))]
    assert [(s.day.isoformat(), s.phase, s.at.strftime("%H:%M")) for s in missed] == expected_missed
    assert rows["outcome"].tolist() == ["ok", "ok"] + ["missed"] * 10 + ["late"]
    assert (rows["started_at"].iloc[2:12] == "").all()
    # nothing is missed again on the next phase
    assert restarted.fill_missed(live_schedule(calendar, times, date(2024, 7, 9), date(2024, 7, 9)),
                                 at("2024-07-09", "10:30")) == [Slot(date(2024, 7, 9), "retry", at("2024-07-09", "10:00"))]


def test_availability_counts_each_slot_once_by_its_best_row():
    """Two replay days = 8 slots. Day 1: all ok, its open re-run late after a restart (still counts once).
    Day 2: open 6 min late, retry failed, deadline missed, close without a row. Available: 4 of 8; with a
    10-minute tolerance the late open counts too: 5 of 8."""
    schedule = slots([date(2024, 7, 1), date(2024, 7, 2)], replay_phases(SessionTimes()))

    def row(slot: Slot, outcome: str, late: float | None = 0.0) -> dict:
        started = "" if late is None else (slot.at + timedelta(minutes=late)).isoformat(timespec="milliseconds")
        return {"date": slot.day.isoformat(), "phase": slot.phase, "scheduled_at": slot.at.isoformat(timespec="milliseconds"),
                "started_at": started, "finished_at": started, "outcome": outcome, "detail": ""}

    log = pd.DataFrame([row(s, "ok") for s in schedule[:4]] + [row(schedule[0], "late", 50),
                        row(schedule[4], "late", 6), row(schedule[5], "failed"), row(schedule[6], "missed", None)])
    result = availability(log, schedule)
    assert (result.scheduled, result.available, result.late, result.failed, result.missed, result.absent) == \
        (8, 4, 1, 1, 1, 1)
    assert result.value == 0.5
    assert result.slots["outcome"].tolist() == ["ok", "ok", "ok", "ok", "late", "failed", "missed", "absent"]
    assert availability(log, schedule, tolerance=timedelta(minutes=10)).value == 5 / 8


def test_a_bad_outcome_in_the_log_is_refused_by_line(tmp_path):
    from vnpy_rotation.errors import InputRejected

    path = tmp_path / SESSIONS_FILE
    path.write_text("date,phase,scheduled_at,started_at,finished_at,outcome,detail\n"
                    "2024-07-01,open,2024-07-01T09:31:00+08:00,,,ok,\n"
                    "2024-07-01,retry,2024-07-01T10:00:00+08:00,,,fine,\n", encoding="utf-8")
    with pytest.raises(InputRejected) as refused:
        read_log(path)
    assert refused.value.problems[0].line == 3


def test_a_replay_writes_one_row_per_phase_on_its_simulated_clock(tmp_path):
    out = tmp_path / "replay"
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-06-24",
                   "--end", "2024-07-05", "--out", str(out), home=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = read_log(out / SESSIONS_FILE)
    sessions = pd.read_csv(out / "daily_summary.csv")["date"].tolist()
    assert len(sessions) == 10
    expected = slots([date.fromisoformat(d) for d in sessions], replay_phases(SessionTimes()))
    assert list(zip(rows["date"], rows["phase"], rows["scheduled_at"])) == [s.key for s in expected]
    assert (rows["outcome"] == "ok").all() and (rows["started_at"] == rows["scheduled_at"]).all()
    assert (rows["finished_at"] >= rows["started_at"]).all()
    # resuming the finished run replays nothing and writes nothing
    again = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-06-24",
                    "--end", "2024-07-05", "--out", str(out), home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(read_log(out / SESSIONS_FILE)) == 40


def test_the_live_daemon_restarted_after_a_down_day_logs_it_missed_and_its_own_phases(xt_module, fake_xt_trading,
                                                                                      tmp_path):
    """``run_live`` through vnpy_xt over the fake MiniQMT on a fake clock at Monday 2025-06-16 10:00; its log's
    last row is Thursday's close: Friday's four phases are written missed, then Monday's open and retry run
    late (started at 10:00), the deadline and the close on time."""
    from test_live_xt import DAY, GatedClock, push_ticks

    from vnpy_rotation.apps.rotation.daemon import TradeSpec
    from vnpy_rotation.apps.rotation.live_daemon import run_live
    from vnpy_rotation.backtest.config import BacktestConfig
    from vnpy_rotation.live.plan import OrderPlan, StrategyState
    from vnpy_rotation.live.session_log import live_phases
    from vnpy_rotation.live.state_file import write_atomic

    broker = fake_xt_trading
    broker.auto_report = True
    symbols = ["510300.SSE", "510500.SSE"]
    out = tmp_path / "out"
    spec = TradeSpec("equal_weight", {"symbols": symbols}, BacktestConfig(), out)
    write_atomic(out / "state" / "equal_weight.json",
                 StrategyState(plan=OrderPlan("equal_weight", "2025-06-13", symbols, [0.2, 0.7])).to_json())
    times = SessionTimes(open=time(9, 31), retries=(time(9, 45),), deadline=time(10, 0, 0, 200_000),
                         close=time(10, 0, 0, 400_000))
    thursday = slots([date(2025, 6, 12)], live_phases(times))
    log = SessionLog(out)
    for slot in thursday:
        log.write(slot, slot.at, slot.at, "ok")
    clock = GatedClock(datetime.combine(DAY, time(10, 0), SHANGHAI))
    result: list = []
    import threading

    from fakes.fake_xttrader import wait_until

    thread = threading.Thread(target=lambda: result.append(run_live(
        spec, xt_module.XtGateway, broker.gateway_setting(), once=True, times=times, now=clock,
        output=lambda line: None)), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(broker.market.subscriptions()) == 2, "the strategy's subscriptions", 30.0)
        push_ticks(broker)
        broker.wait_delivered()
        clock.ready.set()
        thread.join(60.0)
    finally:
        clock.ready.set()
        thread.join(30.0)
    assert result == [0]
    rows = read_log(out / SESSIONS_FILE)
    assert list(zip(rows["date"], rows["phase"], rows["outcome"])) == [
        *(("2025-06-12", p, "ok") for p in ("open", "retry", "deadline", "close")),
        *(("2025-06-13", p, "missed") for p in ("open", "retry", "deadline", "close")),
        ("2025-06-16", "open", "late"), ("2025-06-16", "retry", "late"), ("2025-06-16", "deadline", "ok"),
        ("2025-06-16", "close", "ok")]
    assert (rows["started_at"].iloc[8:] == "2025-06-16T10:00:00.000+08:00").all()


def test_a_replay_killed_mid_phase_resumes_and_the_log_shows_the_phase_once_it_ran(tmp_path):
    """SIGKILL while the 3rd order of a rebalance goes out (inside an ``open`` phase): no row for that phase;
    the restart replays the day from its open, so that day's open has one row (run after the restart) and
    every earlier phase keeps its single row. Every slot is ok: availability 100 %."""
    out = tmp_path / "replay"
    args = ("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--start", "2024-06-24", "--end",
            "2024-07-05", "--out", str(out))
    crashed = run_cli(*args, home=tmp_path, env={"ROTATION_REPLAY_KILL": "before:3"})
    assert crashed.returncode == -9
    before = read_log(out / SESSIONS_FILE)
    assert before["outcome"].eq("ok").all() and before["phase"].iloc[-1] != "open"
    killed_day = (before["date"].iloc[-1] if before["phase"].iloc[-1] != "close"
                  else (pd.Timestamp(before["date"].iloc[-1]) + pd.offsets.BDay()).date().isoformat())
    resumed = run_cli(*args, home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_log(out / SESSIONS_FILE)
    assert rows.iloc[: len(before)].equals(before)  # appended to, never rewritten
    sessions = [date.fromisoformat(d) for d in pd.read_csv(out / "daily_summary.csv")["date"]]
    schedule = slots(sessions, replay_phases(SessionTimes()))
    result = availability(rows, schedule)
    assert (result.scheduled, result.available) == (40, 40)
    counts = rows.groupby(["date", "phase"]).size()
    assert counts[(killed_day, "open")] == 1
    assert (counts.drop((killed_day, "open")) >= 1).all()
    repeated = counts[counts > 1].index.tolist()  # the killed day's phases before the kill ran again
    assert all(day == killed_day for day, _ in repeated)
