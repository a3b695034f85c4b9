"""``run.py risk report`` and the backtest report's risk section: hand-written scenarios for the section's parts
(stops named on orders, the 99 % VaR verdict, ladder days), end to end on the bundled real data, a replay/live
run folder, and user mistakes as clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from conftest import ROOT, needs_real, run_cli

from vnpy_rotation.backtest.risk_section import (
    RISK_RULES,
    STOP_COLUMNS,
    exception_verdict,
    ladder_days,
    stop_counts,
    stop_orders,
)
from vnpy_rotation.research.risk_report import DRIFT_COLUMNS, FIGURES, TEST_COLUMNS, label
from vnpy_rotation.risk.coverage import kupiec_pof
from vnpy_rotation.risk.var import METHODS

LEVELS = (0.95, 0.99)
LABELS = [label(m, lv) for m in METHODS for lv in LEVELS]
ORDER_COLUMNS = ["date", "vt_symbol", "direction", "requested", "submitted", "filled", "price", "status", "reason",
                 "cause"]


# ---------------------------------------------------------------- the section's parts, by hand


def _orders(rows):
    return pd.DataFrame([(pd.Timestamp(d), s, dr, rq, rq, fl, 10.0, st, rs, c) for d, s, dr, rq, fl, st, rs, c in rows],
                        columns=ORDER_COLUMNS)


ORDERS = [  # date, symbol, direction, requested, filled, status, refusal reason, cause
    ("2024-01-02", "600000.SSE", "sell", 1000, 1000, "filled", "", "stock_stop -9.5%"),
    ("2024-01-02", "600001.SSE", "buy", 100, 100, "filled", "", "VQM rank 3"),
    ("2024-01-03", "600002.SSE", "sell", 500, 0, "refused", "limit_down", "portfolio_stop -10.3%"),
    ("2024-01-04", "600002.SSE", "sell", 500, 500, "filled", "", "portfolio_stop -10.3%;drawdown_halve -15.2%"),
    ("2024-01-05", "510300.SSE", "buy", 800, 800, "filled", "", "rebalance"),
    ("2024-01-05", "510500.SSE", "sell", 300, 300, "filled", "", "ladder -12.0%"),
]


def test_stop_orders_are_the_orders_a_risk_rule_sent_one_row_per_rule_named():
    stops = stop_orders(_orders(ORDERS), pd.DataFrame())
    assert list(stops.columns) == STOP_COLUMNS
    got = [(str(r.date.date()), r.rule, r.trigger, r.vt_symbol, r.status) for r in stops.itertuples()]
    assert got == [("2024-01-02", "stock_stop", -0.095, "600000.SSE", "filled"),
                   ("2024-01-03", "portfolio_stop", -0.103, "600002.SSE", "refused"),
                   ("2024-01-04", "portfolio_stop", -0.103, "600002.SSE", "filled"),
                   ("2024-01-04", "drawdown_halve", -0.152, "600002.SSE", "filled"),
                   ("2024-01-05", "ladder", -0.12, "510500.SSE", "filled")]
    assert stop_counts(stops) == {"stock_stop": {"orders": 1, "days": 1, "filled": 1},
                                  "portfolio_stop": {"orders": 2, "days": 2, "filled": 1},
                                  "drawdown_halve": {"orders": 1, "days": 1, "filled": 1},
                                  "ladder": {"orders": 1, "days": 1, "filled": 1}}


def test_without_an_order_cause_the_fills_reason_names_the_rule():
    """A replay's orders.csv has no cause: its trades.csv reasons stand in (every such row filled)."""
    trades = pd.DataFrame({"datetime": pd.to_datetime(["2024-02-05 09:30", "2024-02-06 09:30"]),
                           "vt_symbol": ["600000.SSE", "600001.SSE"], "direction": ["sell", "buy"],
                           "volume": [700, 200], "reason": ["stock_stop -8.8%", "rebalance"]})
    stops = stop_orders(pd.DataFrame(), trades)
    assert [(str(r.date.date()), r.rule, r.trigger, r.filled, r.status) for r in stops.itertuples()] == [
        ("2024-02-05", "stock_stop", -0.088, 700, "filled")]


def test_no_risk_order_no_stop():
    quiet = [o for o in ORDERS if not any(rule in o[-1] for rule in RISK_RULES)]
    assert stop_orders(_orders(quiet), pd.DataFrame()).empty and stop_counts(stop_orders(_orders(quiet), pd.DataFrame())) == {}


def _returns(length: int, losses: dict[int, float]) -> pd.Series:
    values = np.full(length, 0.001)
    for position, loss in losses.items():
        values[position] = loss
    return pd.Series(values, index=pd.bdate_range("2020-01-01", periods=length))


# 250 days of window, then 300 forecast days. Each loss is larger than every earlier one, so it exceeds the
# third-smallest return of its window (the 99 % historical VaR of 250 returns): every loss is an exception.
# One falls before the last 250 forecast days, six inside them: Basel yellow (5-9).
EARLY = {270: -0.005}
RECENT = {320 + 40 * k: -0.01 * (k + 1) for k in range(6)}


def test_verdict_counts_exceptions_in_the_last_250_forecast_days():
    verdict = exception_verdict(_returns(550, EARLY | RECENT))
    assert verdict["status"] == "ok" and verdict["observations"] == 300
    assert (verdict["exceptions"], verdict["exceptions_all"], verdict["zone"]) == (6, 7, "yellow")
    assert verdict["kupiec_p"] == pytest.approx(kupiec_pof(6, 250, 0.99).p_value)
    assert verdict["start"] == str(_returns(550, {}).index[300].date())


def test_verdict_with_four_exceptions_is_green_and_too_short_below_250_forecast_days():
    four = {p: v for p, v in RECENT.items() if p <= 440}
    assert exception_verdict(_returns(550, four))["zone"] == "green"
    assert exception_verdict(_returns(550, four))["exceptions"] == 4
    short = exception_verdict(_returns(499, EARLY))
    assert (short["status"], short["zone"], short["observations"]) == ("too short", None, 249)


def test_ladder_days_per_rung_or_not_recorded():
    days = pd.bdate_range("2024-01-01", periods=6)
    frame = pd.DataFrame({"rung": ["ACTIVE", "ACTIVE", "REDUCING", "HALTED", "HALTED", "ACTIVE"],
                          "account": ["ACTIVE", "ACTIVE", "REDUCING", "REDUCING", "REDUCING", "ACTIVE"]}, index=days)
    assert ladder_days(frame) == {"rung": {"ACTIVE": 3, "REDUCING": 1, "HALTED": 2},
                                  "account": {"ACTIVE": 3, "REDUCING": 3, "HALTED": 0}}
    assert ladder_days(None) is None


# ---------------------------------------------------------------- end to end on the bundled real data

START = "2019-01-02"
CONFIG = str(ROOT / "configs" / "vqm.yaml")  # VQM's stops and the account ladder on


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("risk_home")


@pytest.fixture(scope="module")
def report_out(home):
    out = home / "risk"
    done = run_cli("risk", "report", "--strategy", "vqm", "--config", CONFIG, "--start", START, "--out", str(out),
                   home=home)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def backtest_out(home):
    out = home / "bt"
    done = run_cli("backtest", "--strategy", "vqm", "--config", CONFIG, "--start", START, "--out", str(out),
                   home=home)
    assert done.returncode == 0, done.stderr
    return out


def _csv(path, **kw):
    return pd.read_csv(path, parse_dates=["date"], **kw)


@needs_real
def test_risk_report_files_and_columns(report_out):
    var_es = _csv(report_out / "var_es.csv")
    assert list(var_es.columns) == ["date", "return"] + [f"{kind}_{stem}" for stem in LABELS
                                                        for kind in ("var", "es", "exception")]
    assert var_es["date"].is_monotonic_increasing and var_es["date"].iloc[0] > pd.Timestamp(START)
    exceptions = _csv(report_out / "exceptions.csv")
    assert list(exceptions.columns) == ["date", "return", *LABELS] and len(exceptions) > 500
    tests = pd.read_csv(report_out / "exception_tests.csv")
    assert list(tests.columns) == TEST_COLUMNS and set(tests["scope"]) == {"overall", "weekly"}
    assert set(tests["zone"]) <= {"green", "yellow", "red"}
    drift = _csv(report_out / "drift.csv")
    assert list(drift.columns) == DRIFT_COLUMNS
    book = drift[drift["monitor"] == "order_book"]
    assert len(book) == len(var_es) and not book["available"].any() and book["reason"].str.contains("tick").all()
    assert drift.loc[drift["monitor"] == "volatility", "available"].any()
    ladder = _csv(report_out / "ladder.csv")
    assert list(ladder.columns[:2]) == ["date", "rung"] and list(ladder["date"].iloc[1:]) == list(var_es["date"])
    assert set(ladder["rung"]) <= {"ACTIVE", "REDUCING", "HALTED"}
    stops = _csv(report_out / "stops.csv")
    assert list(stops.columns) == STOP_COLUMNS and len(stops) > 0 and set(stops["rule"]) <= set(RISK_RULES)
    html = (report_out / "risk_report.html").read_text(encoding="utf-8")
    # plotly.js inlined once and no script fetched: viewable offline
    assert html.count(plotly.offline.get_plotlyjs()[:200]) == 1 and "<script src=" not in html
    assert all(f'id="{fid}"' in html for fid in FIGURES)


@needs_real
def test_exception_counts_match_the_daily_series(report_out):
    var_es = _csv(report_out / "var_es.csv").set_index("date")
    exceptions = _csv(report_out / "exceptions.csv").set_index("date")
    for stem in LABELS:  # the flags are the losses beyond that day's VaR
        known = var_es[f"var_{stem}"].notna()
        expected = (-var_es["return"] > var_es[f"var_{stem}"])[known].astype(int)
        assert (exceptions[stem] == expected.reindex(exceptions.index)).all(), stem
    tests = pd.read_csv(report_out / "exception_tests.csv", parse_dates=["start", "end"])
    running = exceptions[LABELS].cumsum()
    for row in tests.itertuples():
        stem = label(row.method, row.level)
        window = running.loc[row.start:row.end, stem]
        flagged = window.iloc[-1] - window.iloc[0] + exceptions.at[row.start, stem]
        assert row.exceptions == flagged and row.observations == len(window), (row.scope, stem, row.end)
    overall = tests[tests["scope"] == "overall"]
    assert len(overall) == len(LABELS)


@needs_real
def test_report_states_the_traffic_light_zone(report_out):
    tests = pd.read_csv(report_out / "exception_tests.csv")
    weekly = tests[(tests["scope"] == "weekly") & (tests["method"] == "historical") & (tests["level"] == 0.99)]
    zone = weekly["zone"].iloc[-1]  # the last week ends on the last session: the same 250 days
    md = (report_out / "risk_report.md").read_text(encoding="utf-8")
    headline = md.split("\n## ")[0]
    assert f"**{zone.upper()}**" in headline and f"{int(weekly['exceptions'].iloc[-1])} exceptions" in headline
    lines = md.splitlines()
    for k, line in enumerate(lines):  # every table's alignment row has a mark per header cell
        if line.startswith(("| :", "| -")):
            assert line.count("|") == lines[k - 1].count("|"), lines[k - 1]


@needs_real
def test_backtest_report_has_the_risk_section(backtest_out, report_out):
    metrics = json.loads((backtest_out / "metrics.json").read_text())
    risk = metrics["risk"]
    exceptions = _csv(report_out / "exceptions.csv")
    assert risk["verdict"]["status"] == "ok"
    assert risk["verdict"]["exceptions"] == int(exceptions["historical_99"].iloc[-250:].sum())
    assert risk["verdict"]["exceptions_all"] == int(exceptions["historical_99"].sum())
    ladder = pd.read_csv(backtest_out / "risk_days.csv")  # the backtest's own record of the rungs
    assert pd.read_csv(report_out / "ladder.csv").equals(ladder)
    assert risk["ladder"]["rung"] == {r: int((ladder["rung"] == r).sum()) for r in ("ACTIVE", "REDUCING", "HALTED")}
    stops = _csv(report_out / "stops.csv")
    assert {rule: c["orders"] for rule, c in risk["stops"].items()} == stops["rule"].value_counts().to_dict()
    md = (backtest_out / "report.md").read_text(encoding="utf-8")
    section = md.split("## 11. 风险 Risk")[1].split("\n## ")[0]
    assert f"**{risk['verdict']['zone'].upper()}**" in section and "stock_stop" in section
    assert "REDUCING" in section and "not recorded" not in section
    assert 'id="risk-section"' in (backtest_out / "report.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------- a replay / live run folder


def _run_folder(path, strategy="vqm", days=300):
    dates = pd.bdate_range("2023-01-02", periods=days)
    equity = 1e6 * np.cumprod(1 + np.random.default_rng(3).normal(0.0003, 0.01, days))
    path.mkdir(parents=True)
    rung = np.where((np.arange(days) >= 100) & (np.arange(days) < 105), "REDUCING", "ACTIVE")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "equity": equity, "cash": 0.0, "market_value": equity,
                  "risk_rung": rung}).to_csv(path / "daily_summary.csv", index=False)
    pd.DataFrame({"datetime": [str(dates[10].date()), str(dates[200].date())],
                  "vt_symbol": ["600000.SSE", "600001.SSE"], "direction": ["buy", "sell"], "price": [10.0, 9.1],
                  "volume": [1000, 1000], "value": [10000.0, 9100.0], "commission": 5.0, "stamp_duty": 0.0,
                  "transfer_fee": 0.0, "slippage": 0.0, "reason": ["rebalance", "stock_stop -9.0%"]}).to_csv(
        path / "trades.csv", index=False)
    (path / "state").mkdir()
    (path / "state" / "run_parameters.json").write_text(json.dumps({"sha256": "x", "parameters": {"strategy": strategy}}))
    return dates


def test_report_of_a_run_folder(tmp_path):
    dates = _run_folder(tmp_path / "run")
    out = tmp_path / "out"
    done = run_cli("risk", "report", "--strategy", "vqm", "--run", str(tmp_path / "run"), "--out", str(out),
                   home=tmp_path)
    assert done.returncode == 0, done.stderr
    var_es = _csv(out / "var_es.csv")
    assert list(var_es["date"]) == list(dates[1:])  # one return per session after the first
    stops = _csv(out / "stops.csv")
    assert [(r.date, r.rule, r.trigger, r.vt_symbol) for r in stops.itertuples()] == [
        (dates[200], "stock_stop", -0.09, "600001.SSE")]
    ladder = _csv(out / "ladder.csv")
    assert list(ladder["date"]) == list(dates) and list(ladder["rung"]).count("REDUCING") == 5
    md = (out / "risk_report.md").read_text(encoding="utf-8")
    assert "TOO SHORT" in md.split("\n## ")[0]  # 49 forecast days < 250
    assert f"| {dates[100].date()} | rung | ACTIVE | REDUCING |" in md  # the rung changes, listed
    assert f"| {dates[105].date()} | rung | REDUCING | ACTIVE |" in md


# ---------------------------------------------------------------- user mistakes


@pytest.mark.parametrize("args, names", [
    (("--strategy", "nope"), "equal_weight"),
    (("--strategy", "vqm", "--start", "2024-05-01", "--end", "2024-01-01"), "--start"),
    (("--strategy", "vqm", "--end", "1980-01-01"), "--end"),
])
def test_bad_arguments_are_clear_errors_and_write_nothing(tmp_path, args, names):
    out = tmp_path / "never"
    done = run_cli("risk", "report", *args, "--out", str(out), home=tmp_path)
    assert done.returncode == 2 and names in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_bad_run_folders_are_clear_errors(tmp_path):
    _run_folder(tmp_path / "other", strategy="etf_rotation")
    done = run_cli("risk", "report", "--strategy", "vqm", "--run", str(tmp_path / "other"), "--out",
                   str(tmp_path / "o1"), home=tmp_path)
    assert done.returncode == 2 and "run_parameters.json" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("risk", "report", "--strategy", "vqm", "--run", str(tmp_path / "empty"), "--out",
                   str(tmp_path / "o2"), home=tmp_path)
    assert done.returncode == 2 and "daily_summary.csv" in done.stderr and "Traceback" not in done.stderr
    _run_folder(tmp_path / "bad")
    summary = pd.read_csv(tmp_path / "bad" / "daily_summary.csv", dtype=str)
    summary.loc[2, "equity"] = "n/a"
    summary.to_csv(tmp_path / "bad" / "daily_summary.csv", index=False)
    done = run_cli("risk", "report", "--strategy", "vqm", "--run", str(tmp_path / "bad"), "--out",
                   str(tmp_path / "o3"), home=tmp_path)
    assert done.returncode == 2 and "daily_summary.csv:4: equity" in done.stderr and "Traceback" not in done.stderr
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))


@pytest.mark.parametrize("file,column,row,value,where", [
    ("daily_summary.csv", "date", 5, "bad", "daily_summary.csv:7: date"),
    ("trades.csv", "datetime", 0, "xx", "trades.csv:2: datetime"),
    ("daily_summary.csv", "date", 3, None, "daily_summary.csv:5: date"),  # None: row 3 repeats row 2's date
])
def test_bad_dates_in_a_run_folder_are_refused_by_line(tmp_path, file, column, row, value, where):
    _run_folder(tmp_path / "run")
    frame = pd.read_csv(tmp_path / "run" / file, dtype=str)
    frame.loc[row, column] = frame.loc[row - 1, column] if value is None else value
    frame.to_csv(tmp_path / "run" / file, index=False)
    done = run_cli("risk", "report", "--strategy", "vqm", "--run", str(tmp_path / "run"), "--out",
                   str(tmp_path / "out"), home=tmp_path)
    assert done.returncode == 2 and where in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
