"""Replay == backtest with the risk engine on, end to end through ``run.py`` on the bundled real data.

The live stack's risk stage runs the backtest's compiled rules at every open and close: the same stock
stops, the same ladder rungs on the same closes, the same sales the next morning. The January–February
2024 sell-off is the proof: VQM with its default rules and the account ladder of ``configs/vqm.yaml``
(thresholds fixed in advance), and ETF rotation with a deliberately tight account ladder so that every
rung is exercised (REDUCING, HALTED with its flattening sales, the cool-down back to ACTIVE), including a
process killed while HALTED.
"""

import json

import pandas as pd
import pytest
from conftest import needs_real, run_cli

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
TIGHT = """backtest:
  risk:
    ladder: {reduce_at: 0.01, halt_at: 0.015, recover_at: 0.005, cooldown: 5, halt_cooldown: 5, flatten: true}
"""
ETF_SPAN = ("--start", "2024-01-02", "--end", "2024-03-29")
KEY = ["datetime", "vt_symbol", "direction"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("risk_replay")


@pytest.fixture(scope="module")
def tight(home):
    path = home / "tight.yaml"
    path.write_text(TIGHT, encoding="utf-8")
    return path


def trades(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["datetime"] = pd.to_datetime(frame["datetime"]).dt.strftime("%Y-%m-%d")
    return frame.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def etf_runs(home, tight):
    backtest = run_cli("backtest", "--strategy", "etf_rotation", "--config", str(tight), *ETF_SPAN,
                       "--out", str(home / "bt_etf"), home=home)
    assert backtest.returncode == 0, backtest.stderr
    replay = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--config", str(tight),
                     *ETF_SPAN, "--out", str(home / "rp_etf"), home=home)
    assert replay.returncode == 0, replay.stderr
    return home / "bt_etf", home / "rp_etf"


@needs_real
def test_every_rung_of_the_ladder_gives_the_same_fills_live_and_in_the_backtest(etf_runs):
    backtest, replay = etf_runs
    rungs = pd.read_csv(backtest / "risk_days.csv")
    assert {"REDUCING", "HALTED"} <= set(rungs["rung"])  # the tight ladder moved through every rung
    daily = pd.read_csv(replay / "consistency.csv")
    assert (daily["differing_fills"] == 0).all() and daily["equity_diff"].abs().max() == 0
    ours, theirs = trades(backtest / "trades.csv"), trades(replay / "trades.csv")
    assert ours["reason"].str.startswith("ladder").any()  # the flattening sales
    columns = KEY + ["volume", "price", "commission", "stamp_duty", "transfer_fee", "reason"]
    pd.testing.assert_frame_equal(ours[columns], theirs[columns])
    # The replay's daily summaries carry the rung it was in, the same as the backtest's per day.
    summary = pd.read_csv(replay / "daily_summary.csv")
    assert summary["risk_rung"].tolist() == rungs["rung"].tolist()


@needs_real
def test_killed_while_halted_the_restart_restores_the_ladder_and_finishes_identically(home, tight, etf_runs):
    backtest, replay = etf_runs
    fills = trades(replay / "trades.csv").sort_values(["datetime"], kind="stable")
    all_fills = pd.read_csv(replay / "trades.csv")
    first_ladder_sale = int(all_fills.index[all_fills["reason"].str.startswith("ladder")][0]) + 1
    out = home / "rp_killed"
    crashed = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--config", str(tight),
                      *ETF_SPAN, "--out", str(out), home=home,
                      env={"ROTATION_REPLAY_KILL": f"after:{first_ladder_sale}"})
    assert crashed.returncode == -9
    state = json.loads((out / "state" / "etf_rotation.json").read_text(encoding="utf-8"))
    assert state["risk"]["ladder_names"] == ["account"]
    assert state["risk"]["ladder_state"][0] == 2.0  # HALTED, on disk when the process died
    resumed = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", "--config", str(tight),
                      *ETF_SPAN, "--out", str(out), home=home)
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(trades(out / "trades.csv"), fills.sort_values(KEY).reset_index(drop=True))


@needs_real
def test_the_2024_selloff_vqm_replay_makes_the_backtests_decisions_with_its_stops_on(home):
    span = ("--start", "2023-12-01", "--end", "2024-03-29")
    config = str(REPO / "configs" / "vqm.yaml")
    backtest = run_cli("backtest", "--strategy", "vqm", "--config", config, *span, "--out", str(home / "bt_vqm"),
                       home=home)
    assert backtest.returncode == 0, backtest.stderr
    replay = run_cli("trade", "--gateway", "replay", "--strategy", "vqm", "--config", config, *span,
                     "--out", str(home / "rp_vqm"), home=home)
    assert replay.returncode == 0, replay.stderr
    daily = pd.read_csv(home / "rp_vqm" / "consistency.csv")
    assert (daily["differing_fills"] == 0).all() and daily["equity_diff"].abs().max() == 0
    ours, theirs = trades(home / "bt_vqm" / "trades.csv"), trades(home / "rp_vqm" / "trades.csv")
    stops = ours[ours["reason"].str.startswith("stock_stop")]
    assert len(stops) >= 5  # the sell-off fired the -8 % stock stop on several names
    pd.testing.assert_frame_equal(stops[KEY + ["volume", "price", "reason"]],
                                  theirs[theirs["reason"].str.startswith("stock_stop")][
                                      KEY + ["volume", "price", "reason"]].reset_index(drop=True)
                                  .set_axis(stops.index))
