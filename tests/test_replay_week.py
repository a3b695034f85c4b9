"""``run.py replay-week``: a "live" run folder made by a replay of two weeks of bundled data, replayed again for its
last complete week. Unaltered, the report has no differences (exit 0); with a fill's price moved and one order
(and its fill) missing from the live files, the difference CSV lists exactly those (exit 1)."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
from conftest import run_cli

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.ops.replay_week import DIFF_COLUMNS, SECTIONS, week_span

SPAN = ("--start", "2024-09-02", "--end", "2024-09-13")  # two ISO weeks: 2024-W36 and W37 (fills on 09-09)


@pytest.mark.parametrize("week, sessions, label", [
    (None, [date(2024, 9, 13)], "2024-W37"),  # the run ended on the week's last session: that week
    (None, [date(2024, 9, 11)], "2024-W36"),  # ended on a Wednesday: the week before is the last complete one
    (None, [date(2024, 9, 20)], "2024-W38"),  # 16-17 September closed (Mid-Autumn): 18-20 complete the week
    ("2024-09-11", [date(2024, 9, 20)], "2024-W37"),
    ("2024-W01", [date(2024, 9, 20)], "2024-W01"),
])
def test_the_week(week, sessions, label):
    assert week_span(week, sessions)[0] == label


def test_a_bad_week_is_refused():
    with pytest.raises(InputRejected, match="--week"):
        week_span("2024-W99", [date(2024, 9, 20)])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("replay_week_home")
    done = run_cli("trade", "--gateway", "replay", "--strategy", "etf_rotation", *SPAN, "--out", str(home / "live"),
                   home=home)
    assert done.returncode == 0, done.stderr
    return home


def week(home, live, out, *extra):
    return run_cli("replay-week", "--live", str(live), "--out", str(out), *extra, home=home)


def diff(out) -> pd.DataFrame:
    return pd.read_csv(out / "replay_week_diff.csv", dtype={"date": str})


def test_an_unaltered_week_has_no_differences(home, tmp_path):
    done = week(home, home / "live", tmp_path / "r")
    assert done.returncode == 0, done.stdout + done.stderr
    found = diff(tmp_path / "r")
    assert list(found.columns) == DIFF_COLUMNS and found.empty
    text = (tmp_path / "r" / "replay_week.md").read_text(encoding="utf-8")
    assert "# Weekly replay 2024-W37" in text  # the default: the run's last complete week
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)


def test_a_week_without_orders_has_the_same_template(home, tmp_path):
    """2024-W36 closed no fill on either side (the replay up to it has no fill at all: its backtest check too)."""
    done = week(home, home / "live", tmp_path / "r", "--week", "2024-09-04")
    assert done.returncode == 0, done.stdout + done.stderr
    assert diff(tmp_path / "r").empty
    text = (tmp_path / "r" / "replay_week.md").read_text(encoding="utf-8")
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == list(SECTIONS)
    assert "# Weekly replay 2024-W36" in text


def test_the_report_lists_exactly_the_altered_fill_and_the_missing_order(home, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(home / "live", live)
    trades = pd.read_csv(live / "trades.csv", dtype={"datetime": str})
    orders = pd.read_csv(live / "orders.csv", dtype={"date": str})
    on_day = trades["datetime"] == "2024-09-09"
    moved = on_day & (trades["vt_symbol"] == "513100.SSE")
    missing = "518880.SSE"
    assert moved.sum() == 1 and (on_day & (trades["vt_symbol"] == missing)).sum() == 1
    trades.loc[moved, "price"] = round(trades.loc[moved, "price"].iloc[0] * 1.01, 3)  # 1 % worse: ~100 bp
    trades[~(on_day & (trades["vt_symbol"] == missing))].to_csv(live / "trades.csv", index=False)
    orders[~((orders["date"] == "2024-09-09") & (orders["vt_symbol"] == missing))].to_csv(live / "orders.csv",
                                                                                         index=False)
    done = week(home, live, tmp_path / "r", "--week", "2024-W37")
    assert done.returncode == 1, done.stdout + done.stderr
    found = diff(tmp_path / "r")
    assert sorted(found[["date", "vt_symbol", "side", "kind", "field"]].itertuples(index=False, name=None)) == sorted([
        ("2024-09-09", "513100.SSE", "buy", "fill", "price"),
        ("2024-09-09", "513100.SSE", "buy", "slippage", "bp"),
        ("2024-09-09", missing, "buy", "order", "requested_volume"),
        ("2024-09-09", missing, "buy", "fill", "volume"),
    ])
    price = found[(found["kind"] == "fill") & (found["field"] == "price")].iloc[0]
    assert price["difference"] == pytest.approx(100.0, abs=4.0)  # bp; the price was rounded to the tick
    volume = found[(found["kind"] == "fill") & (found["field"] == "volume")].iloc[0]
    assert volume["live"] == 0 and volume["replay"] > 0 and volume["difference"] == -volume["replay"]


def test_user_errors_exit_2(home, tmp_path):
    (tmp_path / "empty").mkdir()
    done = week(home, tmp_path / "empty", tmp_path / "r")
    assert done.returncode == 2 and "run_parameters.json" in done.stderr and "Traceback" not in done.stderr
    done = week(home, home / "live", tmp_path / "r", "--week", "2024-W30")
    assert done.returncode == 2 and "--week" in done.stderr


TROUBLED = """
import sys
from datetime import date
from pathlib import Path
from vnpy_rotation.runtime import settle_runtime
settle_runtime(Path(sys.argv[1]))
from vnpy_rotation.apps.rotation.daemon import TradeSpec, claim_out_folder, run_parameters, run_replay
from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.live.trouble import Trouble
spec = TradeSpec("etf_rotation", {}, BacktestConfig(), Path(sys.argv[2]), date(2024, 9, 2), date(2024, 9, 13),
                 tolerance_bps=100.0, trouble=Trouble(extra_slippage_bps=50.0, symbols=("513100.SSE",)))
claim_out_folder(spec.out, run_parameters(spec, "replay"))
run_replay(spec)
"""


def test_a_live_run_with_injected_slippage_shows_that_fills_price_and_slippage(home, tmp_path):
    """The "live" account filled 513100 50 bp worse than the matcher (live/trouble.py); the clean replay did not."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TROUBLED, str(home), str(tmp_path / "live")], cwd=home,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    done = week(home, tmp_path / "live", tmp_path / "r")
    assert done.returncode == 1, done.stdout + done.stderr
    found = diff(tmp_path / "r")
    assert sorted(found[["date", "vt_symbol", "side", "kind", "field"]].itertuples(index=False, name=None)) == [
        ("2024-09-09", "513100.SSE", "buy", "fill", "price"), ("2024-09-09", "513100.SSE", "buy", "slippage", "bp")]
    assert found["difference"].tolist() == pytest.approx([50.0, 50.0], abs=8.0)  # bp, the price rounded to the tick
