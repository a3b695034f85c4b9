"""``run.py trade --gateway replay --config FILE`` with top-level ``accounts:`` and ``strategies:`` end to end on the
bundled real data: two paper accounts with their own capital, three strategies, risk-parity allocation reviewed
weekly. Each strategy writes its own folder, every account reconciles with the sum of its strategies' books,
the allocation record changes on the scheduled Monday by the rule, no strategy holds more than its allocation,
and ``run.py stats`` reports per strategy and per account.

s1 (510300) and s2 (510500) share account a (1,000,000 CNY), s3 (159915, cap 0.4) trades account b (500,000 CNY);
two weeks: the first allocation at the close of Monday 2024-06-24, the re-allocation at the close of Monday 07-01.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

CONFIG = """\
accounts:
  - {id: a, gateway: REPLAY_A, kind: replay, capital: 1000000}
  - {id: b, gateway: REPLAY_B, kind: replay, capital: 500000}
strategies:
  - {name: s1, strategy: equal_weight, account: a, settings: {symbols: ['510300.SSE'], rebalance: daily}}
  - {name: s2, strategy: equal_weight, account: a, settings: {symbols: ['510500.SSE'], rebalance: daily}}
  - {name: s3, strategy: equal_weight, account: b, cap: 0.4, settings: {symbols: ['159915.SZSE'], rebalance: daily}}
allocation: {rule: risk_parity, lookback: 2, reserve: 0.05, min_change: 0.0, schedule: {every: weekly, day: 1}}
"""
SPAN = ("--start", "2024-06-24", "--end", "2024-07-05")
CAPITAL = {"a": 1_000_000.0, "b": 500_000.0}
GATEWAY = {"a": "REPLAY_A", "b": "REPLAY_B"}
ACCOUNT = {"s1": "a", "s2": "a", "s3": "b"}
SYMBOL = {"s1": "510300.SSE", "s2": "510500.SSE", "s3": "159915.SZSE"}
REVIEW = "2024-07-01"


def cents(amount: float) -> float:
    return math.floor(amount * 100.0 + 1e-6) / 100.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    home = tmp_path_factory.mktemp("several_home")
    config = home / "several.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    done = run_cli("trade", "--gateway", "replay", "--config", str(config), *SPAN, "--out", str(home / "out"),
                   home=home)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home, config, home / "out"


def summary(out, name) -> pd.DataFrame:
    return pd.read_csv(out / name / "daily_summary.csv")


def test_each_strategy_has_a_single_runs_files_in_its_folder(run):
    _, _, out = run
    sessions = summary(out, "s1")["date"].tolist()
    assert sessions[0] == "2024-06-24" and sessions[-1] == "2024-07-05" and len(sessions) == 10
    for name in SYMBOL:
        folder = out / name
        for file in ("trades.csv", "orders.csv", "daily_summary.csv", "sessions.csv", "state/run_parameters.json"):
            assert (folder / file).exists(), (name, file)
        journal = sorted(p.stem for p in (folder / "journal").glob("*.json"))
        assert journal == sessions  # one record per session and strategy: none overwrote another's
        assert {json.loads(p.read_text(encoding="utf-8"))["strategy"] for p in (folder / "journal").glob("*.json")} \
            == {name}
        assert sorted(p.name for p in (folder / "kpi").glob("kpi_*.json")) == [f"kpi_{d}.json" for d in sessions]
        trades = pd.read_csv(folder / "trades.csv")
        assert set(trades["vt_symbol"]) == {SYMBOL[name]} and summary(out, name)["fills"].sum() == len(trades)
    assert not (out / "journal").exists() and not (out / "trades.csv").exists()  # no single-run files at the top


def test_every_account_reconciles_with_its_strategies_books(run):
    _, _, out = run
    accounts = pd.read_csv(out / "accounts.csv")
    assert len(accounts) == 2 * 10
    for account, gateway in GATEWAY.items():
        mine = [n for n, a in ACCOUNT.items() if a == account]
        rows = accounts[accounts["account"] == account].set_index("date")
        assert (rows["gateway"] == gateway).all()
        for day, row in rows.iterrows():
            expected: dict[str, float] = {}
            flows = 0.0
            for name in mine:
                books = summary(out, name).set_index("date")
                for symbol, volume in json.loads(books.loc[day, "positions"]).items():
                    expected[symbol] = expected.get(symbol, 0.0) + volume
                trades = pd.read_csv(out / name / "trades.csv")
                trades = trades[trades["datetime"] <= day]
                fees = trades["commission"] + trades["stamp_duty"] + trades["transfer_fee"]
                flows += float((np.where(trades["direction"] == "sell", 1.0, -1.0) * trades["value"] - fees).sum())
            assert json.loads(row["positions"]) == {s: v for s, v in expected.items() if v}, (account, day)
            assert row["cash"] == pytest.approx(CAPITAL[account] + flows, abs=0.01), (account, day)
            assert row["cash_difference"] == 0.0 and json.loads(row["position_differences"]) == []
        # the paper broker's own book at the end: the same positions and cash
        book = json.loads((out / "state" / f"replay_book_{gateway}.json").read_text(encoding="utf-8"))
        last = rows.iloc[-1]
        assert {s: v for s, v in book["positions"].items() if v} == json.loads(last["positions"])
        assert book["cash"] == pytest.approx(last["cash"], abs=0.005)


def test_the_allocation_changed_on_the_scheduled_monday_by_the_rule(run):
    _, _, out = run
    stored = json.loads((out / "state" / "risk_state.json").read_text(encoding="utf-8"))
    assert [x["at"] for x in stored["allocations"]] == ["2024-06-24T15:00:00", f"{REVIEW}T15:00:00"]
    first = {x["strategy"]: x["amount"] for x in stored["allocations"][0]["lines"]}
    second = {x["strategy"]: x["amount"] for x in stored["allocations"][1]["lines"]}
    # no returns at the first close: equal shares of 95 % in account a; s3 at its cap of 40 % of account b
    assert first == {"s1": 475_000.0, "s2": 475_000.0, "s3": 200_000.0}
    # Monday 07-01: shares of account a ∝ 1 / σ of each strategy's last two daily returns, scaled to 1 - reserve
    accounts = pd.read_csv(out / "accounts.csv").set_index(["date", "account"])
    equity = {a: accounts.loc[(REVIEW, a), "equity"] for a in CAPITAL}
    assert {x["account"]: x["equity"] for x in stored["allocations"][1]["accounts"]} == equity

    def inverse_vol(name: str) -> float:
        curve = summary(out, name).set_index("date")["equity"]
        values = curve[curve.index <= REVIEW].to_numpy()
        return 1.0 / float(np.std((values[1:] / values[:-1] - 1.0)[-2:], ddof=1))

    raw = {n: inverse_vol(n) for n in ("s1", "s2")}
    expected = {n: cents(r / sum(raw.values()) * 0.95 * equity["a"]) for n, r in raw.items()}
    expected["s3"] = cents(0.4 * equity["b"])
    assert second == expected
    assert second["s1"] != first["s1"] and second["s2"] != first["s2"]
    assert stored["allocation"]["lines"] == stored["allocations"][1]["lines"]  # in force at the end


def test_no_strategy_holds_more_than_its_allocation(run):
    _, _, out = run
    stored = json.loads((out / "state" / "risk_state.json").read_text(encoding="utf-8"))
    decisions = [(x["at"][:10], {line["strategy"]: line["amount"] for line in x["lines"]}) for x in stored["allocations"]]
    bought = 0
    for name, symbol in SYMBOL.items():
        books = summary(out, name)
        trades = pd.read_csv(out / name / "trades.csv")
        for k, day in enumerate(books["date"]):
            buys = trades[(trades["datetime"] == day) & (trades["direction"] == "buy")]
            if buys.empty:
                continue
            # the allocation in force at the open of ``day``: decided at an earlier close
            amount = [a for at, a in decisions if at < day][-1][name]
            held = json.loads(books["positions"].iloc[k]).get(symbol, 0.0)
            assert held * float(buys["price"].max()) <= amount + 1e-6, (name, day)
            bought += 1
    assert bought >= 4  # every strategy's first buy, and buys after the re-allocation


def test_stats_per_strategy_and_account(run):
    home, _, out = run
    done = run_cli("stats", "--run", str(out), "--json", home=home)
    assert done.returncode == 0, done.stderr
    stats = {(x["scope"], x["name"], x["period"]): x for x in json.loads(done.stdout)}
    assert {k[:2] for k in stats} == {("strategy", "s1"), ("strategy", "s2"), ("strategy", "s3"),
                                      ("account", "REPLAY_A"), ("account", "REPLAY_B")}
    orders = {n: len(pd.read_csv(out / n / "orders.csv")) for n in SYMBOL}
    traded = {n: float(pd.read_csv(out / n / "trades.csv")["value"].sum()) for n in SYMBOL}
    for name in SYMBOL:
        total = stats[("strategy", name, "cumulative")]
        assert (total["orders"], total["day"]) == (orders[name], "2024-07-05")
        assert total["traded_value"] == pytest.approx(traded[name], abs=0.01)
    account_a = stats[("account", "REPLAY_A", "cumulative")]
    assert account_a["orders"] == orders["s1"] + orders["s2"]
    assert account_a["traded_value"] == pytest.approx(traded["s1"] + traded["s2"], abs=0.01)
    # --account: that account and its strategies only
    done = run_cli("stats", "--run", str(out), "--json", "--account", "REPLAY_B", home=home)
    assert {(x["scope"], x["name"]) for x in json.loads(done.stdout)} == {("strategy", "s3"), ("account", "REPLAY_B")}


def test_a_rerun_resumes_without_trading_again(run):
    home, config, out = run
    before = {n: (out / n / "trades.csv").read_text(encoding="utf-8") for n in SYMBOL}
    done = run_cli("trade", "--gateway", "replay", "--config", str(config), *SPAN, "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {n: (out / n / "trades.csv").read_text(encoding="utf-8") for n in SYMBOL} == before
    books = json.loads((out / "state" / "replay_book_REPLAY_A.json").read_text(encoding="utf-8"))
    references = [o["reference"] for o in books["orders"].values()]
    assert len(references) == len(set(references))
