"""``run.py kpi snapshot`` / ``kpi history`` end to end on a short real replay (the bundled data): the daemon
snapshots every session, the command's exit code is the gate, a rerun records nothing new, mistakes are clear."""

import json
import sqlite3

import pandas as pd
import pytest
from conftest import run_cli

SPAN = ("--start", "2024-06-24", "--end", "2024-07-12")  # three weekly rebalances of etf_rotation


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("kpi_home")


@pytest.fixture(scope="module")
def replay(home):
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--out", str(home / "run"),
                   home=home)
    assert done.returncode == 0, done.stderr
    return home / "run"


def kpi_rows(home):
    with sqlite3.connect(home / ".vntrader" / "database.db") as db:
        return db.execute("select date, scope, kpi, value, status from rotation_kpi order by seq").fetchall()


def test_the_daemon_snapshots_every_session(home, replay):
    sessions = pd.read_csv(replay / "daily_summary.csv")["date"].tolist()
    assert sorted(p.stem for p in (replay / "kpi").glob("kpi_*.json")) == [f"kpi_{d}" for d in sessions]
    assert sorted({r[0] for r in kpi_rows(home)}) == sessions


def test_snapshot_gate_values_and_idempotence(home, replay):
    before = kpi_rows(home)
    done = run_cli("kpi", "snapshot", "--run", str(replay), home=home)
    last = pd.read_csv(replay / "daily_summary.csv")["date"].iloc[-1]
    page = json.loads((replay / "kpi" / f"kpi_{last}.json").read_text(encoding="utf-8"))
    statuses = [r["status"] for r in page["rows"]]
    assert done.returncode == (1 if "breach" in statuses else 0), done.stderr
    assert {r["scope"] for r in page["rows"]} == {"etf_rotation", "account"}
    assert kpi_rows(home) == before  # the daemon recorded the same values: nothing new
    rows = {(r["scope"], r["kpi"]): r for r in page["rows"]}
    assert rows[("etf_rotation", "tracking_gap")]["value"] == pytest.approx(0.0, abs=1e-9)  # replay == backtest
    assert rows[("etf_rotation", "pnl")]["value"] == pytest.approx(rows[("etf_rotation", "pnl")]["baseline"])

    # a session with fills: the replay fills at the matcher's price, so the calibration error is 0 bp
    trades = pd.read_csv(replay / "trades.csv")
    day = trades["datetime"].iloc[0]
    done = run_cli("kpi", "snapshot", "--run", str(replay), "--date", day, home=home)
    page = json.loads((replay / "kpi" / f"kpi_{day}.json").read_text(encoding="utf-8"))
    calibration = next(r for r in page["rows"] if r["kpi"] == "fill_calibration_bp")
    assert calibration["value"] == pytest.approx(0.0, abs=1e-9) and calibration["status"] == "ok"
    assert kpi_rows(home) == before

    history = run_cli("kpi", "history", "--scope", "account", home=home)
    assert history.returncode == 0 and last in history.stdout


def test_mistakes_are_one_line_errors(home, replay, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kpi:\n  thresholds:\n    sharp: {op: '<', value: 0.3}\n", encoding="utf-8")
    done = run_cli("kpi", "snapshot", "--run", str(replay), "--config", str(bad), home=home)
    assert done.returncode == 2 and str(bad) in done.stderr and "Traceback" not in done.stderr
    done = run_cli("kpi", "snapshot", "--run", str(replay), "--date", "2024-06-22", home=home)  # a Saturday
    assert done.returncode == 2 and "--date" in done.stderr
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--config", str(bad),
                   "--out", str(tmp_path / "refused"), home=home)  # the daemon's thresholds: checked at the edge
    assert done.returncode == 2 and str(bad) in done.stderr and not (tmp_path / "refused").exists()
    done = run_cli("kpi", "snapshot", "--run", str(tmp_path / "nothing"), home=home)
    assert done.returncode == 2 and "run_parameters.json" in done.stderr
