"""The canary's stage table: promotion gates and rollback rules on hand-written sessions.

The scenario table uses a three-stage table (shadow for 2 sessions, 10 % for 3, 100 % for 3) and one
backtest history: 25 repetitions of (-1 %, -1 %, -1 %, +x) with x = 1/0.99**3 - 1, so the equity is back
at its peak every 4 sessions. Worked by hand:

- historical one-day VaR at 99 % of those 100 returns: floor(100 x 0.01) = 1 whole return beyond it, so
  VaR = -(second smallest) = 1 %; an exception is a loss strictly above 1 %;
- max drawdowns of 3-session windows cycle 1-0.99**3 (the three losses), 1-0.99**2, 1 %, 1-0.99**2: 25 of
  the 98 windows are 1-0.99**3 = 2.9701 %, and the 0.95 and 0.99 quantiles (positions 92.15 and 96.03 of
  0..97) both fall among them: both thresholds are 2.9701 %;
- 4-session windows cycle 2.9701 %, 1.99 %, 1.99 %, 2.9701 %: both quantiles 2.9701 % again.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vnpy_rotation.canary.config import (
    DEFAULT_STAGES,
    CanaryConfig,
    PromotionGates,
    RollbackRules,
    Stage,
    canary_config,
    read_canary_config,
)
from vnpy_rotation.canary.evidence import (
    StageEvidence,
    binomial_p_value,
    historical_var,
    max_drawdown,
    return_correlation,
    rolling_drawdown_quantile,
    tracking_bp,
    value_weighted_bp,
    var_exceptions,
)
from vnpy_rotation.canary.gates import Action, evaluate
from vnpy_rotation.errors import InputRejected

STAGES = (Stage(name="shadow", share=0.0, min_sessions=2), Stage(name="10pct", share=0.1, min_sessions=3),
          Stage(name="full", share=1.0, min_sessions=3))
CONFIG = CanaryConfig(stages=STAGES, min_history=30)
X = 1 / 0.99**3 - 1
HISTORY = np.tile([-0.01, -0.01, -0.01, X], 25)
DAY = date(2024, 3, 1)
DD3 = 1 - 0.99**3  # 0.029701: both drawdown thresholds, 3- and 4-session horizons

# the passing stage: 3 sessions, live 10 bp above the backtest on day 1 only (tracking 10/3 bp), max
# drawdown 0.5 %, no loss above VaR, slippage 2 bp above the model, 98 % filled, no HALT
LIVE = (0.001, -0.005, 0.002)
BACK = (0.0, -0.005, 0.002)


def evidence(live: tuple[float, ...] = LIVE, back: tuple[float, ...] | None = None, *, slip: float | None = 3.0,
             model: float | None = 1.0, submitted: float = 10_000.0, filled: float = 9_800.0,
             halted: bool = False, history: np.ndarray = HISTORY) -> StageEvidence:
    if back is None:
        back = BACK if live == LIVE else tuple(r - 0.001 * (i == 0) for i, r in enumerate(live))
    return StageEvidence(sessions=len(live), live_returns=np.array(live), backtest_returns=np.array(back),
                         backtest_history=history, slippage_bp=slip, model_slippage_bp=model,
                         submitted=submitted, filled=filled, halted=halted)


# (case, stage index, evidence, config, expected action, {(gate, kind): (value, threshold, passed)})
SCENARIOS = [
    ("every gate passes after the minimum sessions", 1, evidence(), CONFIG, Action.PROMOTE,
     {("tracking_bp", "promote"): (10 / 3, 20.0, True), ("slippage_bp", "promote"): (2.0, 10.0, True),
      ("drawdown", "promote"): (0.005, DD3, True), ("drawdown", "rollback"): (0.005, DD3, True),
      ("var_p_value", "promote"): (1.0, 0.05, True), ("fill_rate", "promote"): (0.98, 0.95, True),
      ("halt", "rollback"): (0.0, 0.0, True)}),
    ("the same at the last stage: the candidate becomes champion", 2, evidence(), CONFIG, Action.PROMOTE, {}),
    ("manual approval asks instead of promoting", 1, evidence(), CONFIG.model_copy(update={"approval": "manual"}),
     Action.AWAIT_APPROVAL, {}),
    ("two of three sessions: hold", 1, evidence(LIVE[:2], BACK[:2]), CONFIG, Action.HOLD,
     {("tracking_bp", "promote"): (5.0, 20.0, True)}),
    ("tracking 30 bp: no promotion, no rollback", 1, evidence(back=(0.001 - 0.009, -0.005, 0.002)), CONFIG,
     Action.HOLD, {("tracking_bp", "promote"): (30.0, 20.0, False), ("tracking_bp", "rollback"): (30.0, 60.0, True)}),
    ("slippage 20 bp over the model: hold", 1, evidence(slip=21.0), CONFIG, Action.HOLD,
     {("slippage_bp", "promote"): (20.0, 10.0, False), ("slippage_bp", "rollback"): (20.0, 30.0, True)}),
    ("fill rate 90 %: hold", 1, evidence(filled=9_000.0), CONFIG, Action.HOLD,
     {("fill_rate", "promote"): (0.9, 0.95, False), ("fill_rate", "rollback"): (0.9, 0.8, True)}),
    # one loss of 1.1 % > VaR 1 % in 3 sessions: p = 1 - 0.99**3 = 0.029701 < 0.05 but >= 0.01
    ("one VaR exception in three sessions: hold", 1, evidence((0.001, -0.011, 0.002)), CONFIG, Action.HOLD,
     {("var_p_value", "promote"): (1 - 0.99**3, 0.05, False), ("var_p_value", "rollback"): (1 - 0.99**3, 0.01, True)}),
    # rollback, each rule on its own
    ("tracking 65 bp: rollback", 1, evidence(back=(0.001 - 0.0195, -0.005, 0.002)), CONFIG, Action.ROLLBACK,
     {("tracking_bp", "rollback"): (65.0, 60.0, False), ("slippage_bp", "rollback"): (2.0, 30.0, True)}),
    ("slippage 34 bp over the model: rollback", 1, evidence(slip=35.0), CONFIG, Action.ROLLBACK,
     {("slippage_bp", "rollback"): (34.0, 30.0, False), ("tracking_bp", "rollback"): (10 / 3, 60.0, True)}),
    # four losses of exactly 1 % (none above VaR): drawdown 1 - 0.99**4 = 3.940399 % > 2.9701 %
    ("drawdown beyond the 0.99-quantile: rollback", 1, evidence((-0.01,) * 4), CONFIG, Action.ROLLBACK,
     {("drawdown", "rollback"): (1 - 0.99**4, DD3, False), ("var_p_value", "rollback"): (1.0, 0.01, True)}),
    # two losses of 1.1 % in 3 sessions: p = 3 x 0.01**2 x 0.99 + 0.01**3 = 0.000298; drawdown 1.1 %
    ("two VaR exceptions in three sessions: rollback", 1, evidence((-0.011, 0.02, -0.011)), CONFIG,
     Action.ROLLBACK, {("var_p_value", "rollback"): (0.000298, 0.01, False),
                       ("drawdown", "rollback"): (0.011, DD3, True)}),
    ("risk ladder HALTED: rollback", 1, evidence(halted=True), CONFIG, Action.ROLLBACK,
     {("halt", "rollback"): (1.0, 0.0, False)}),
    ("fill rate 79 %: rollback", 1, evidence(filled=7_900.0), CONFIG, Action.ROLLBACK,
     {("fill_rate", "rollback"): (0.79, 0.8, False)}),
    ("no session yet: nothing is evaluated, hold", 1, evidence(()), CONFIG, Action.HOLD,
     {("tracking_bp", "rollback"): (None, 60.0, None), ("var_p_value", "promote"): (None, 0.05, None)}),
    ("a rule trips before the minimum sessions", 1, evidence(LIVE[:1], BACK[:1], halted=True), CONFIG,
     Action.ROLLBACK, {}),
    # shadow: paper fills, so slippage and fill rate are not evaluated, however bad
    ("shadow ignores slippage and fill rate", 0, evidence(LIVE[:2], BACK[:2], slip=99.0, filled=10.0), CONFIG,
     Action.PROMOTE, {("slippage_bp", "promote"): (None, 10.0, None), ("fill_rate", "rollback"): (None, 0.8, None)}),
    ("no order yet: slippage and fill rate not evaluated, no block", 1,
     evidence(slip=None, model=None, submitted=0.0, filled=0.0), CONFIG, Action.PROMOTE,
     {("slippage_bp", "promote"): (None, 10.0, None), ("fill_rate", "promote"): (None, 0.95, None)}),
    ("a backtest history below min_history: drawdown and VaR not evaluated", 1, evidence(history=HISTORY[:20]),
     CONFIG, Action.PROMOTE, {("drawdown", "promote"): (None, None, None), ("var_p_value", "rollback"): (None, 0.01, None)}),
]


@pytest.mark.parametrize("case, stage, ev, config, action, expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_stage_scenarios(case: str, stage: int, ev: StageEvidence, config: CanaryConfig, action: Action,
                         expected: dict[tuple[str, str], tuple[float | None, float | None, bool | None]]) -> None:
    decision = evaluate(stage, ev, config, DAY)
    assert decision.action is action, decision.reason
    assert decision.day == DAY
    for (name, kind), (value, threshold, passed) in expected.items():
        gate = decision.gate(name, kind)
        assert gate.passed is passed, gate
        if value is None:
            assert gate.value is None and gate.threshold == threshold
        else:
            assert gate.value == pytest.approx(value, rel=1e-6), gate
            assert gate.threshold == pytest.approx(threshold, rel=1e-9), gate


def test_rollback_names_only_the_tripped_rules() -> None:
    """The rollback row of every other rule passes, so the reason names one rule (the scenario's own)."""
    for case, stage, ev, config, action, _ in SCENARIOS:
        if action is Action.ROLLBACK and "before" not in case:
            tripped = [g.name for g in evaluate(stage, ev, config).gates if g.kind == "rollback" and g.passed is False]
            assert len(tripped) == 1, (case, tripped)


def test_correlation_is_reported_not_gated() -> None:
    decision = evaluate(1, evidence(), CONFIG)
    corr = decision.gate("correlation", "report")
    # live and backtest differ only on day 1: corr of (1, -5, 2) and (0, -5, 2) per mille
    assert corr.value == pytest.approx(np.corrcoef([1, -5, 2], [0, -5, 2])[0, 1])
    assert corr.passed is None and corr.threshold is None


def test_halt_rule_can_be_switched_off() -> None:
    config = CONFIG.model_copy(update={"rollback": RollbackRules(halt=False)})
    assert evaluate(1, evidence(halted=True), config).action is Action.PROMOTE


# ---------------------------------------------------------------- configuration


def test_default_stage_table() -> None:
    assert [(s.name, s.share, s.min_sessions) for s in CanaryConfig().stages] == [
        ("shadow", 0.0, 5), ("5pct", 0.05, 10), ("20pct", 0.2, 10), ("50pct", 0.5, 10), ("full", 1.0, 10)]
    assert DEFAULT_STAGES == CanaryConfig().stages
    up, down = PromotionGates(), RollbackRules()
    assert (up.tracking_bp, up.slippage_bp, up.drawdown_quantile, up.var_p_value, up.fill_rate) == (20, 10, 0.95, 0.05, 0.95)
    assert (down.tracking_bp, down.slippage_bp, down.drawdown_quantile, down.var_p_value, down.fill_rate) == (60, 30, 0.99, 0.01, 0.8)


BAD = [
    ({"stages": [{"name": "a", "share": 0.2, "min_sessions": 1}, {"name": "b", "share": 0.1, "min_sessions": 1},
                 {"name": "c", "share": 1.0, "min_sessions": 1}]}, "stages: shares must increase strictly"),
    ({"stages": [{"name": "a", "share": 0.0, "min_sessions": 1}, {"name": "b", "share": 0.5, "min_sessions": 1}]},
     "stages: the last stage must hold the whole capital"),
    ({"stages": [{"name": "a", "share": 0.0, "min_sessions": 1}, {"name": "a", "share": 1.0, "min_sessions": 1}]},
     "stages: names must be unique"),
    ({"stages": []}, "stages: at least one stage"),
    ({"stages": [{"name": "a", "share": 1.0, "min_sessions": 0}]}, "stages.0.min_sessions"),
    ({"approval": "sometimes"}, "approval"),
    ({"promote": {"tracking_bp": 80}}, "rollback.tracking_bp: 60.0 is stricter than promote.tracking_bp 80"),
    ({"rollback": {"fill_rate": 0.99}}, "rollback.fill_rate: 0.99 is stricter than promote.fill_rate 0.95"),
    ({"promote": {"colour": 1}}, "promote.colour"),
]


@pytest.mark.parametrize("raw, message", BAD, ids=[m for _, m in BAD])
def test_bad_config_names_source_and_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InputRejected) as info:
        canary_config(raw, "strategy.yaml: canary")
    assert all(p.source == "strategy.yaml: canary" for p in info.value.problems)
    assert any(message in p.reason for p in info.value.problems), info.value


def test_read_canary_section(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("canary:\n  approval: manual\n  promote:\n    tracking_bp: 15\n", encoding="utf-8")
    config = read_canary_config(path)
    assert config.approval == "manual" and config.promote.tracking_bp == 15 and config.stages == DEFAULT_STAGES
    path.write_text("other: 1\n", encoding="utf-8")
    assert read_canary_config(path) == CanaryConfig()
    path.write_text("canary:\n  rollback:\n    fill_rate: 2\n", encoding="utf-8")
    with pytest.raises(InputRejected) as info:
        read_canary_config(path)
    assert info.value.problems[0].source == f"{path}: canary"
    assert info.value.problems[0].reason.startswith("rollback.fill_rate")


# ---------------------------------------------------------------- the pure measures, by hand


def test_measures_by_hand() -> None:
    assert tracking_bp(np.array([0.01, -0.02]), np.array([0.0, -0.01])) == pytest.approx(100.0)
    # equity 1.1, 0.55, 0.66: peak 1.1, trough 0.55 -> 50 %
    assert max_drawdown(np.array([0.1, -0.5, 0.2])) == pytest.approx(0.5)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    assert max_drawdown(np.array([-0.1])) == pytest.approx(0.1)  # the starting equity is a peak
    # 2-session windows of (0.1, -0.5, 0.2, -0.1): 50 %, 50 % (from the start at 1), 1 - 1.08/1.2 = 10 %
    history = np.array([0.1, -0.5, 0.2, -0.1])
    assert rolling_drawdown_quantile(history, 2, 0.5) == pytest.approx(0.5)
    assert rolling_drawdown_quantile(history, 2, 0.25) == pytest.approx(0.3)  # halfway between 10 % and 50 %
    assert rolling_drawdown_quantile(history, 2, 0.0) == pytest.approx(0.1)
    assert historical_var(HISTORY, 0.99) == pytest.approx(0.01)
    assert var_exceptions(np.array([-0.01, -0.0101, 0.05, -0.2]), 0.01) == 2
    assert value_weighted_bp(np.array([1000.0, 3000.0]), np.array([4.0, 8.0])) == pytest.approx(7.0)
    assert value_weighted_bp(np.array([]), np.array([])) is None
    assert return_correlation(np.array([0.01]), np.array([0.01])) is None
    assert return_correlation(np.array([0.01, 0.01]), np.array([0.01, 0.02])) is None  # flat
    assert return_correlation(np.array([0.0, 5e-324]), np.array([0.01, 0.02])) is None  # spread underflows


def test_binomial_golden() -> None:
    """P(X >= x | 10, 1 %): the values the documentation quotes, against scipy.stats.binom.sf."""
    assert binomial_p_value(1, 10, 0.99) == pytest.approx(1 - 0.99**10, rel=1e-12)  # 0.0956
    assert binomial_p_value(2, 10, 0.99) == pytest.approx(1 - 0.99**10 - 10 * 0.01 * 0.99**9, rel=1e-12)  # 0.00427
    assert round(binomial_p_value(1, 10, 0.99), 3) == 0.096 and round(binomial_p_value(2, 10, 0.99), 3) == 0.004
    for x in range(11):
        assert binomial_p_value(x, 10, 0.99) == pytest.approx(stats.binom.sf(x - 1, 10, 0.01), rel=1e-9, abs=1e-300)
    assert binomial_p_value(0, 0, 0.99) == 1.0


def test_evidence_rejects_mismatched_sessions() -> None:
    with pytest.raises(ValueError, match="sessions"):
        StageEvidence(3, np.zeros(2), np.zeros(3), HISTORY)
    with pytest.raises(ValueError, match="NaN"):
        StageEvidence(1, np.array([np.nan]), np.zeros(1), HISTORY)
    with pytest.raises(ValueError, match="filled"):
        StageEvidence(1, np.zeros(1), np.zeros(1), HISTORY, submitted=10.0, filled=11.0)


# ---------------------------------------------------------------- properties

returns = st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(returns)
def test_tracking_of_identical_series_is_zero(r: list[float]) -> None:
    a = np.array(r)
    assert tracking_bp(a, a.copy()) == 0.0
    assert tracking_bp(a, a + 0.001) == pytest.approx(10.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=5, max_size=60), st.integers(1, 5),
       st.floats(0, 1), st.floats(0, 1))
def test_drawdown_quantile_monotone_and_matches_windows(r: list[float], h: int, q1: float, q2: float) -> None:
    a = np.array(r)
    lo, hi = sorted((q1, q2))
    assert rolling_drawdown_quantile(a, h, lo) <= rolling_drawdown_quantile(a, h, hi) + 1e-15
    windows = [max_drawdown(a[j:j + h]) for j in range(len(a) - h + 1)]  # the one-window definition
    assert rolling_drawdown_quantile(a, h, 1.0) == pytest.approx(max(windows), abs=1e-12)
    assert 0.0 <= rolling_drawdown_quantile(a, h, 0.0) == pytest.approx(min(windows), abs=1e-12)
    assert max_drawdown(a) >= max(windows) - 1e-12  # a window never falls deeper than the whole series


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.floats(0.9, 0.999))
def test_binomial_p_in_unit_interval_and_decreasing(n: int, level: float) -> None:
    p = np.array([binomial_p_value(x, n, level) for x in range(min(n, 30) + 1)])
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert p[0] == 1.0
    assert np.all(np.diff(p) <= 1e-15)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2), st.lists(st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)), max_size=6),
       st.floats(-5, 50), st.floats(0, 1), st.booleans(), st.sampled_from(["auto", "manual"]))
def test_verdict_follows_the_rows(stage: int, pairs: list[tuple[float, float]], slip: float, fill: float,
                                  halted: bool, approval: str) -> None:
    """Whatever the evidence: ROLLBACK iff a rollback row failed; a promotion only after the minimum sessions
    with no promotion row failed, and only as AWAIT_APPROVAL under manual approval."""
    live, back = (tuple(x) for x in zip(*pairs)) if pairs else ((), ())
    ev = evidence(live, back, slip=slip, model=0.0, filled=10_000.0 * fill, halted=halted)
    config = CONFIG.model_copy(update={"approval": approval})
    decision = evaluate(stage, ev, config)
    rows = decision.gates
    assert (decision.action is Action.ROLLBACK) == any(g.kind == "rollback" and g.passed is False for g in rows)
    if decision.action in (Action.PROMOTE, Action.AWAIT_APPROVAL):
        assert len(live) >= STAGES[stage].min_sessions
        assert not any(g.kind == "promote" and g.passed is False for g in rows)
        assert (decision.action is Action.AWAIT_APPROVAL) == (approval == "manual")
    if decision.action is Action.HOLD:
        assert len(live) < STAGES[stage].min_sessions or any(g.kind == "promote" and g.passed is False for g in rows)
