"""The drift response applied to plans: a hand-made market whose volatility doubles, the exact rows cut and
their reasons, the stage changes and flags, off = the plan itself, no look-ahead, the same result however
much history precedes the first session, trades naming the cut, and the replay through ``run.py`` equal to
the backtest with the response configured; the false-alarm rate on the bundled ETFs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import needs_real, replay_and_backtest, run_cli
from pydantic import ValidationError
from scenario_market import CAPITAL, ETF, ETF_B, flat, make_panels, plan

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.drift_response import DriftSkipped, apply_drift_response, basket_inputs, response_days
from vnpy_rotation.backtest.engine import simulate
from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.risk.config import DriftResponseConfig, RiskConfig
from vnpy_rotation.risk.drift import DriftConfig
from vnpy_rotation.risk.response import ResponsePolicy

# ---------------------------------------------------------------------------------------------------
# The scenario: both ETFs move together, +a % / −a % on alternate days. Days 1-19: a = 1.5 (a livelier
# spell inside the reference), days 20-49: a = 1, from day 50 on: a = 2 (volatility doubles).
# Monitor: volatility only, reference 40 days, recent 5, one calibration (on day 44, the first judged).
# The basket's recent sd over the reference's is 0.85 on calm days (threshold, the 99 % null quantile:
# 1.38); day 50 holds one doubled return (1.04), day 51 two (1.28), day 52 three (1.41): the first breach,
# and every day after it breaches (up to 1.71).
# With the default ladder: day 52 alert, 53 degrade (50 %), 54 retrain (50 %) and, the third drift day in a
# row, the forced_retrain flag.
# ---------------------------------------------------------------------------------------------------

SHIFT, LENGTH = 50, 60
DAYS = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2023-01-02", periods=LENGTH)]
VOL = "drift {} 50%: volatility"


def path(shift: int = SHIFT, length: int = LENGTH, first: float = 4.0) -> list[float]:
    prices = [first]
    for t in range(1, length):
        size = (1.5 if t < 20 else 1.0) * (2.0 if t >= shift else 1.0)
        prices.append(prices[-1] * (1 + (1 if t % 2 else -1) * size / 100))
    return prices


def market(prices: list[float] | None = None):
    prices = prices or path()
    return build_market_data(make_panels(DAYS[:len(prices)], {ETF: [flat(p) for p in prices],
                                                              ETF_B: [flat(p / 2) for p in prices]}))


def drift_config(**response) -> BacktestConfig:
    monitor = DriftConfig(reference_days=40, recent_days=5, monitors=("volatility",), alerting=("volatility",),
                          null_draws=500)
    drift = DriftResponseConfig(enabled=True, monitor=monitor, recalibrate_every=1000,
                                response=ResponsePolicy(**response))
    return BacktestConfig(capital=CAPITAL, risk=RiskConfig(drift=drift))


def rows(plan_days: list[int], weights: dict[str, float] | None = None):
    weights = weights or {ETF: 0.6, ETF_B: 0.4}
    return plan({DAYS[k]: weights for k in plan_days}, (ETF, ETF_B), "weight")


def table(result) -> list[tuple]:
    """(day, ETF weight, ETF_B weight, ETF note, ETF_B note) per row."""
    notes = result.notes if result.notes is not None else pd.DataFrame(None, index=result.frame.index,
                                                                       columns=result.frame.columns)
    def note(day, symbol):
        value = notes.at[day, symbol]
        return None if pd.isna(value) else value

    return [(day.strftime("%Y-%m-%d"), round(result.frame.at[day, ETF], 12), round(result.frame.at[day, ETF_B], 12),
             note(day, ETF), note(day, ETF_B)) for day in result.frame.index]


def test_volatility_doubling_cuts_the_rows_from_the_degrade_day_with_the_reason():
    target = rows([45, 51, 52, 53, 54, 57])
    got = apply_drift_response(target, drift_config(), market())
    cut = (0.3, 0.2, "rebalance; " + VOL.format("degrade"), "rebalance; " + VOL.format("degrade"))
    retrain = (0.3, 0.2, "rebalance; " + VOL.format("retrain"), "rebalance; " + VOL.format("retrain"))
    assert table(got) == [
        (DAYS[45], 0.6, 0.4, None, None),  # normal
        (DAYS[51], 0.6, 0.4, None, None),  # two doubled returns: within the threshold
        (DAYS[52], 0.6, 0.4, None, None),  # first breach: alert changes nothing
        (DAYS[53], *cut),  # degrade: 50 %, the rest in cash
        (DAYS[54], *retrain),  # retrain keeps its rung's 50 % and changes nothing more
        (DAYS[57], *retrain),
    ]
    assert target.frame[ETF].tolist() == [0.6] * 6  # the strategy's own plan is not modified


def test_stage_changes_and_the_forced_retrain_flag_are_recorded_on_their_days():
    events = apply_drift_response(rows([45]), drift_config(), market()).drift_events
    assert [(d.strftime("%Y-%m-%d"), k, s, f, None if math.isnan(e) else e, r) for d, k, s, f, e, r in
            events[["date", "kind", "stage", "flag", "exposure", "requests"]].itertuples(index=False)] == [
        (DAYS[52], "stage_changed", "alert", "", 1.0, ""),
        (DAYS[53], "stage_changed", "degrade", "", 0.5, ""),
        (DAYS[54], "stage_changed", "retrain", "", 0.5, "walkforward_retrain;parameter_audit"),
        (DAYS[54], "flag_raised", "", "forced_retrain", None, "walkforward_retrain;parameter_audit"),
    ]
    assert set(events["monitors"]) == {"volatility"}


def test_calm_again_steps_down_after_the_clean_sessions():
    """Doubled returns on days 50-55 only: from day 58 the recent window holds at most two of them (1.28,
    within the threshold), so sessions are clean from 58. The retrain rung needs 5 clean sessions in a row
    (58-62: degrade on 62), degrade 3 (63-65: alert on 65), alert 1 (66: normal)."""
    longer = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2023-01-02", periods=75)]
    prices = [4.0]
    for t in range(1, 75):
        size = (1.5 if t < 20 else 1.0) * (2.0 if SHIFT <= t < 56 else 1.0)
        prices.append(prices[-1] * (1 + (1 if t % 2 else -1) * size / 100))
    md = build_market_data(make_panels(longer, {ETF: [flat(p) for p in prices], ETF_B: [flat(p / 2) for p in prices]}))
    response = response_days(drift_config(), md)
    stages = ["normal", "alert", "degrade", "retrain"]
    walk = [(longer[k], stages[response.stage[k]]) for k in range(1, 75) if response.stage[k] != response.stage[k - 1]]
    assert walk == [(longer[52], "alert"), (longer[53], "degrade"), (longer[54], "retrain"),
                    (longer[62], "degrade"), (longer[65], "alert"), (longer[66], "normal")]
    assert response.exposure[[51, 52, 53, 61, 62, 64, 65]].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 1.0]


def test_defensive_mode_moves_the_cut_into_the_defensive_symbol():
    """ETF 0.6, ETF_B 0.2 at 50 %: ETF 0.3; ETF_B 0.1 plus the cut 0.8 × 0.5 = 0.5."""
    target = rows([45, 53], {ETF: 0.6, ETF_B: 0.2})
    got = apply_drift_response(target, drift_config(degrade_mode="defensive", defensive_symbol=ETF_B), market())
    note = "rebalance; " + VOL.format("degrade")
    assert table(got) == [(DAYS[45], 0.6, 0.2, None, None), (DAYS[53], 0.3, 0.5, note, note)]


def test_exposure_override_and_an_unknown_defensive_symbol():
    config = drift_config()
    deeper = config.model_copy(update={"risk": RiskConfig(drift=config.risk.drift.model_copy(update={"exposure": 0.2}))})
    got = apply_drift_response(rows([53]), deeper, market())
    assert table(got) == [(DAYS[53], 0.12, 0.08, "rebalance; drift degrade 20%: volatility",
                           "rebalance; drift degrade 20%: volatility")]
    from vnpy_rotation.errors import InputRejected

    with pytest.raises(InputRejected, match="defensive_symbol"):
        apply_drift_response(rows([53]), drift_config(degrade_mode="defensive", defensive_symbol="511010.SSE"),
                             market())


def test_off_returns_the_plan_itself_and_computes_nothing(monkeypatch):
    import vnpy_rotation.backtest.drift_response as module

    monkeypatch.setattr(module, "drift_history", lambda *a, **k: pytest.fail("a monitor was computed"))
    target = rows([45, 53])
    assert apply_drift_response(target, BacktestConfig(), market()) is target
    assert simulate(market(), target, BacktestConfig()).drift_events is None


def test_share_plans_pass_unchanged_with_a_warning():
    target = plan({DAYS[53]: {ETF: 1000}}, (ETF, ETF_B), "shares")
    with pytest.warns(DriftSkipped):
        assert apply_drift_response(target, drift_config(), market()) is target


@pytest.mark.parametrize("cut", [47, 51, 55])
def test_rows_decided_up_to_t_do_not_see_the_bars_after_t(cut):
    """A calm market, and the same with wild bars after day ``cut``: every row decided up to the cut, and
    every event up to it, as in the calm one; after it the wild bars move the ladder."""
    rng = np.random.default_rng(cut)
    prices = path(shift=LENGTH)
    changed = prices[:cut + 1] + list(prices[cut] * np.cumprod(1 + rng.normal(0, 0.05, LENGTH - cut - 1)))
    target = rows(list(range(44, LENGTH)))
    base = apply_drift_response(target, drift_config(), market(prices))
    other = apply_drift_response(target, drift_config(), market(changed))
    assert table(base)[:cut - 44 + 1] == table(other)[:cut - 44 + 1]
    assert table(base) != table(other)  # the perturbation is seen after the cut
    day = pd.Timestamp(DAYS[cut])

    def until(events: pd.DataFrame) -> list[tuple]:
        return list(events[events["date"] <= day].itertuples(index=False))

    assert until(base.drift_events) == until(other.drift_events)
    assert len(other.drift_events) > len(until(other.drift_events))  # the wild bars raised events


def test_history_before_the_first_session_beyond_the_windows_changes_nothing():
    """The live instance loads its own amount of history; stepping from the same first session, with the
    recalibrations counted from it, gives the same rows as the backtest with more history before it (the
    windows need 44 sessions before the first, plus one bar for the first return)."""
    md = market()
    since = pd.Timestamp(DAYS[50])
    config = drift_config()
    config = config.model_copy(update={"risk": RiskConfig(drift=config.risk.drift.model_copy(
        update={"recalibrate_every": 3}))})
    target = rows(list(range(50, LENGTH)))
    whole = apply_drift_response(target, config, md, since)
    short = apply_drift_response(target, config, md.window(pd.Timestamp(DAYS[50 - 45]).date(), None), since)
    assert table(whole) == table(short)
    assert whole.drift_events.equals(short.drift_events)


def test_basket_is_the_equal_weight_return_and_the_total_turnover():
    md = market()
    inputs = basket_inputs(md)
    assert math.isnan(inputs.returns[0])
    assert inputs.returns[1:4] == pytest.approx([0.015, -0.015, 0.015])
    assert inputs.volume[0] == pytest.approx(1_000_000 * 4.0 + 1_000_000 * 2.0)


def test_a_backtest_trades_the_cut_names_it_and_returns_the_events():
    """Bought on day 46 (decided 45), cut on day 54 (decided 53): the sells name the degrade rung."""
    md = market()
    result = simulate(md, rows([45, 53]), drift_config()).to_result()
    sells = result.trades[result.trades["direction"] == "sell"]
    assert sells["datetime"].dt.strftime("%Y-%m-%d").unique().tolist() == [DAYS[54]]
    assert (sells["reason"] == "rebalance; " + VOL.format("degrade")).all()
    assert result.drift_events["kind"].tolist() == ["stage_changed"] * 3 + ["flag_raised"]


@pytest.mark.parametrize("monitor,missing", [("factor_psi", "factor panel"), ("order_book", "tick")])
def test_monitors_without_their_input_are_rejected(monitor, missing):
    with pytest.raises(ValidationError, match=missing):
        DriftResponseConfig(enabled=True, monitor=DriftConfig(monitors=("volatility", monitor)))


def test_run_py_rejects_a_drift_config_naming_the_field(tmp_path):
    config = tmp_path / "drift.yaml"
    config.write_text("backtest:\n  risk:\n    drift:\n      enabled: true\n      response: {degrade_mode: defensive}\n",
                      encoding="utf-8")
    done = run_cli("backtest", "--strategy", "etf_rotation", "--config", str(config), "--out", str(tmp_path / "out"),
                   home=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "risk.drift.response" in done.stderr and str(config) in done.stderr


# ---------------------------------------------------------------------------------------------------
# Real data: replay == backtest with the response on, and the false-alarm rate of the default config
# ---------------------------------------------------------------------------------------------------

# Windows that fit etf_rotation's warm-up (its loaded history before --start), thresholds at 95 % so the
# 2024 sell-off moves the ladder inside the span.
REPLAY_DRIFT = """backtest:
  risk:
    drift:
      enabled: true
      recalibrate_every: 10
      monitor: {reference_days: 60, recent_days: 10, null_draws: 400, quantile: 0.95}
"""


@needs_real
def test_replay_with_the_drift_response_equals_the_backtest(tmp_path):
    """The live stack cuts the same rows as the backtest, fills and reasons. The span starts on a decision day
    inside a drift episode of the warm-up (January 2024): both step the response from the first session, so
    that row is only an alert; a live decision stepping from the first loaded bar would already cut it
    (checked: 16 differing fills)."""
    config = tmp_path / "drift.yaml"
    config.write_text(REPLAY_DRIFT, encoding="utf-8")
    span = ("--start", "2024-01-19", "--end", "2024-04-19")
    live, backtest = replay_and_backtest(tmp_path, "etf_rotation", span, config)
    key = ["vt_symbol", "direction", "volume", "reason"]
    assert live[key].values.tolist() == backtest[key].values.tolist()
    assert live["reason"].str.contains("drift (?:degrade|retrain) 50%").any()  # the response did cut rows
    events = pd.read_csv(tmp_path / "backtest" / "drift_events.csv")
    assert "degrade" in set(events["stage"])


@needs_real
def test_false_alarm_rate_of_the_default_config_on_the_bundled_etfs(bundled_market):
    """The default response (500-day reference, 20-day recent window, 99 % thresholds recalibrated every
    20 sessions) on the basket of every bundled ETF over its whole history. Real markets change regime, so
    these are upper bounds on the false-alarm rate (docs/risk/drift.md states the figures)."""
    config = BacktestConfig(risk=RiskConfig(drift=DriftResponseConfig(enabled=True)))
    response = response_days(config, bundled_market)
    judged = len(bundled_market.days) - (500 + 20 - 1)
    stages = np.bincount(response.stage[-judged:], minlength=4) / judged
    events = response.events
    alerts = int(((events["kind"] == "stage_changed") & (events["stage"] == "alert")
                  & events["monitors"].ne("")).sum())
    print(f"\n{judged} sessions judged; share per rung normal/alert/degrade/retrain: "
          + " / ".join(f"{s:.1%}" for s in stages)
          + f"; episodes (normal → alert): {alerts}; cut sessions: {(response.exposure[-judged:] < 1).mean():.1%}")
    assert judged > 1000
    assert stages[0] > 0.85  # the book runs at full exposure most of the time
    assert (response.exposure[-judged:] < 1).mean() < 0.10


def test_a_monitor_section_without_a_list_runs_the_basket_monitors():
    config = DriftResponseConfig.model_validate({"enabled": True, "monitor": {"reference_days": 60, "recent_days": 10}})
    assert config.monitor.monitors == ("volatility", "volume", "return_ks", "return_mean")


def test_a_defensive_symbol_outside_the_plan_gets_its_own_column():
    """A plan on ETF alone at 0.8; the cut 0.4 goes to ETF_B (a symbol of the strategy's bars)."""
    target = plan({DAYS[45]: {ETF: 0.8}, DAYS[53]: {ETF: 0.8}}, (ETF,), "weight")
    got = apply_drift_response(target, drift_config(degrade_mode="defensive", defensive_symbol=ETF_B), market())
    note = "rebalance; " + VOL.format("degrade")
    assert list(got.frame.columns) == [ETF, ETF_B]
    assert table(got) == [(DAYS[45], 0.8, 0.0, None, None), (DAYS[53], 0.4, 0.4, note, note)]
