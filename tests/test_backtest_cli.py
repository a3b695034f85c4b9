"""``run.py backtest`` end to end on the bundled real data: the file contract, reconciliation from the
written files alone, options, and user mistakes as clear errors."""

import json

import pandas as pd
import pytest
from conftest import run_cli

TRADE_COLUMNS = ["datetime", "vt_symbol", "direction", "price", "volume", "commission", "stamp_duty",
                 "transfer_fee", "reason"]
METRIC_KEYS = ["total_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown", "calmar",
               "monthly_win_rate", "turnover", "total_cost", "trade_count"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("backtest_home")


@pytest.fixture(scope="module")
def equal_weight_out(home):
    out = home / "eq"
    done = run_cli("backtest", "--strategy", "equal_weight", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    return out


def test_writes_the_contract_files(equal_weight_out):
    for name in ("metrics.json", "equity.csv", "trades.csv", "orders.csv", "positions.csv", "report.html",
                 "report.md"):
        assert (equal_weight_out / name).stat().st_size > 0, name
    trades = pd.read_csv(equal_weight_out / "trades.csv")
    assert all(c in trades.columns for c in TRADE_COLUMNS)
    assert set(trades["direction"]) <= {"buy", "sell"} and len(trades) > 50
    equity = pd.read_csv(equal_weight_out / "equity.csv", parse_dates=["date"])
    assert list(equity.columns[:4]) == ["date", "equity", "cash", "market_value"]
    assert equity["date"].is_monotonic_increasing and equity["date"].is_unique
    orders = pd.read_csv(equal_weight_out / "orders.csv", keep_default_na=False)
    assert {"reason", "status"} <= set(orders.columns)
    metrics = json.loads((equal_weight_out / "metrics.json").read_text())
    assert all(k in metrics for k in METRIC_KEYS)
    assert metrics["max_drawdown"] < 0 and metrics["trade_count"] == len(trades)
    assert metrics["identities_ok"] and metrics["lookahead_ok"]
    assert metrics["benchmark"] == "H00300.SSE"


def test_files_reconcile_to_the_final_cash(equal_weight_out):
    """Cash from the written files alone: capital − buys + sells − fees + distributions."""
    trades = pd.read_csv(equal_weight_out / "trades.csv")
    actions = pd.read_csv(equal_weight_out / "corporate_actions.csv")
    equity = pd.read_csv(equal_weight_out / "equity.csv")
    signed = (trades["price"] * trades["volume"]).round(2) * trades["direction"].map({"buy": -1, "sell": 1})
    fees = trades[["commission", "stamp_duty", "transfer_fee"]].sum().sum()
    dividends = actions.loc[actions["kind"] == "dividend", "cash"].sum()
    assert dividends > 0  # the bundled ETFs paid distributions while held
    assert equity["cash"].iloc[-1] == pytest.approx(1_000_000 + signed.sum() - fees + dividends, abs=0.01)
    positions = pd.read_csv(equal_weight_out / "positions.csv")
    last = positions[positions["date"] == positions["date"].max()]
    assert equity["market_value"].iloc[-1] == pytest.approx((last["volume"] * last["close"]).sum(), abs=0.01)


def test_fills_are_whole_lots_and_fees_in_fen(equal_weight_out):
    trades = pd.read_csv(equal_weight_out / "trades.csv")
    buys = trades[trades["direction"] == "buy"]
    assert (buys["volume"] % 100 == 0).all()
    for column in ("commission", "stamp_duty", "transfer_fee"):
        assert ((trades[column] * 100).round(6) % 1 == 0).all()


def test_start_end_and_capital(home):
    out = home / "window"
    done = run_cli("backtest", "--strategy", "momentum_topn", "--start", "2020-03-02", "--end", "2021-06-30",
                   "--capital", "200000", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    equity = pd.read_csv(out / "equity.csv", parse_dates=["date"])
    assert equity["date"].iloc[0] == pd.Timestamp("2020-03-02")
    assert equity["date"].iloc[-1] == pd.Timestamp("2021-06-30")
    assert equity["equity"].iloc[0] == 200_000
    trades = pd.read_csv(out / "trades.csv", parse_dates=["datetime"])
    assert trades["datetime"].min() > pd.Timestamp("2020-03-02")


def test_config_file_sections(home, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("strategy: {pool: QDII, rebalance: week_end}\n"
                      "backtest: {fill_price: vwap, stock_commission: {rate: 0.0003, minimum: 5}}\n")
    out = tmp_path / "o"
    done = run_cli("backtest", "--strategy", "equal_weight", "--config", str(config), "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    symbols = set(pd.read_csv(out / "trades.csv")["vt_symbol"])
    assert symbols <= {"513100.SSE", "513500.SSE", "159941.SZSE", "513050.SSE"} and len(symbols) == 4


@pytest.mark.parametrize("content, field", [
    ("backtest: {fill_price: close}\n", "fill_price"),
    ("backtest: {capital: -5}\n", "capital"),
    ("strategy: {symbls: [510300.SSE]}\n", "symbls"),
    ("strategy: {symbols: [510300]}\n", "symbols"),
    ("backtst: {}\n", "backtst"),
    ("backtest: [1, 2\n", "line"),
])
def test_bad_config_is_a_clear_error_and_writes_nothing(home, tmp_path, content, field):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    out = tmp_path / "never"
    done = run_cli("backtest", "--strategy", "equal_weight", "--config", str(config), "--out", str(out), home=home)
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr and "Traceback" not in done.stderr
    assert field in done.stderr or field == "line"
    assert not out.exists()


def test_unknown_strategy_and_inverted_dates(home, tmp_path):
    done = run_cli("backtest", "--strategy", "nope", "--out", str(tmp_path / "x"), home=home)
    assert done.returncode == 2 and "equal_weight" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("backtest", "--strategy", "equal_weight", "--start", "2022-01-01", "--end", "2021-01-01",
                   "--out", str(tmp_path / "y"), home=home)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_symbol_without_data_is_a_clear_error(home, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("strategy: {symbols: [600900.SSE]}\n")
    done = run_cli("backtest", "--strategy", "equal_weight", "--config", str(config), "--out", str(tmp_path / "z"),
                   home=home)
    assert done.returncode == 2 and "600900.SSE" in done.stderr and "Traceback" not in done.stderr
