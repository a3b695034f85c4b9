"""The risk benchmark's pieces run on small inputs and measure what they claim (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import fresh_bundled_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_risk  # noqa: E402


@pytest.fixture(scope="module")
def bundled(runtime_home):
    """The bundled ETFs in an emptied database, once for the tests that run the real stack."""
    fresh_bundled_store()


def test_synthetic_book_is_seeded_and_consistent():
    a, b = bench_risk.synthetic_book(12, 40, seed=3), bench_risk.synthetic_book(12, 40, seed=3)
    assert np.array_equal(a.close, b.close) and np.array_equal(a.entry, b.entry)
    assert not np.array_equal(a.close, bench_risk.synthetic_book(12, 40, seed=4).close)
    assert a.close.shape == a.volume.shape == a.factor.shape == (40, 12)
    np.testing.assert_allclose(a.equity, a.cash + a.close @ a.shares)
    assert a.cash >= 0 and (a.shares % 100 == 0).all()  # whole lots, bought with the capital
    assert np.isnan(a.factor[:20]).all() and np.isfinite(a.factor[20:]).all()


def test_daily_evaluation_times_every_part():
    from vnpy_rotation.risk.drift import DriftConfig

    small = DriftConfig(reference_days=40, recent_days=20, null_draws=100, quantile=0.95)
    result = bench_risk.bench_daily(days=3, symbols=8, drift_config=small)
    assert set(result["parts"]) == {"evaluate()", "drift", "var_es", "compiled", "total"}
    assert result["parts"]["total"][0] >= max(result["parts"][p][0] for p in ("evaluate()", "drift", "var_es"))
    assert result["var_methods"] == 10 and sum(result["actions"].values()) == 3
    assert "order_book" in result["unavailable"] and "factor_psi" in result["monitors"]
    assert bench_risk.report_daily(result)  # the closing table's rows


def test_backtest_sides_armed_trades_like_off(bundled):
    (result,) = bench_risk.bench_backtest(rounds=1, names=("etf_rotation",))
    counts = result["counts"]
    assert counts["armed"] == counts["off"]  # unreachable thresholds: evaluated, never acting
    assert counts["off"][2] == 0 and counts["on"][2] > 0  # the account ladder binds in the bundled span
    assert set(result["slowdown"]) == set(result["slowdown_loop"]) == {"armed", "on"}
    assert all(0 < result["loop_ms"][side] < result["simulate_ms"][side] for side in ("off", "armed", "on"))
    assert result["drift"]["rounds"] == 2 and result["drift"]["ms"] > 0
    rows = bench_risk.report_backtest([result])  # the closing table's rows (bench_risk.py extends its table with them)
    assert len(rows) == 4 and all(len(row) == 3 and all(isinstance(cell, str) for cell in row) for row in rows)


def test_send_order_sides_and_our_rule(bundled, tmp_path):
    result = bench_risk.bench_send_order(tmp_path, rounds=1, per_batch=8, live_rounds=1)
    for mode in ("paused", "live"):
        assert set(result[mode]["wall"]["sides"]) == {"none", "vnpy", "ours"}
        assert "added" in result[mode]["cpu"]
    assert result["orders"] == 8
    assert bench_risk.report_send_order(result)  # the closing table's rows
    from vnpy_rotation.apps.risk.rule import RULE_NAME

    ((name, p50, p99),) = result["rule_alone"]
    assert name == RULE_NAME and 0 < p50 <= p99
    # every buy of the refusal batches was refused (time_batch raises otherwise), by each side in turn
    assert set(result["refusals"]) == {"vnpy", "ours", "orders"} and result["refusals"]["orders"] == 2 * 6


@pytest.mark.parametrize("text", ["daily,nope"])
def test_unknown_part_is_refused(text, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_risk.py", "--only", text])
    with pytest.raises(SystemExit) as exit_info:
        bench_risk.main()
    assert exit_info.value.code == 2 and "nope" in capsys.readouterr().err
