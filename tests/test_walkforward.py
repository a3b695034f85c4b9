"""Walk-forward optimisation: the windows, the deflated Sharpe ratio, choices made on train data only,
test metrics equal to direct backtests, a holdout no choice sees, and ``run.py walkforward`` end to end."""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from hypothesis import example, given
from hypothesis import strategies as st

from vnpy_rotation.backtest.config import BacktestConfig
from vnpy_rotation.backtest.engine import TargetPlan, simulate
from vnpy_rotation.backtest.lookahead import perturb_after
from vnpy_rotation.backtest.metrics import compute_metrics
from vnpy_rotation.backtest.sweep import sweep
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.research.deflated import deflated_sharpe, expected_max_sharpe, probabilistic_sharpe
from vnpy_rotation.research.walkforward import choose, most_chosen, overfit_check, walk_forward
from vnpy_rotation.research.wf_config import make_spec, read_walkforward_spec
from vnpy_rotation.research.wf_report import FILES, SECTIONS
from vnpy_rotation.research.windows import add_years, make_windows
from vnpy_rotation.strategies import STRATEGIES, create_strategy
from vnpy_rotation.strategies.momentum import MomentumTopNStrategy

DAY = timedelta(days=1)
START, END = date(2018, 1, 1), date(2023, 12, 31)
GRID = {"lookback": [20, 60]}


# --- windows -------------------------------------------------------------------------------------------

def test_seed_example_is_calendar_years():
    windows, holdout = make_windows(date(2018, 1, 1), date(2024, 12, 31), 3, 1, 1)
    assert [(w.train.start, w.train.end, w.test.start, w.test.end) for w in windows][0] == (
        date(2018, 1, 1), date(2020, 12, 31), date(2021, 1, 1), date(2021, 12, 31))
    assert [w.test.start.year for w in windows] == [2021, 2022, 2023]
    assert (holdout.start, holdout.end) == (date(2024, 1, 1), date(2024, 12, 31))


@given(start=st.dates(date(2000, 1, 1), date(2020, 12, 31)), days=st.integers(0, 15 * 366),
       train=st.integers(1, 5), test=st.integers(1, 3), holdout=st.integers(0, 2),
       mode=st.sampled_from(["rolling", "expanding"]))
@example(start=date(2016, 2, 29), days=8 * 365 + 2, train=3, test=1, holdout=1, mode="rolling")
def test_window_properties(start, days, train, test, holdout, mode):
    end = start + timedelta(days=days)
    windows, hold = make_windows(start, end, train, test, holdout, mode)
    limit = hold.start - DAY if hold else end
    if hold:
        assert hold.end == end and hold.start - DAY == add_years(end, -holdout)
    for w in windows:
        assert start <= w.train.start <= w.train.end < w.test.start <= w.test.end <= limit  # no overlap, no holdout
        assert w.test.start == w.train.end + DAY
        assert w.train.start == (start if mode == "expanding" else add_years(start, (w.number - 1) * test))
        assert w.test.start == add_years(start, (w.number - 1) * test + train)
    for before, after in zip(windows, windows[1:]):
        assert after.test.start == before.test.end + DAY  # contiguous, non-overlapping tests
    # as many windows as fit: the next one would reach past the walk-forward span
    assert add_years(start, len(windows) * test + train + test) - DAY > limit


# --- deflated Sharpe -----------------------------------------------------------------------------------

def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_deflated_sharpe_by_hand():
    # PSR against 0 of a daily Sharpe of 0.1 over 253 normal returns, by hand:
    z = 0.1 * math.sqrt(252) / math.sqrt(1 - 0 * 0.1 + (3 - 1) / 4 * 0.1 ** 2)
    assert probabilistic_sharpe(0.1, 0.0, 253, 0.0, 3.0) == pytest.approx(_normal_cdf(z), abs=1e-12)
    # the paper's example: annual SR 2.5 over 1250 days, skew -3, kurtosis 10, N = 100, V = 1/2 (annual)
    sr0 = expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=1e-3)


@given(variance=st.floats(1e-6, 1e-2), seed=st.integers(0, 50))
def test_deflated_sharpe_properties(variance, seed):
    returns = np.random.default_rng(seed).normal(0.0008, 0.01, 500)
    values = [deflated_sharpe(returns, n, variance) for n in (1, 2, 5, 20, 100, 1000)]
    assert values[0].dsr == pytest.approx(values[0].psr)  # one trial: PSR against 0
    assert values[0].expected_max_sharpe == 0.0
    for smaller, larger in zip(values, values[1:]):
        assert larger.expected_max_sharpe > smaller.expected_max_sharpe
        assert larger.dsr <= smaller.dsr  # more trials, less confidence
    assert all(v.dsr <= v.psr for v in values)


# --- choices -------------------------------------------------------------------------------------------

def test_choice_rules():
    assert choose([math.nan, 1.0, 1.0, 0.5]) == 1  # NaN loses, a tie goes to the first
    assert choose([None, math.nan]) == 0
    a, b = {"top_n": 1}, {"top_n": 2}
    assert most_chosen([a, a, b]) == a
    assert most_chosen([a, b, b, a]) == a  # a tie goes to the most recent choice
    assert most_chosen([b, a]) == a


def test_overfit_flag():
    flagged = overfit_check([0.20, 0.10], 0.05, 0.05)  # mean 15 %, holdout 5 %: 10 points apart
    assert flagged.flagged is True and flagged.gap == pytest.approx(-0.10)
    assert overfit_check([0.10, 0.12], 0.09, 0.05).flagged is False
    assert overfit_check([0.10, None], 0.09, 0.05).flagged is None
    assert overfit_check([0.10], None, 0.05).flagged is None


# --- the walk-forward on the bundled ETFs --------------------------------------------------------------

class SpyMomentum(MomentumTopNStrategy):
    """Momentum that records the first and last day of every market it decides on."""

    name: ClassVar[str] = "spy_momentum"
    calls: ClassVar[list[tuple[pd.Timestamp, pd.Timestamp]]] = []

    def targets(self, market):
        SpyMomentum.calls.append((market.days[0], market.days[-1]))
        return super().targets(market)


def _spec(market, **options):
    return make_spec("spy_momentum", {"symbols": list(market.symbols)}, start=START, end=END, train_years=2,
                     grid=GRID, **options)


@pytest.fixture(scope="module")
def spy():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(STRATEGIES, "spy_momentum", SpyMomentum)
        yield SpyMomentum


@pytest.fixture(scope="module")
def walked(spy, bundled_market):
    spy.calls.clear()
    result = walk_forward(bundled_market, _spec(bundled_market))
    return result, list(spy.calls)


def _direct(market, name, settings, span):
    """A backtest of ``settings`` on ``span`` written out longhand: decide on the data up to the span's end,
    trade the span's days from cash."""
    strategy = create_strategy(name, settings)
    plan = strategy.targets(market.window(None, span.end))
    traded = market.window(span.start, span.end)
    run = simulate(traded, TargetPlan(plan.frame[plan.frame.index.isin(traded.days)]), BacktestConfig()).to_result()
    return compute_metrics(run.equity, trades=run.trades)


def test_windows_and_holdout(walked):
    result, _ = walked
    assert [w.window.test.start.year for w in result.windows] == [2020, 2021, 2022]
    assert (result.holdout.span.start, result.holdout.span.end) == (date(2023, 1, 1), END)


def test_chosen_parameters_are_the_train_argmax(walked, bundled_market):
    result, _ = walked
    base = {"symbols": list(bundled_market.symbols)}
    for outcome in result.windows:
        direct = [_direct(bundled_market, "momentum_topn", {**base, "lookback": v}, outcome.window.train)["sharpe"]
                  for v in GRID["lookback"]]
        assert outcome.grid["sharpe"].tolist() == pytest.approx(direct, rel=1e-9)
        assert outcome.chosen == {"lookback": GRID["lookback"][int(np.argmax(direct))]}
        assert outcome.train_objective == pytest.approx(max(direct), rel=1e-9)


def test_test_metrics_equal_a_direct_backtest(walked, bundled_market):
    result, _ = walked
    base = {"symbols": list(bundled_market.symbols)}
    for outcome in result.windows + [None]:
        evaluation = result.holdout if outcome is None else outcome.test
        direct = _direct(bundled_market, "momentum_topn", {**base, **evaluation.params}, evaluation.span)
        for key in ("total_return", "annual_return", "sharpe", "max_drawdown", "trade_count"):
            assert evaluation.metrics[key] == pytest.approx(direct[key], rel=1e-12), key


def test_no_evaluation_sees_past_its_span(walked, bundled_market):
    """In call order: the grid on each train span, its test span; the holdout; the look-ahead harness."""
    result, calls = walked
    last = {}

    def last_day(span):
        return last.setdefault(span, bundled_market.window(None, span.end).days[-1])

    expected = []
    for outcome in result.windows:
        expected += [last_day(outcome.window.train)] * len(GRID["lookback"]) + [last_day(outcome.window.test)]
    expected += [last_day(result.holdout.span)] * (1 + 1 + len(result.lookahead))
    assert [end for _, end in calls] == expected
    assert all(start == bundled_market.days[0] for start, _ in calls)  # the history before is warm-up


def test_the_holdout_is_not_used_by_any_choice(walked, spy, bundled_market):
    """Scramble every bar of the holdout: every choice and test result stays, the holdout's result moves."""
    result, _ = walked
    cut = int((bundled_market.days < pd.Timestamp(result.holdout.span.start)).sum()) - 1
    other = walk_forward(perturb_after(bundled_market, cut, seed=7), _spec(bundled_market))
    for mine, theirs in zip(result.windows, other.windows):
        pd.testing.assert_frame_equal(mine.grid, theirs.grid)
        assert mine.chosen == theirs.chosen and mine.test.metrics == theirs.test.metrics
    assert other.holdout_params == result.holdout_params
    assert other.holdout.metrics["total_return"] != result.holdout.metrics["total_return"]


def test_span_sweep_in_processes_equals_serial(bundled_market):
    combos = [{"lookback": 20, "top_n": 1}, {"lookback": 40, "top_n": 2}, {"lookback": 60, "top_n": 3}]
    base, span = {"symbols": list(bundled_market.symbols)}, (date(2019, 1, 1), date(2020, 12, 31))
    serial = sweep(bundled_market, "momentum_topn", combos, BacktestConfig(), base=base, span=span)
    with ProcessPoolExecutor(2) as pool:
        forked = sweep(bundled_market, "momentum_topn", combos, BacktestConfig(), base=base, executor=pool, span=span)
    assert forked.equals(serial)
    assert serial["total_return"].nunique() == len(combos)


def test_config_file_sections_and_errors(tmp_path):
    good = tmp_path / "wf.yaml"
    good.write_text("strategy: {pool: A_SHARE}\nbacktest: {capital: 500000}\n"
                    "walkforward: {start: 2018-01-01, train_years: 2, objective: calmar, grid: {top_n: [1, '2']}}\n")
    spec = read_walkforward_spec("momentum_topn", good, None, date(2023, 12, 31), None, {"mode": "expanding"}, None)
    assert spec.grid == {"top_n": (1, 2)} and spec.run.config.capital == 500_000
    assert (spec.run.start, spec.run.end, spec.options.mode, spec.options.train_years) == (
        START, END, "expanding", 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("walkforward: {train_years: 0, grid: {top_n: [1, x]}}\n")
    with pytest.raises(InputRejected) as caught:
        read_walkforward_spec("momentum_topn", bad, None, None, None, {}, None)
    assert str(bad) in str(caught.value) and "train_years" in str(caught.value)
    with pytest.raises(InputRejected, match="lookback"):
        read_walkforward_spec("momentum_topn", None, None, None, None, {}, ["lookback=20,0"])


# --- run.py walkforward --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("walkforward_home")


def test_cli_end_to_end(home):
    out = home / "wf"
    done = run_cli("walkforward", "--strategy", "momentum_topn", "--start", str(START), "--end", str(END),
                   "--train-years", "2", "--grid", "lookback=20,60", "--workers", "2", "--out", str(out), home=home)
    assert done.returncode == 0, done.stderr
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
    windows = pd.read_csv(out / "windows.csv")
    assert windows["window"].tolist() == [1, 2, 3] and set(windows["lookback"]) <= {20, 60}
    assert len(pd.read_csv(out / "grid_train.csv")) == 3 * 2
    assert pd.read_csv(out / "stability.csv")["parameter"].tolist() == ["lookback"]
    trades = pd.read_csv(out / "trades.csv")
    assert {"segment", "reason", "vt_symbol", "direction"} <= set(trades.columns)
    assert set(trades["segment"]) == {"window_1", "window_2", "window_3", "holdout"}
    equity = pd.read_csv(out / "equity.csv", parse_dates=["date"])
    assert equity["date"].is_monotonic_increasing and equity["date"].is_unique
    assert equity["segment"].iloc[-1] == "holdout" and equity["date"].iloc[-1] <= pd.Timestamp(END)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 2 and isinstance(summary["overfit"]["flagged"], bool)
    assert 0 <= summary["deflated_sharpe"]["dsr"] <= summary["deflated_sharpe"]["psr"] <= 1
    holdout = json.loads((out / "holdout.json").read_text())
    assert holdout["span"] == {"start": "2023-01-01", "end": "2023-12-31"} and holdout["lookahead_ok"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert all(f"## {heading}" in report for heading in SECTIONS.values())

    # window 1's test metrics are those of run.py backtest on its test span with its parameters
    first = windows.iloc[0]
    config = home / "window1.yaml"
    config.write_text(f"strategy: {{lookback: {int(first['lookback'])}}}\n")
    single = home / "single"
    done = run_cli("backtest", "--strategy", "momentum_topn", "--config", str(config), "--start", first["test_start"],
                   "--end", first["test_end"], "--out", str(single), home=home)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((single / "metrics.json").read_text())
    for key in ("total_return", "annual_return", "sharpe", "max_drawdown", "trade_count"):
        assert first[f"test_{key}"] == pytest.approx(metrics[key], rel=1e-9), key


def test_cli_bad_grid_names_the_field(home):
    out = home / "bad"
    done = run_cli("walkforward", "--strategy", "momentum_topn", "--grid", "top_n=2,many", "--out", str(out), home=home)
    assert done.returncode == 2
    assert "--grid" in done.stderr and "top_n" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
