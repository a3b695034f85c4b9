"""The canary release through the live stack, end to end on the bundled real data.

Two registered versions of ETF rotation (the shipped config as champion, ``top_n: 3`` as candidate) run in ONE
replay account through the live stack (replay gateway, RotationEngine, the risk app): ``run.py trade`` with a
``canary:`` section and a short stage table completes the ladder without trouble and rehearses the alias moves;
``run.py canary drill``'s injected trouble trips a rollback rule, as does the risk ladder halting the account (the
drill rehearses its alias moves in its own state); a manual approval promotes at the next close; a process killed with an
order in flight right after a promotion or a rollback resumes without sending any order twice and ends as the
uninterrupted run; a manual rollback, the risk app's downgrade request and its release freeze act at the next
close. The netting is checked from the files the run leaves: the broker's orders (no wash trade), the version books
against the broker's account at every close, the fills' fees against the books' fees.

The versions are created once per module and the home folder (database with the versions) is copied for each
scenario, so alias moves of one scenario never show in another's audit rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_cli

STRATEGY = "etf_rotation"
# A stage table short enough for a two-week window: promotion needs two sessions per stage.
LADDER = [{"name": "shadow", "share": 0.0, "min_sessions": 2}, {"name": "10pct", "share": 0.1, "min_sessions": 2},
          {"name": "50pct", "share": 0.5, "min_sessions": 2}, {"name": "full", "share": 1.0, "min_sessions": 2}]
LADDER_SPAN = ("--start", "2024-05-06", "--end", "2024-05-17")
DRILL_SPAN = ("--start", "2024-05-06", "--end", "2024-05-20")  # the default drill table trips before 05-20
SHARES_TOLERANCE = 1e-6  # version books may hold fractional shares from a re-scale; float sums, not a lot
FEE_KINDS = ("commission", "stamp_duty", "transfer_fee", "slippage")

# Runs ``run.py ARGS`` with an observer on the replay's daily journal: at every close it copies the strategy's
# state (the canary ledger with its books, just allocated) and the broker's book file to OUT/closes/DAY/, so the
# books can be reconciled with the broker at every close, not only at the last one. With CANARY_KILL_IN_GATES=DAY
# in the environment the process dies while the canary's gates of that close are evaluated (their backtest is the
# longest step of a close, the likeliest moment for a crash).
SNAPSHOT_DRIVER = """
import shutil, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])  # this checkout's package, as run.py imports it
from vnpy_rotation.runtime import settle_runtime
home = Path(sys.argv[2]); settle_runtime(home)
from vnpy_rotation.apps.rotation import journal
write = journal.DayJournal.__call__
def observed(self, strategy, progress, summary):
    write(self, strategy, progress, summary)
    folder = self.out / "closes" / summary["day"]
    folder.mkdir(parents=True, exist_ok=True)
    for name in (strategy + ".json", "replay_book.json"):
        shutil.copy(self.out / "state" / name, folder / name)
journal.DayJournal.__call__ = observed
import os, signal
from vnpy_rotation.apps.rotation import canary
decide = canary.CanaryDriver._decide
def killed_in_gates(self, instance, ledger, day, halted):  # CANARY_KILL_IN_GATES=DAY: die while the gates run
    if day.isoformat() == os.environ.get("CANARY_KILL_IN_GATES"):
        os.kill(os.getpid(), signal.SIGKILL)
    return decide(self, instance, ledger, day, halted)
canary.CanaryDriver._decide = killed_in_gates
from vnpy_rotation.cli.main import main
sys.exit(main(sys.argv[3:] + ["--home", str(home)]))
"""


# -- helpers -------------------------------------------------------------------------------------------------
def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def clone(base: Path, target: Path) -> Path:
    """A copy of a home folder (its database holds the versions and aliases; an OUT folder inside comes along)."""
    shutil.copytree(base, target)
    return target


def drill(home: Path, ids: dict[str, str], out: str, span: tuple[str, ...], config: Path | None = None,
          env: dict | None = None, observe: bool = False) -> subprocess.CompletedProcess:
    args = ["canary", "drill", "--strategy", STRATEGY, "--candidate", ids["candidate"], "--champion",
            ids["champion"], *span, "--out", str(home / out), *(["--config", str(config)] if config else [])]
    if not observe:
        return run_cli(*args, home=home, env=env)
    return subprocess.run([sys.executable, "-c", SNAPSHOT_DRIVER, str(ROOT), str(home), *args], cwd=home, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})


def trade_ladder(home: Path, env: dict | None = None, observe: bool = False) -> subprocess.CompletedProcess:
    """``run.py trade --gateway replay`` with the short stage table's ``canary:`` section (the real registry's
    aliases move, unlike a drill's rehearsal), into HOME/out."""
    args = ["trade", "--gateway", "replay", "--strategy", STRATEGY, *LADDER_SPAN, "--config",
            str(home / "ladder_trade.yaml"), "--out", str(home / "out")]
    if not observe:
        return run_cli(*args, home=home, env=env)
    return subprocess.run([sys.executable, "-c", SNAPSHOT_DRIVER, str(ROOT), str(home), *args], cwd=home,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})})


def ledger(out: Path) -> dict:
    return read(out / "state" / f"{STRATEGY}.json")["canary"]


def broker(out: Path) -> dict:
    return read(out / "state" / "replay_book.json")


def holdings(book: dict) -> dict[str, float]:
    out = {s: sum(float(lot[0]) for lot in lots) for s, lots in book["lots"].items()}
    return {s: v for s, v in out.items() if abs(v) > SHARES_TOLERANCE}


def real_books(canary: dict) -> dict[str, dict]:
    return {role: book for role, book in canary["books"].items() if not book["paper"]}


def assert_books_equal_broker(canary: dict, account: dict, where: str) -> None:
    """The real version books' shares sum to the broker's position of every symbol, their cash to its cash."""
    summed: dict[str, float] = defaultdict(float)
    for book in real_books(canary).values():
        for symbol, shares in holdings(book).items():
            summed[symbol] += shares
    positions = {s: float(v) for s, v in account["positions"].items() if v}
    for symbol in set(summed) | set(positions):
        assert abs(summed.get(symbol, 0.0) - positions.get(symbol, 0.0)) <= SHARES_TOLERANCE, (where, symbol)
    cash = sum(float(book["cash"]) for book in real_books(canary).values())
    assert abs(cash - float(account["cash"])) <= 0.005 + 1e-9, (where, cash, account["cash"])


def assert_books_equal_last_canary_close(out: Path) -> None:
    """The books as the canary left them against the account at its last close (the daily summary's positions
    and cash, in cents): after a canary ends the strategy trades on without version books."""
    canary = ledger(out)
    summary = read(out / "journal" / f"{canary['allocated_day']}.json")["summary"]
    assert_books_equal_broker(canary, summary, canary["allocated_day"])


def sessions(canary: dict) -> list[tuple]:
    return [(s["day"], s["stage"], s["status"], s["event"], s["reason"]) for s in canary["sessions"]]


def machine(canary: dict) -> dict:
    """The release's state machine (stored as its own JSON text inside the ledger)."""
    return json.loads(canary["machine"])


def transitions(canary: dict) -> list[tuple[str, str, str]]:
    """(day, event, to status/stage index) of every change of status or stage."""
    return [(t["day"], t["event"], f"{t['to_status']}/{t['to_stage']}") for t in machine(canary)["history"]
            if t["from_status"] != t["to_status"] or t["from_stage"] != t["to_stage"]]


def broker_orders(out: Path) -> list[dict]:
    return sorted(broker(out)["orders"].values(), key=lambda o: int(o["order_id"]))


def trades(out: Path) -> pd.DataFrame:
    frame = pd.read_csv(out / "trades.csv")
    return frame.sort_values(["datetime", "vt_symbol", "direction", "volume"]).reset_index(drop=True)


def alias_history(home: Path) -> list[dict]:
    done = run_cli("version", "history", "--strategy", STRATEGY, "--json", home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def first_order_after(orders: list[dict], day: str, nth: int = 1) -> int:
    """The process-wide number of the ``nth`` order the broker received in the first session after ``day``."""
    later = [o for o in orders if o["day"] > day]
    session = [o for o in later if o["day"] == later[0]["day"]]
    assert len(session) >= nth, session
    return int(session[nth - 1]["order_id"])


def raise_risk_flag(out: Path, flag: str, day: date, reason: str) -> None:
    from vnpy_rotation.apps.risk.state_file import RiskStateFile

    state = RiskStateFile(out / "state")
    state.raise_flag(flag, STRATEGY, day, reason)
    state.save()


# -- fixtures: the versions once, then one replay per scenario --------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A home with the champion (configs/etf_rotation.yaml) and the candidate (the same with top_n 3) registered."""
    home = tmp_path_factory.mktemp("canary_base")
    shipped = ROOT / "configs" / "etf_rotation.yaml"
    variant = home / "variant.yaml"
    raw = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    variant.write_text(yaml.safe_dump({**raw, "strategy": {"top_n": 3}}), encoding="utf-8")
    ids = {}
    for role, config in (("champion", shipped), ("candidate", variant)):
        done = run_cli("version", "create", "--strategy", STRATEGY, "--config", str(config), home=home)
        assert done.returncode == 0, done.stderr
        ids[role] = re.search(r"created: \S+ version (\w+)", done.stdout).group(1)
    (home / "ladder_trade.yaml").write_text(yaml.safe_dump(
        {**raw, "canary": {"candidate": ids["candidate"], "stages": LADDER}}), encoding="utf-8")
    done = run_cli("version", "alias", ids["champion"], "champion", "--why", "in production", "--who", "tester",
                   home=home)
    assert done.returncode == 0, done.stderr
    return home, ids


@pytest.fixture(scope="module")
def ladder(base, tmp_path_factory):
    """The short stage table without trouble, observed at every close: (home, out, ids)."""
    home = clone(base[0], tmp_path_factory.mktemp("ladder") / "home")
    done = trade_ladder(home, observe=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return home, home / "out", base[1]


@pytest.fixture(scope="module")
def promotion_kill(base, ladder, tmp_path_factory):
    """The ladder's run killed right after the broker booked the 3rd order of the session after the first
    promotion (the stage change rescales the books and re-applies both targets: orders). Not resumed."""
    reference = ladder[1]
    promoted = next(t for t in transitions(ledger(reference)) if t[1] == "promote")[0]
    n = first_order_after(broker_orders(reference), promoted, nth=3)
    home = clone(base[0], tmp_path_factory.mktemp("promotion_kill") / "home")
    crashed = trade_ladder(home, env={"ROTATION_REPLAY_KILL": f"after:{n}"})
    assert crashed.returncode == -9, crashed.stderr
    return home, promoted


def resumed_copy(promotion_kill, target: Path) -> Path:
    """A copy of the killed run (home, database and OUT) to resume in its own way."""
    return clone(promotion_kill[0], target)


@pytest.fixture(scope="module")
def rollback_drill(base, tmp_path_factory):
    """``run.py canary drill`` with its default stage table and injected trouble."""
    home = clone(base[0], tmp_path_factory.mktemp("drill") / "home")
    done = drill(home, base[1], "out", DRILL_SPAN, observe=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return home, home / "out", base[1]


@pytest.fixture(scope="module")
def halted(base, tmp_path_factory):
    """A champion with a deliberately tight account ladder (HALTED at -1.5 % from the peak, flattening) beside the
    candidate through the March 2024 fall: the ladder halts the account during the candidate's 20 % stage."""
    home = clone(base[0], tmp_path_factory.mktemp("halted") / "home")
    raw = yaml.safe_load((ROOT / "configs" / "etf_rotation.yaml").read_text(encoding="utf-8"))
    raw["backtest"]["risk"]["ladder"] = {"reduce_at": 0.01, "halt_at": 0.015, "recover_at": 0.005, "cooldown": 5,
                                         "halt_cooldown": 5, "flatten": True}
    (home / "tight.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    done = run_cli("version", "create", "--strategy", STRATEGY, "--config", str(home / "tight.yaml"), home=home)
    assert done.returncode == 0, done.stderr
    ids = {**base[1], "champion": re.search(r"created: \S+ version (\w+)", done.stdout).group(1)}
    stages = [{"name": "shadow", "share": 0.0, "min_sessions": 2}, {"name": "20pct", "share": 0.2, "min_sessions": 30},
              {"name": "full", "share": 1.0, "min_sessions": 2}]
    (home / "halt.yaml").write_text(yaml.safe_dump({"canary": {"stages": stages}, "trouble": {}}), encoding="utf-8")
    done = drill(home, ids, "out", ("--start", "2024-02-26", "--end", "2024-03-29"), home / "halt.yaml", observe=True)
    assert done.returncode == 0, done.stdout + done.stderr  # rolled back
    return home, home / "out", ids


# -- 1. netting through the real stack -------------------------------------------------------------------------
# calm; with partial fills and resubmits; with the risk ladder's flattening sales
RUNS = pytest.mark.parametrize("run", ["ladder", "rollback_drill", "halted"])


@RUNS
def test_the_broker_gets_one_order_per_symbol_side_and_round_and_never_both_sides_in_a_session(run, request):
    _, out, _ = request.getfixturevalue(run)
    orders = broker_orders(out)
    assert len(orders) > 10
    sides: dict[tuple[str, str], set[bool]] = defaultdict(set)
    per_round = Counter()
    for o in orders:
        sides[(o["day"], o["symbol"])].add(o["buy"])
        per_round[(o["day"], o["symbol"], o["buy"], o["reference"].rsplit("|", 1)[-1])] += 1
    assert all(len(s) == 1 for s in sides.values()), {k: v for k, v in sides.items() if len(v) > 1}
    assert set(per_round.values()) == {1}
    # not vacuous: on some close the two versions wanted opposite trades in one symbol and got ONE order
    offsetting = []
    for path in sorted((out / "closes").iterdir()):
        canary = read(path / f"{STRATEGY}.json")["canary"]
        for symbol, n in (canary["netted"] if canary["allocated_day"] == path.name else {}).items():
            parts = [v for v in n["parts"].values() if abs(v) > SHARES_TOLERANCE]
            if len(parts) == 2 and parts[0] * parts[1] < 0 and n["transfers"]:
                offsetting.append((path.name, symbol))
    assert offsetting or run == "halted"  # (its versions never traded against each other)


@RUNS
def test_version_books_sum_to_the_broker_account_at_every_close_and_split_every_fee(run, request):
    _, out, _ = request.getfixturevalue(run)
    final = ledger(out)
    fills = pd.read_csv(out / "trades.csv")
    checked, both = [], []
    for path in sorted((out / "closes").iterdir()):
        canary = read(path / f"{STRATEGY}.json")["canary"]
        if canary is None or canary["allocated_day"] != path.name:
            continue  # no canary session closed here (after the hand-over)
        assert_books_equal_broker(canary, read(path / "replay_book.json"), path.name)
        so_far = fills[fills["datetime"] <= path.name]
        for kind in FEE_KINDS:
            books = sum(float(b["fees"][kind]) for b in real_books(canary).values())
            assert books == pytest.approx(float(so_far[kind].sum()), abs=1e-6), (path.name, kind)
        checked.append(path.name)
        if all(holdings(b) for b in real_books(canary).values()) and len(real_books(canary)) == 2:
            both.append(path.name)
    assert checked == [s["day"] for s in final["sessions"]]  # every canary session, each close
    # each version's P&L is its own and they add up: the real books' equity at every close is the account's
    account = pd.read_csv(out / "daily_summary.csv").set_index("date")["equity"]
    for day in checked:
        marked = [dict(b["equity"])[day] for b in real_books(final).values() if day in dict(b["equity"])]
        assert sum(marked) == pytest.approx(account[day], abs=0.01), day
    assert both  # closes where both versions held shares in the one account
    assert fills["commission"].sum() > 0


# -- 2. the promotion ladder completes -------------------------------------------------------------------------
def test_the_ladder_completes_and_hands_the_strategy_and_the_aliases_to_the_candidate(ladder):
    home, out, ids = ladder
    canary = ledger(out)
    moves = transitions(canary)
    assert [(event, to) for _, event, to in moves] == [("promote", "staged/1"), ("promote", "staged/2"),
                                                       ("promote", "staged/3"), ("promote", "complete/3")]
    stage_days = Counter(s["stage"] for s in canary["sessions"])
    assert all(stage_days[stage["name"]] >= 2 for stage in LADDER)
    completed = moves[-1][0]
    setting = read(out / "state" / "rotation_strategy_setting.json")[STRATEGY]
    candidate = json.loads(run_cli("version", "show", ids["candidate"], "--json", home=home).stdout)
    assert setting["version"] == ids["candidate"] and setting["settings"] == candidate["settings"]
    # a paper replay rehearses the release: its alias moves are kept in its state, the registry keeps only the
    # champion the tester set
    rows = alias_history(home)
    assert [(r["alias"], r["version_id"], r["who"]) for r in rows] == [("champion", ids["champion"], "tester")]
    log = canary["alias_log"]
    assert [(m["alias"], m["version"], m["who"]) for m in log] == [
        ("candidate", ids["candidate"], "run.py"), ("champion", ids["champion"], "run.py"),
        ("last_stable", ids["champion"], "canary"), ("champion", ids["candidate"], "canary"),
        ("candidate", None, "canary")]
    assert all(m["why"] == f"canary complete on {completed}" for m in log[2:])
    listed = {v["id"]: v["aliases"] for v in json.loads(run_cli("version", "list", "--json", home=home).stdout)}
    assert listed == {ids["candidate"]: [], ids["champion"]: ["champion"]}


# -- 3. the drill: a rollback rule trips on injected trouble ------------------------------------------------------
def test_the_drill_rolls_back_on_a_measured_gate_and_retires_the_candidate(rollback_drill):
    home, out, ids = rollback_drill
    for name in ("drill.md", "drill_sessions.csv", "drill_stages.csv"):
        assert (out / name).is_file()
    stages = pd.read_csv(out / "drill_stages.csv")
    trip = stages[stages["event"] == "rollback"]
    assert len(trip) == 1 and trip["to"].iloc[0].startswith("rolling_back/")
    day = trip["day"].iloc[0]
    gates = pd.read_csv(out / "drill_sessions.csv")
    failed = gates[(gates["date"] == day) & (gates["kind"] == "rollback") & (gates["passed"] == False)]  # noqa: E712
    assert len(failed)
    assert all(name in trip["reason"].iloc[0] for name in failed["gate"])
    assert stages["to"].iloc[-1].startswith("rolled_back/")
    canary = ledger(out)
    assert not holdings(canary["books"]["candidate"])
    assert_books_equal_last_canary_close(out)
    # a drill rehearses its alias moves in its own state: the registry keeps only the champion row set before
    retired = [m for m in canary["alias_log"] if m["alias"] == "candidate" and m["version"] is None]
    assert len(retired) == 1 and retired[0]["who"] == "canary"
    assert retired[0]["why"].startswith(f"rolled back on {day}: ") and failed["gate"].iloc[0] in retired[0]["why"]
    assert [(r["alias"], r["who"]) for r in alias_history(home)] == [("champion", "tester")]


def test_the_drill_records_one_experiment(rollback_drill):
    home, out, ids = rollback_drill
    done = run_cli("experiments", "list", "--kind", "drill", "--limit", "0", "--json", home=home)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    stages = pd.read_csv(out / "drill_stages.csv")
    assert (row["status"], row["exit_code"], row["out_dir"]) == ("ok", 0, str(out))
    assert (row["inputs"]["extra"]["candidate"], row["inputs"]["extra"]["champion"]) == (ids["candidate"],
                                                                                      ids["champion"])
    assert row["results"]["rolled_back"] is True
    assert row["results"]["tripped_on"] == stages.loc[stages["event"] == "rollback", "day"].iloc[0]
    # the sessions it ran: the drill ends when the canary does, before the requested --end
    sessions = pd.read_csv(out / "daily_summary.csv")["date"]
    assert (row["inputs"]["start"], row["inputs"]["end"]) == (sessions.iloc[0], sessions.iloc[-1])
    assert row["inputs"]["start"] == DRILL_SPAN[1] and row["inputs"]["end"] < DRILL_SPAN[3]


def test_the_risk_ladder_halting_the_account_rolls_the_canary_back_and_its_sales_are_shared_by_the_books(halted):
    _, out, _ = halted
    canary = ledger(out)
    rung = pd.read_csv(out / "daily_summary.csv").set_index("date")["risk_rung"]
    trip = [s for s in canary["sessions"] if s["event"] == "rollback"]
    assert len(trip) == 1 and rung[trip[0]["day"]] == "HALTED" and (rung[:trip[0]["day"]].iloc[:-1] != "HALTED").all()
    failed = [g["name"] for g in trip[0]["gates"] if g["kind"] == "rollback" and g["passed"] is False]
    assert failed == ["halt"]
    assert machine(canary)["status"] == "rolled_back"
    fills = pd.read_csv(out / "trades.csv")
    assert fills["reason"].str.startswith("ladder").any()  # the flattening sales went through the version books
    assert not holdings(canary["books"]["candidate"])
    assert_books_equal_last_canary_close(out)


def test_rerunning_a_finished_drill_replays_nothing_more(rollback_drill, tmp_path_factory):
    """The drill stops after the session that ends the canary; the same command again resumes the folder and
    must find nothing left to do (not replay one more session each time)."""
    home = clone(rollback_drill[0], tmp_path_factory.mktemp("rerun") / "home")
    out = home / "out"
    before = sorted(p.name for p in (out / "journal").iterdir()), broker(out)
    again = drill(home, rollback_drill[2], "out", DRILL_SPAN)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (sorted(p.name for p in (out / "journal").iterdir()), broker(out)) == before


# -- 4. manual rollback and a refused approval --------------------------------------------------------------------
def test_manual_rollback_is_applied_at_the_next_close_and_the_capital_returns_to_the_champion(
        promotion_kill, tmp_path_factory):
    home = resumed_copy(promotion_kill, tmp_path_factory.mktemp("manual") / "home")
    out = home / "out"
    done = run_cli("rollback", "--strategy", STRATEGY, "--state", str(out / "state"), "--reason", "operator drill",
                   home=home)
    assert done.returncode == 0, done.stderr
    command = out / "state" / f"{STRATEGY}.canary_command.json"
    assert read(command)["event"] == "manual_rollback"
    resumed = trade_ladder(home)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert not command.exists()
    canary = ledger(out)
    moves = transitions(canary)
    manual = [m for m in moves if m[1] == "manual_rollback"]
    assert len(manual) == 1 and manual[0][2].startswith("rolling_back/")
    assert moves[-1][1] == "drained" and moves[-1][2].startswith("rolled_back/")
    assert manual[0][0] > promotion_kill[1]  # the session the process died in, closed after the restart
    books = canary["books"]
    assert not holdings(books["candidate"]) and abs(float(books["candidate"]["cash"])) < 0.005
    last = pd.read_csv(out / "daily_summary.csv").set_index("date")["equity"]
    drained_day = moves[-1][0]
    champion_equity = dict(books["champion"]["equity"])[drained_day]
    assert champion_equity == pytest.approx(last[drained_day], abs=0.01)
    retired = [m for m in canary["alias_log"] if m["alias"] == "candidate"][-1]  # a replay rehearses its aliases
    assert retired["version"] is None and retired["why"] == f"rolled back on {manual[0][0]}: cli: operator drill"


def test_approve_without_a_pending_approval_is_refused_and_writes_nothing(promotion_kill, tmp_path_factory):
    home = resumed_copy(promotion_kill, tmp_path_factory.mktemp("approve") / "home")
    state = home / "out" / "state"
    assert machine(ledger(home / "out"))["status"] == "staged"
    done = run_cli("canary", "approve", "--strategy", STRATEGY, "--reason", "looks fine", "--state", str(state),
                   home=home)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ")
    assert not (state / f"{STRATEGY}.canary_command.json").exists()


def test_a_manual_approval_written_while_a_promotion_waits_promotes_at_the_next_close(base, tmp_path_factory):
    home = clone(base[0], tmp_path_factory.mktemp("approval") / "home")
    config = home / "manual.yaml"
    config.write_text(yaml.safe_dump({"canary": {"stages": LADDER, "approval": "manual"}, "trouble": {}}),
                      encoding="utf-8")
    span = ("--start", "2024-05-06", "--end", "2024-05-14")
    # the process dies with the first order of the run in flight (the champion's first rebalance)
    crashed = drill(home, base[1], "out", span, config, env={"ROTATION_REPLAY_KILL": "before:1"})
    assert crashed.returncode == -9
    out = home / "out"
    waiting = read(out / "state" / f"{STRATEGY}.json")
    assert machine(waiting["canary"])["status"] == "awaiting_approval"  # every gate passed, in shadow
    killed_day = waiting["progress"]["day"]
    done = run_cli("canary", "approve", "--strategy", STRATEGY, "--reason", "gates reviewed", "--state",
                   str(out / "state"), home=home)
    assert done.returncode == 0, done.stderr
    resumed = drill(home, base[1], "out", span, config)
    assert resumed.returncode == 1, resumed.stderr  # no rollback
    canary = ledger(out)
    approved = [t for t in transitions(canary) if t[1] == "approve"]
    assert approved == [(killed_day, "approve", "staged/1")]
    assert next(s for s in canary["sessions"] if s["day"] == killed_day)["reason"] == "cli: gates reviewed"
    assert not (out / "state" / f"{STRATEGY}.canary_command.json").exists()
    assert canary["allocated_day"] > killed_day and holdings(canary["books"]["candidate"])  # capital moved in
    assert_books_equal_last_canary_close(out)


# -- 5. kill and restart during a promotion and during a rollback ---------------------------------------------
def assert_same_run(out: Path, reference: Path) -> None:
    references = [o["reference"] for o in broker_orders(out)]
    assert len(references) == len(set(references))  # no order sent twice
    # the same orders; one the dead process never sent goes out again under a new round's reference
    same = ("day", "symbol", "buy", "volume", "price", "traded", "status")
    assert [tuple(o[k] for k in same) for o in broker_orders(out)] == [
        tuple(o[k] for k in same) for o in broker_orders(reference)]
    pd.testing.assert_frame_equal(trades(out), trades(reference))
    assert sessions(ledger(out)) == sessions(ledger(reference))
    assert transitions(ledger(out)) == transitions(ledger(reference))
    assert_books_equal_last_canary_close(out)


@pytest.mark.parametrize("point", ["before", "after"])
@pytest.mark.parametrize("phase", ["promotion", "rollback"])
def test_killed_with_an_order_in_flight_after_a_stage_change_resumes_without_duplicate_orders(
        phase, point, base, request, tmp_path_factory):
    """SIGKILL at the 2nd order of the session after the first promotion (the books re-scaled to the new stage)
    or after the rollback decision (the candidate's capital moving back): before the broker got it (the restart
    sends it) or right after (the restart adopts it). The restart ends as the uninterrupted run."""
    run = request.getfixturevalue("ladder" if phase == "promotion" else "rollback_drill")
    reference = run[1]
    event = "promote" if phase == "promotion" else "rollback"
    changed = next(t for t in transitions(ledger(reference)) if t[1] == event)
    n = first_order_after(broker_orders(reference), changed[0], nth=2)
    home = clone(base[0], tmp_path_factory.mktemp(f"kill_{phase}_{point}") / "home")
    def again(env: dict | None = None) -> subprocess.CompletedProcess:
        return trade_ladder(home, env) if phase == "promotion" else drill(home, base[1], "out", DRILL_SPAN, env=env)

    crashed = again({"ROTATION_REPLAY_KILL": f"{point}:{n}"})
    assert crashed.returncode == -9
    state = read(home / "out" / "state" / f"{STRATEGY}.json")
    status = machine(state["canary"])
    assert f"{status['status']}/{status['stage']}" == changed[2]  # the stage change is on disk
    assert state["progress"]["day"] == next(o["day"] for o in broker_orders(reference) if o["day"] > changed[0])
    in_flight = [o for o in state["progress"]["orders"] if o["state"] == "intent"]
    assert len(in_flight) == 1
    assert (in_flight[0]["reference"] in {o["reference"] for o in broker_orders(home / "out")}) == (point == "after")
    resumed = again()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_run(home / "out", reference)
    if point == "after":  # the order in flight had reached the broker: adopted, every reference the reference's
        assert [o["reference"] for o in broker_orders(home / "out")] == [
            o["reference"] for o in broker_orders(reference)]


def test_killed_while_the_gates_of_a_close_run_the_restart_still_steps_that_session(ladder, base, tmp_path_factory):
    reference = ladder[1]
    promoted = next(t for t in transitions(ledger(reference)) if t[1] == "promote")[0]
    home = clone(base[0], tmp_path_factory.mktemp("kill_in_gates") / "home")
    crashed = trade_ladder(home, env={"CANARY_KILL_IN_GATES": promoted}, observe=True)
    assert crashed.returncode == -9
    resumed = trade_ladder(home)
    assert resumed.returncode == 0, resumed.stderr
    assert [s["day"] for s in ledger(home / "out")["sessions"]] == [s["day"] for s in ledger(reference)["sessions"]]
    assert transitions(ledger(home / "out")) == transitions(ledger(reference))


# -- 6. the risk app's flags ------------------------------------------------------------------------------------
def test_a_downgrade_request_rolls_the_canary_back_and_is_cleared_with_an_audit_row(
        base, promotion_kill, tmp_path_factory):
    home = resumed_copy(promotion_kill, tmp_path_factory.mktemp("downgrade") / "home")
    out = home / "out"
    raise_risk_flag(out, "downgrade_request", date.fromisoformat(promotion_kill[1]), "deviation 3.1% > 2%")
    resumed = trade_ladder(home)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    canary = ledger(out)
    rollback = [s for s in canary["sessions"] if s["event"] == "rollback"]
    assert len(rollback) == 1 and rollback[0]["reason"] == "risk engine downgrade request: deviation 3.1% > 2%"
    assert machine(canary)["status"] == "rolled_back"
    risk = read(out / "state" / "risk_state.json")
    assert not [f for f in risk["flags"].values() if f["flag"] == "downgrade_request"]
    cleared = [a for a in risk["audit"] if a["before"] == "downgrade_request"]
    assert len(cleared) == 1 and cleared[0]["scope"] == STRATEGY and cleared[0]["after"] == "cleared"
    assert cleared[0]["who"] == "canary"


def test_a_release_freeze_holds_the_promotion(base, ladder, promotion_kill, tmp_path_factory):
    home = resumed_copy(promotion_kill, tmp_path_factory.mktemp("freeze") / "home")
    out = home / "out"
    raise_risk_flag(out, "release_freeze", date.fromisoformat(promotion_kill[1]), "HALTED 2 sessions")
    resumed = trade_ladder(home)
    assert resumed.returncode == 0, resumed.stderr
    canary = ledger(out)
    assert machine(canary)["status"] == "staged" and machine(canary)["stage"] == 1  # never promoted again
    after = [s for s in canary["sessions"] if s["day"] > promotion_kill[1]]
    assert after and all(s["event"] == "hold" for s in after)
    # the close on which the uninterrupted run promoted out of this stage: every gate passed, the freeze held it
    promoted = next(t[0] for t in transitions(ledger(ladder[1])) if t[0] > promotion_kill[1])
    held = next(s for s in after if s["day"] == promoted)
    assert held["reason"].startswith("release freeze") and "HALTED 2 sessions" in held["reason"]
    assert all(g["passed"] is not False for g in held["gates"])
