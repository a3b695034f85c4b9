"""``run.py trade --gateway replay`` end to end on the bundled real data: the replay reproduces the
backtest's fills exactly (checked against ``run.py backtest``'s own trades.csv), a process killed in the
middle of a rebalance resumes without sending any order twice, and user mistakes are clear errors."""

import json

import pandas as pd
import pytest
from conftest import run_cli

from vnpy_rotation.backtest.engine import TRADE_COLUMNS

SPAN = ("--start", "2024-06-24", "--end", "2024-07-31")  # five weekly rebalances of etf_rotation


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("trade_home")


def replay(home, out, *extra, env=None):
    return run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--out", str(home / out),
                   *extra, home=home, env=env)


@pytest.fixture(scope="module")
def reference(home):
    done = replay(home, "ref")
    assert done.returncode == 0, done.stderr
    return home / "ref"


def book_references(out):
    book = json.loads((out / "state" / "replay_book.json").read_text(encoding="utf-8"))
    return [order["reference"] for order in book["orders"].values()]


def test_replay_writes_the_backtester_trade_columns_and_a_daily_summary(reference):
    trades = pd.read_csv(reference / "trades.csv")
    assert list(trades.columns) == TRADE_COLUMNS
    assert len(trades) > 10
    summary = pd.read_csv(reference / "daily_summary.csv")
    assert summary["date"].iloc[0] == "2024-06-24" and summary["date"].iloc[-1] == "2024-07-31"
    assert len(summary) == 28  # every session of the span
    assert summary["fills"].sum() == len(trades)
    daily = pd.read_csv(reference / "consistency.csv")
    assert (daily["differing_fills"] == 0).all() and daily["equity_diff"].abs().max() == 0


def test_replay_fills_equal_the_backtest_command(home, reference):
    done = run_cli("backtest", "--strategy", "etf_rotation", *SPAN, "--out", str(home / "bt"), home=home)
    assert done.returncode == 0, done.stderr
    backtest = pd.read_csv(home / "bt" / "trades.csv")
    live = pd.read_csv(reference / "trades.csv")
    columns = ["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission", "stamp_duty",
               "transfer_fee", "slippage"]
    backtest["datetime"] = pd.to_datetime(backtest["datetime"]).dt.strftime("%Y-%m-%d")
    key = ["datetime", "vt_symbol", "direction"]
    pd.testing.assert_frame_equal(backtest[columns].sort_values(key).reset_index(drop=True),
                                  live[columns].sort_values(key).reset_index(drop=True))
    equity = pd.read_csv(home / "bt" / "equity.csv")["equity"].round(2).to_numpy()
    assert (pd.read_csv(reference / "daily_summary.csv")["equity"].to_numpy() == equity).all()


@pytest.mark.parametrize("point", ["before", "after"])
def test_killed_mid_rebalance_resumes_without_duplicate_orders(home, reference, point):
    """SIGKILL while the 3rd order of a rebalance is in flight: before it reaches the broker (the restart
    must send it) or right after (the restart must adopt it, not send it again)."""
    out = f"killed_{point}"
    crashed = replay(home, out, env={"ROTATION_REPLAY_KILL": f"{point}:3"})
    assert crashed.returncode == -9
    state = json.loads((home / out / "state" / "etf_rotation.json").read_text(encoding="utf-8"))
    in_flight = [o for o in state["progress"]["orders"] if o["state"] == "intent"]
    assert len(in_flight) == 1  # the crash left an order whose fate the process did not know
    assert (in_flight[0]["reference"] in book_references(home / out)) == (point == "after")

    resumed = replay(home, out)
    assert resumed.returncode == 0, resumed.stderr
    references = book_references(home / out)
    assert len(references) == len(set(references)) == len(book_references(reference))
    pd.testing.assert_frame_equal(pd.read_csv(home / out / "trades.csv"), pd.read_csv(reference / "trades.csv"))


def test_vqm_replay_equals_its_backtest_on_the_bundled_stocks(home):
    done = run_cli("trade", "--gateway", "replay", "--strategy", "vqm", "--start", "2024-05-06", "--end",
                   "2024-08-20", "--out", str(home / "vqm"), home=home)
    assert done.returncode == 0, done.stderr
    daily = pd.read_csv(home / "vqm" / "consistency.csv")
    assert daily["backtest_fills"].sum() > 20  # two monthly rebalances of 20 names
    assert (daily["differing_fills"] == 0).all() and daily["equity_diff"].abs().max() == 0


def test_user_mistakes_are_errors_without_traceback(home):
    unknown = run_cli("trade", "--gateway", "replay", "--strategy", "nope", "--out", str(home / "x"), home=home)
    assert unknown.returncode == 2 and "--strategy" in unknown.stderr and "Traceback" not in unknown.stderr
    backwards = replay(home, "y", "--start", "2024-07-31", "--end", "2024-06-24")
    assert backwards.returncode == 2 and "Traceback" not in backwards.stderr
    live = run_cli("trade", "--gateway", "xt", "--strategy", "etf_rotation", "--out", str(home / "z"), home=home)
    assert live.returncode == 2 and "Traceback" not in live.stderr  # xtquant's native modules are Windows-only
    assert not (home / "z").exists()
