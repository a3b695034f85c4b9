"""The daily KPIs on a hand-written four-session run: each KPI's exact value, thresholds and one alert per breach
through the notifier, the history's idempotence and its refusal, and the daemon hook that never raises."""

import json
import math
from datetime import date

import pandas as pd
import pytest

from vnpy_rotation.backtest.alerts import ALERT_RULES
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.notify import Notifier, NotifyConfig
from vnpy_rotation.ops import kpi as K
from vnpy_rotation.ops.kpi_config import KpiThresholds, Threshold, load_kpi_thresholds
from vnpy_rotation.ops.kpi_daily import daily_kpis
from vnpy_rotation.ops.kpi_run import RunData, read_run, risk_scopes, write_baseline
from vnpy_rotation.ops.kpi_store import KpiConflict, KpiRecord, kpi_history

CAPITAL = 100_000.0
DAYS = ["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
EQUITY = [101_000.0, 98_980.0, 100_959.6, 100_959.6]  # returns -2 %, +2 %, 0
MARKET_VALUE = [50_000.0, 49_000.0, 0.0, 80_767.68]  # exposure on the last day: 0.8
# the last session: a buy filled at 1.002 against the model's 1.000 (20 bp worse), a sell at 0.999 against 1.000
# (10 bp worse), each 1000 shares
TRADES = [
    ["2024-06-06", "510300.SSE", "buy", 1.002, 1000.0, 1002.0, 5.0, 0.0, 0.02, 2.0, "rebalance"],
    ["2024-06-06", "510500.SSE", "sell", 0.999, 1000.0, 999.0, 5.0, 1.0, 0.02, 1.0, "rebalance"],
    ["2024-06-04", "510500.SSE", "buy", 1.0, 1000.0, 1000.0, 5.0, 0.0, 0.0, 0.0, "rebalance"],
]
ORDERS = [
    ["2024-06-06", "s|2024-06-06|0|0", "510300.SSE", "buy", 1000.0, 1.0, 1000.0, "filled", "R.1", 1.000],
    ["2024-06-06", "s|2024-06-06|1|0", "510500.SSE", "sell", 1000.0, 1.0, 1000.0, "filled", "R.2", 1.000],
    ["2024-06-04", "s|2024-06-04|0|0", "510500.SSE", "buy", 1000.0, 1.0, 1000.0, "filled", "R.3", 1.000],
]
PARAMETERS = {"gateway": "replay", "strategy": "etf_rotation", "settings": {}, "backtest": {"capital": CAPITAL},
              "start": DAYS[0], "end": DAYS[-1]}


def write_run(folder, equity=EQUITY, trades=TRADES, orders=ORDERS, risk=None):
    (folder / "state").mkdir(parents=True, exist_ok=True)
    (folder / "state" / "run_parameters.json").write_text(json.dumps({"sha256": "x", "parameters": PARAMETERS}))
    pd.DataFrame({"date": DAYS, "equity": equity, "cash": 0.0, "market_value": MARKET_VALUE}).to_csv(
        folder / "daily_summary.csv", index=False)
    pd.DataFrame(trades, columns=["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission",
                                  "stamp_duty", "transfer_fee", "slippage", "reason"]).to_csv(folder / "trades.csv",
                                                                                               index=False)
    pd.DataFrame(orders, columns=["date", "reference", "vt_symbol", "direction", "volume", "price", "traded",
                                  "status", "order_id", "expected_price"]).to_csv(folder / "orders.csv", index=False)
    if risk is not None:
        (folder / "state" / "risk_state.json").write_text(json.dumps(risk))
    # the baseline: a backtest that earned 1 % less on the last day than the run (cached, so no data is needed)
    base = read_run(folder, CAPITAL)
    base_equity = base.equity.copy()
    base_equity.iloc[-1] -= 1_000.0
    write_baseline(folder, PARAMETERS, date.fromisoformat(DAYS[-1]),
                   RunData(base_equity, base.market_value, CAPITAL, base.trades))
    return folder


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


@pytest.fixture
def history(runtime_home):
    """The KPI table of the test database, emptied before and after."""
    kpi_history()  # creates and binds the table
    KpiRecord.delete().execute()
    yield
    KpiRecord.delete().execute()


def test_each_kpi_on_the_hand_written_run(run):
    data = read_run(run, CAPITAL)
    day3 = data.until(date(2024, 6, 5))
    assert K.pnl(day3) == pytest.approx(100_959.6 - 98_980.0)
    assert K.pnl(data.until(date(2024, 6, 3))) == pytest.approx(1_000.0)  # the first session: against the capital
    assert K.cum_return(data) == pytest.approx(0.009596)
    assert K.backtest_metric("max_drawdown")(data) == pytest.approx(98_980.0 / 101_000.0 - 1)
    assert K.backtest_metric("sharpe")(data) == pytest.approx(0.0, abs=1e-12)  # mean return 0
    # the last two returns +2 % and 0: mean 0.01, sd 0.01·√2 → √252 / √2
    assert K.sharpe_over(2)(data) == pytest.approx(math.sqrt(252) / math.sqrt(2))
    assert math.isnan(K.sharpe_over(20)(data))  # fewer returns than the window
    assert K.fill_calibration_bp(data) == pytest.approx((20.0 * 1002.0 + 10.0 * 999.0) / 2001.0)
    assert K.turnover(data) == pytest.approx(2001.0 / 2 / 100_959.6)
    assert [K.cost(kind)(data) for kind in ("commission", "stamp_duty", "transfer_fee", "slippage")] == \
        pytest.approx([10.0, 1.0, 0.04, 3.0])
    assert K.exposure(data) == pytest.approx(0.8)
    assert math.isnan(K.fill_calibration_bp(day3))  # no fill that session


def test_fill_calibration_of_one_fill_at_1002_against_1000_is_20_bp(tmp_path):
    data = read_run(write_run(tmp_path, trades=TRADES[:1], orders=ORDERS[:1]), CAPITAL)
    assert K.fill_calibration_bp(data) == pytest.approx(20.0)


def test_var_breaches_count_losses_beyond_the_previous_forecast():
    # ten days with a worst loss of 3 %: the 99 % historical VaR of that window is about 2.8 %; then +1 %, -1 %
    # (no breach) and a 5 % loss (one breach)
    returns = [0.01, -0.03] + [0.01, -0.01] * 4 + [0.01, -0.01, -0.05]
    equity = pd.Series(CAPITAL * (1 + pd.Series([0.0] + returns)).cumprod().to_numpy(),
                       index=pd.bdate_range("2024-01-01", periods=len(returns) + 1))
    data = RunData(equity, equity * 0, CAPITAL, pd.DataFrame(columns=["date", "value"]))
    assert K.var_breaches(data, window=10, lookback=250) == 1.0
    assert math.isnan(K.var_breaches(data, window=20, lookback=250))  # no forecast yet


def test_risk_state_rungs_and_flags_at_a_past_close(tmp_path):
    risk = {"account": {"state": [[0.0, 1, 0, 0, 0], [1.0, 1, 0, 0, 0]], "last_day": "2024-06-06"},
            "strategies": {"etf_rotation": {"rung": "ACTIVE"}},
            "history": [{"scope": "account", "day": "2024-06-05", "before": "ACTIVE", "after": "REDUCING"},
                        {"scope": "etf_rotation", "day": "2024-06-05", "before": "ACTIVE", "after": "HALTED"},
                        {"scope": "etf_rotation", "day": "2024-06-06", "before": "HALTED", "after": "ACTIVE"}],
            "flags": {"account.release_freeze": {"flag": "release_freeze", "scope": "account", "day": "2024-06-05"},
                      "*.forced_retrain": {"flag": "forced_retrain", "scope": "*", "day": "2024-06-04"}}}
    run = write_run(tmp_path, risk=risk)
    early, middle = risk_scopes(run, date(2024, 6, 4)), risk_scopes(run, date(2024, 6, 5))
    assert (early["account"].rung, early["account"].flags) == ("ACTIVE", ("forced_retrain",))
    assert (middle["account"].rung, middle["account"].flags) == ("REDUCING", ("forced_retrain", "release_freeze"))
    assert middle["etf_rotation"].rung == "HALTED" and risk_scopes(run, date(2024, 6, 6))["etf_rotation"].rung == "ACTIVE"
    assert risk_scopes(run, date(2024, 6, 7)) == {}  # the risk engine has not closed that day


def test_default_thresholds_are_the_backtest_alert_rules():
    thresholds = KpiThresholds()
    for metric, op, value, _ in ALERT_RULES:
        assert (thresholds.threshold(metric).op, thresholds.threshold(metric).value) == (op, value)


def test_kpi_section_overrides_one_threshold_and_rejects_unknown_kpis(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("kpi:\n  thresholds:\n    sharpe: {op: '<', value: 0.3}\n    exposure: null\n")
    loaded = load_kpi_thresholds(good)
    assert loaded.threshold("sharpe").value == 0.3 and loaded.threshold("exposure") is None
    assert loaded.threshold("max_drawdown").value == -0.30  # the others keep their defaults
    bad = tmp_path / "bad.yaml"
    bad.write_text("kpi:\n  thresholds:\n    sharp: {op: '<', value: 0.3}\n")
    with pytest.raises(InputRejected) as caught:
        load_kpi_thresholds(bad)
    assert str(bad) in str(caught.value) and "sharp" in str(caught.value)


def test_snapshot_rows_baseline_threshold_and_status(run):
    snap = K.snapshot_run(run)
    rows = {(r.scope, r.kpi): r for r in snap.rows}
    assert snap.day == date(2024, 6, 6) and snap.strategy == "etf_rotation"
    assert rows[("etf_rotation", "tracking_gap")].value == pytest.approx(0.01)  # the baseline earned 1 000 less
    assert rows[("etf_rotation", "pnl")].baseline == pytest.approx(-1_000.0)
    assert rows[("etf_rotation", "sharpe")].threshold == "< 0.50"
    # as the backtest measures them, from the first session's close (101 000) to the last (100 959.6): a loss,
    # so the annual return and the one month's win rate breach; the mean daily return is 0 (Sharpe 0 < 0.5);
    # the fills are 15 bp worse than the model (> 10)
    assert {r.kpi for r in snap.breaches} == {"annual_return", "monthly_win_rate", "sharpe", "fill_calibration_bp"}
    assert {r.scope for r in snap.breaches} == {"etf_rotation"}
    assert rows[("account", "exposure")].status == "n/a"  # no threshold
    assert ("account", "fill_calibration_bp") not in rows  # a strategy's KPI only
    assert "| sharpe |" in snap.markdown()


class Recording:
    def __init__(self):
        self.sent = []

    def send(self, subject, content):
        self.sent.append(subject)


def test_each_breach_is_one_alert(run, history):
    channel = Recording()
    notifier = Notifier(NotifyConfig(vnpy_notification=False), channels=[channel])
    done = daily_kpis(run, notify=notifier.notify)
    assert notifier.flush()
    notifier.close()
    assert done.alerts == 4
    assert sorted(channel.sent) == [f"KPI breach etf_rotation {kpi} 2024-06-06" for kpi in
                                    ("annual_return", "fill_calibration_bp", "monthly_win_rate", "sharpe")]
    assert (run / "kpi" / "kpi_2024-06-06.md").exists()
    stored = json.loads((run / "kpi" / "kpi_2024-06-06.json").read_text())
    assert len(stored["rows"]) == len(done.snapshot.rows)


def test_history_is_idempotent_and_refuses_other_values_unless_replaced(tmp_path, history):
    run = write_run(tmp_path / "run")
    first = daily_kpis(run, date(2024, 6, 6))
    assert first.recorded == len(first.snapshot.rows)
    assert daily_kpis(run, date(2024, 6, 6)).recorded == 0  # the same values: nothing new
    rows_before = KpiRecord.select().count()
    write_run(run, equity=EQUITY[:-1] + [101_959.6])
    with pytest.raises(KpiConflict):
        daily_kpis(run, date(2024, 6, 6))
    assert KpiRecord.select().count() == rows_before  # nothing half-written
    replaced = daily_kpis(run, date(2024, 6, 6), replace=True)
    assert 0 < replaced.recorded < len(replaced.snapshot.rows)  # only the KPIs whose values changed
    frame = kpi_history("etf_rotation")
    assert list(frame.columns) == ["date", "scope", "kpi", "value", "baseline", "threshold", "status", "run"]
    assert frame["date"].dtype.kind == "M" and frame["value"].dtype == float
    pnl = frame[frame["kpi"] == "pnl"]
    assert len(pnl) == 1 and pnl["value"].iloc[0] == pytest.approx(1_000.0)  # the replacement counts
    assert KpiRecord.select().where(KpiRecord.replaces.is_null(False)).count() == replaced.recorded
    assert kpi_history(since=date(2024, 6, 7)).empty


def test_each_run_folder_keeps_its_own_history(tmp_path, history):
    """A replay of the days a live run recorded, with other values, is no conflict: histories are per run."""
    live = write_run(tmp_path / "live")
    replay = write_run(tmp_path / "replay", equity=EQUITY[:-1] + [101_959.6])
    assert daily_kpis(live, date(2024, 6, 6)).recorded > 0
    assert daily_kpis(replay, date(2024, 6, 6)).recorded > 0  # refused before runs were told apart
    pnl = {r.run: r.value for r in kpi_history("etf_rotation").itertuples() if r.kpi == "pnl"}
    assert pnl == {str(live.absolute()): pytest.approx(0.0), str(replay.absolute()): pytest.approx(1_000.0)}  # the day's P&L
    only_live = kpi_history("etf_rotation", run=live)
    assert set(only_live["run"]) == {str(live.absolute())}


def test_the_daemon_hook_never_raises(tmp_path):
    from vnpy_rotation.apps.rotation.kpi_hook import SessionKpis

    sent, logged = [], []
    hook = SessionKpis(tmp_path / "no_run", lambda kind, subject, content: sent.append(kind), logged.append)
    hook("etf_rotation", None, {"day": "2024-06-06"})
    assert sent == ["failure"] and len(logged) == 1


def test_threshold_text():
    assert Threshold(op="<", value=0.5).text() == "< 0.50"
    assert Threshold(op="abs>", value=10).text() == "|x| > 10.00"
    assert Threshold(op="abs>", value=10).breached(-10.5) and not Threshold(op="abs>", value=10).breached(9.0)


def test_a_kpi_without_a_value_is_filled_in_later(tmp_path, history):
    run = write_run(tmp_path / "run")  # no risk state yet: the account's rung is n/a
    daily_kpis(run, date(2024, 6, 6))
    write_run(run, risk={"account": {"state": [[1.0, 1, 0, 0, 0]], "last_day": "2024-06-06"}})
    assert daily_kpis(run, date(2024, 6, 6)).recorded == 2  # the account's rung and flags, without --replace
    rung = kpi_history("account").set_index("kpi").loc["risk_rung", "value"]
    assert rung == 1.0  # REDUCING


def test_a_snapshot_without_a_value_never_erases_a_recorded_one(tmp_path, history):
    risk = {"account": {"state": [[1.0, 1, 0, 0, 0]], "last_day": "2024-06-06"}}
    run = write_run(tmp_path / "run", risk=risk)
    daily_kpis(run, date(2024, 6, 6))
    (run / "state" / "risk_state.json").unlink()  # e.g. the daemon's snapshot before the risk engine's close
    assert daily_kpis(run, date(2024, 6, 6)).recorded == 0
    assert kpi_history("account").set_index("kpi").loc["risk_rung", "value"] == 1.0


def test_canary_stage_as_of_the_day(tmp_path):
    from vnpy_rotation.canary import machine
    from vnpy_rotation.canary.config import CanaryConfig, Stage
    from vnpy_rotation.live.canary_stage import SessionRecord, start_ledger
    from vnpy_rotation.ops.kpi_run import canary_stage

    stages = (Stage(name="half", share=0.5, min_sessions=2), Stage(name="full", share=1.0, min_sessions=2))
    ledger = start_ledger("etf_rotation", "v1", "v2", "EtfRotationStrategy", {}, CanaryConfig(stages=stages),
                          machine.start(stages, date(2024, 6, 3)), {}, CAPITAL, CAPITAL, date(2024, 6, 3))
    for day, stage in (("2024-06-04", "half"), ("2024-06-05", "full")):
        ledger.sessions.append(SessionRecord(day, stage, "running", 0.5, "", "", False, True, None, None))
    run = write_run(tmp_path)
    (run / "state" / "etf_rotation.json").write_text(json.dumps({"canary": ledger.to_json()}, default=str))
    assert canary_stage(run, "etf_rotation", date(2024, 6, 3)) is None  # no canary session closed yet
    assert canary_stage(run, "etf_rotation", date(2024, 6, 4)).index == 0
    at_end = canary_stage(run, "etf_rotation", date(2024, 6, 6))
    assert (at_end.stage, at_end.index, at_end.candidate) == ("full", 1, "v2")
    row = next(r for r in K.snapshot_run(run).rows if r.kpi == "canary_stage")
    assert row.value == 1.0 and "full" in row.note
