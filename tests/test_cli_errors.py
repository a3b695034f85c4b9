"""``run.py`` end to end: every user mistake is one ``error:`` line and exit code 2 (never a traceback), a refused
command leaves a fresh home and its ``--out`` as it found them, and a span past the stored bars is clipped and
said, not padded with flat days."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, run_cli

from vnpy_rotation.backtest.config import MAX_CAPITAL
from vnpy_rotation.bundled import manifest
from vnpy_rotation.cli.gui_cmd import QT_XCB_PACKAGES, display_problem

TRADE_SPAN = ("--start", "2024-06-24", "--end", "2024-07-05")  # two weekly rebalances of etf_rotation
NO_DISPLAY = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One runtime folder with the bundled data, shared by the tests that need data."""
    folder = tmp_path_factory.mktemp("errors_home")
    done = run_cli("backtest", "--strategy", "equal_weight", "--out", str(folder / "reference"), home=folder)
    assert done.returncode == 0, done.stderr
    return folder


def run_elsewhere(*args: str, home, cwd) -> subprocess.CompletedProcess:
    """``run_cli`` from ``cwd``, for a ``--home`` that is not a folder to run in."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "--home", str(home)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def refused(done, flag: str | None = None) -> list[str]:
    """The error lines of a refused run, checked: exit 2, no traceback, every line an ``error:`` naming ``flag``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert lines and all(line.startswith("error: ") for line in lines), done.stderr
    if flag:
        assert flag in lines[0]
    return lines


def command(name: str, out, *extra: str) -> list[str]:
    """A valid invocation of ``name`` writing to ``out``, plus ``extra``."""
    base = {"backtest": ["backtest", "--strategy", "equal_weight"],
            "walkforward": ["walkforward", "--strategy", "momentum_topn", "--grid", "top_n=1,2"],
            "panel": ["panel"],
            "trade": ["trade", "--gateway", "replay", "--strategy", "etf_rotation"]}[name]
    return [*base, "--out", str(out), *extra]


COMMANDS = ("backtest", "walkforward", "panel", "trade")


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("dates,flag,day", [(("--start", "2030-01-01"), "--start", "2030-01-01"),
                                             (("--start", "2001-01-01", "--end", "2001-06-01"), "--end", "2001-06-01")],
                         ids=["after-calendar", "before-calendar"])
def test_dates_outside_the_calendar_are_refused(home, name, dates, flag, day):
    out = home / f"dates_{name}"
    lines = refused(run_cli(*command(name, out, *dates), home=home), flag)
    assert day in lines[0] and "2005-01-04" in lines[0]  # the date refused and the calendar's first day
    assert not out.exists()


def test_dates_inside_the_calendar_without_bars_are_refused(home):
    """The calendar reaches 2026-07-31, the bundled bars stop in 2024: nothing to trade on."""
    out = home / "no_bars"
    refused(run_cli(*command("trade", out, "--start", "2026-03-02"), home=home))
    assert not out.exists()


def test_span_past_the_stored_bars_is_clipped_and_warned(home):
    """A backtest with --start before the first bar and --end after the last one equals the one without them,
    and says so in metrics.json, report.md and report.html."""
    out = home / "padded"
    done = run_cli(*command("backtest", out, "--start", "2006-01-04", "--end", "2026-06-30"), home=home)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    reference = json.loads((home / "reference" / "metrics.json").read_text(encoding="utf-8"))
    for key in ("start", "end", "total_return", "annual_return", "annual_volatility", "monthly_win_rate", "sharpe"):
        assert metrics[key] == reference[key], key
    assert len(metrics["data_warnings"]) == len(reference["data_warnings"]) + 2
    equity = pd.read_csv(out / "equity.csv")
    assert equity["date"].iloc[-1] == str(metrics["end"])
    for warning in metrics["data_warnings"]:
        assert warning in (out / "report.md").read_text(encoding="utf-8")
    assert 'id="data-warnings"' in (out / "report.html").read_text(encoding="utf-8")


def test_walkforward_past_the_stored_bars_is_clipped_and_warned(home):
    runs = {}
    for name, extra in (("wf_default", ()), ("wf_padded", ("--end", "2026-06-30"))):
        done = run_cli(*command("walkforward", home / name, *extra), home=home)
        assert done.returncode in (0, 1), done.stderr  # 1: a flagged check, not a refusal
        runs[name] = json.loads((home / name / "summary.json").read_text(encoding="utf-8"))
    default, padded = runs["wf_default"], runs["wf_padded"]
    assert padded["span"] == default["span"] and padded["holdout"] == default["holdout"]
    assert padded["walk_forward_tests"] == default["walk_forward_tests"]
    assert len(padded["warnings"]) == len(default["warnings"]) + 1


def test_replay_past_the_stored_bars_is_clipped(home):
    """A replay asked to run past the data replays the same sessions as one that stops at the data."""
    sessions = {}
    for name, extra in (("replay_default", ()), ("replay_padded", ("--end", "2026-06-30"))):
        done = run_cli(*command("trade", home / name, "--start", "2024-09-16", *extra), home=home)
        assert done.returncode == 0, done.stdout + done.stderr
        sessions[name] = pd.read_csv(home / name / "daily_summary.csv")[["date", "equity"]]
    pd.testing.assert_frame_equal(sessions["replay_padded"], sessions["replay_default"])


def test_unknown_pool_names_the_file_the_field_and_the_pools(home, tmp_path):
    config = tmp_path / "pool.yaml"
    config.write_text("strategy:\n  pool: NOPE\n", encoding="utf-8")
    for strategy in ("equal_weight", "momentum_topn"):
        (line,) = refused(run_cli("backtest", "--strategy", strategy, "--config", str(config),
                                  "--out", str(tmp_path / "out"), home=home), str(config))
        assert "pool" in line and all(pool in line for pool in manifest()["pools"])
    config.write_text("strategy:\n  pools: [A_SHARE, NOPE]\n", encoding="utf-8")
    (line,) = refused(run_cli("backtest", "--strategy", "etf_rotation", "--config", str(config),
                              "--out", str(tmp_path / "out"), home=home), str(config))
    assert "pools" in line and "QDII" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, capital", [
    *(("backtest", c) for c in ("inf", "nan", "1e300", "1e15", str(MAX_CAPITAL * 1.01), "0", "-5")),
    *((name, c) for name in ("walkforward", "trade") for c in ("inf", "1e15")),
])
def test_capital_outside_the_range_is_refused(home, name, capital):
    out = home / f"capital_{name}"
    refused(run_cli(*command(name, out, "--capital", capital), home=home), "--capital")
    assert not out.exists()


def test_capital_in_a_config_file_is_checked_too(home, tmp_path):
    config = tmp_path / "rich.yaml"
    config.write_text("backtest:\n  capital: 1.0e+15\n", encoding="utf-8")
    refused(run_cli(*command("backtest", tmp_path / "out", "--config", str(config)), home=home), str(config))


def test_backtest_at_the_top_of_the_capital_range_is_exact(home):
    """The largest capital accepted still passes every accounting identity (in fen) and fills whole lots."""
    out = home / "top_capital"
    done = run_cli("backtest", "--strategy", "etf_rotation", "--capital", repr(MAX_CAPITAL), "--out", str(out),
                   home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["identities_ok"] and metrics["trade_count"] > 0
    trades = pd.read_csv(out / "trades.csv")
    assert (trades.loc[trades["direction"] == "buy", "volume"] % 100 == 0).all()
    assert pd.read_csv(out / "equity.csv")["equity"].iloc[0] == MAX_CAPITAL


@pytest.mark.parametrize("name", COMMANDS)
def test_out_pointing_at_a_file_is_refused(home, name):
    target = home / f"file_{name}.txt"
    target.write_text("keep me", encoding="utf-8")
    refused(run_cli(*command(name, target), home=home), "--out")
    assert target.read_text(encoding="utf-8") == "keep me"


def test_home_pointing_at_a_file_is_refused(tmp_path):
    target = tmp_path / "home.txt"
    target.write_text("keep me", encoding="utf-8")
    refused(run_elsewhere(*command("backtest", tmp_path / "out"), home=target, cwd=tmp_path), "--home")
    assert target.read_text(encoding="utf-8") == "keep me" and not (tmp_path / "out").exists()


def test_trade_rerun_resumes_same_parameters_and_refuses_others_unless_fresh(home):
    out = home / "rerun"
    first = run_cli(*command("trade", out, *TRADE_SPAN), home=home)
    assert first.returncode == 0, first.stdout + first.stderr
    trades = (out / "trades.csv").read_text(encoding="utf-8")
    stored = json.loads((out / "state" / "run_parameters.json").read_text(encoding="utf-8"))
    assert stored["parameters"]["backtest"]["capital"] == 1_000_000 and len(stored["sha256"]) == 64

    again = run_cli(*command("trade", out, *TRADE_SPAN), home=home)  # a restart: resumes, no flag needed
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "trades.csv").read_text(encoding="utf-8") == trades

    other = run_cli(*command("trade", out, *TRADE_SPAN, "--capital", "500000"), home=home)
    refused(other, "--out")
    assert (out / "trades.csv").read_text(encoding="utf-8") == trades
    assert json.loads((out / "state" / "run_parameters.json").read_text(encoding="utf-8")) == stored

    fresh = run_cli(*command("trade", out, *TRADE_SPAN, "--capital", "500000", "--fresh"), home=home)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr  # consistent with the backtest of 500 000
    restarted = json.loads((out / "state" / "run_parameters.json").read_text(encoding="utf-8"))
    assert restarted["parameters"]["backtest"]["capital"] == 500_000
    summary = pd.read_csv(out / "daily_summary.csv")
    assert summary["date"].is_unique and summary["equity"].iloc[0] < 600_000

    # --fresh starts over even when the parameters are the same: the earlier run's files go.
    marker = out / "journal" / "earlier_run.marker"
    marker.write_text("x", encoding="utf-8")
    same_fresh = run_cli(*command("trade", out, *TRADE_SPAN, "--capital", "500000", "--fresh"), home=home)
    assert same_fresh.returncode == 0, same_fresh.stdout + same_fresh.stderr
    assert not marker.exists()


def test_trade_xt_without_xtquant_says_what_trade_needs(home):
    from vnpy_rotation.data.xt_fetch import xtquant_native_problem

    if xtquant_native_problem() is None:
        pytest.skip("xtquant's native modules load here")
    (line,) = refused(run_cli("trade", "--gateway", "xt", "--strategy", "etf_rotation", "--out", str(home / "xt"),
                              home=home))
    assert "--client" not in line and "--token" not in line  # the data script's flags, which trade lacks
    assert "--gateway replay" in line and not (home / "xt").exists()


def test_gui_without_a_display_says_what_is_needed(tmp_path):
    (line,) = refused(run_cli("gui", home=tmp_path, env=NO_DISPLAY, timeout=120))
    assert "QT_QPA_PLATFORM=offscreen" in line and all(package in line for package in QT_XCB_PACKAGES)


@pytest.mark.parametrize("environ, platform, ok", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
    ({"QT_QPA_PLATFORM": "minimal"}, "linux", True),
    ({}, "linux", False),
    ({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "wayland"}, "linux", True),
    ({"QT_QPA_PLATFORM": "wayland"}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
    ({}, "win32", True),
    ({}, "darwin", True),
])
def test_display_problem_table(environ, platform, ok):
    assert (display_problem(environ, platform) is None) == ok


def test_display_set_but_xcb_libraries_missing(monkeypatch):
    from vnpy_rotation.cli import gui_cmd

    monkeypatch.setattr(gui_cmd, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4"])
    assert "libxcb-icccm.so.4" in display_problem({"DISPLAY": ":0"}, "linux")
    monkeypatch.setattr(gui_cmd, "missing_xcb_libraries", lambda: [])
    assert display_problem({"DISPLAY": ":0"}, "linux") is None


@pytest.mark.parametrize("args, env", [
    (command("backtest", "OUT", "--start", "2030-01-01"), None),
    (command("backtest", "OUT", "--capital", "inf"), None),
    (command("backtest", "OUT", "--config", "CONFIG"), None),  # an unknown pool, found after vnpy is loaded
    (command("walkforward", "OUT", "--start", "2001-01-01", "--end", "2001-06-01"), None),
    (command("panel", "OUT", "--pool", "NOPE"), None),
    (command("trade", "OUT", "--start", "2026-03-02"), None),  # fails after settling the runtime folder
    (["trade", "--gateway", "xt", "--strategy", "etf_rotation", "--out", "OUT"], None),
    (["gui"], NO_DISPLAY),
], ids=["calendar", "capital", "pool", "walkforward", "panel", "no-bars", "xt", "gui"])
def test_a_refused_command_leaves_a_fresh_home_empty(tmp_path, args, env):
    home, out, config = tmp_path / "home", tmp_path / "out", tmp_path / "pool.yaml"
    home.mkdir()
    config.write_text("strategy:\n  pool: NOPE\n", encoding="utf-8")
    args = [str(out) if a == "OUT" else str(config) if a == "CONFIG" else a for a in args]
    done = run_cli(*args, home=home, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert list(home.iterdir()) == [] and not out.exists()


def test_a_refused_command_removes_a_home_it_created(tmp_path):
    home = tmp_path / "new_home"
    refused(run_elsewhere(*command("backtest", tmp_path / "out", "--capital", "inf"), home=home, cwd=tmp_path))
    assert not home.exists()


def test_a_refused_command_keeps_what_an_existing_home_held(home):
    before = sorted(p.name for p in (home / ".vntrader").iterdir())
    refused(run_cli(*command("backtest", home / "kept", "--capital", "inf"), home=home))
    assert sorted(p.name for p in (home / ".vntrader").iterdir()) == before
    assert (home / "reference" / "metrics.json").exists()
