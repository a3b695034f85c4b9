"""Building the result frames faster changes no frame: every frame ``to_result`` returns for the cases of
``result_cases`` (bundled ETFs, a synthetic VQM year with ladders, partial fills and refusals with an
ex-date, an empty plan) has the values, dtypes, index and columns the code before produced (``tests/golden/``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fresh_bundled_store
from result_cases import FRAMES, result_digest, runs

GOLDEN = json.loads((Path(__file__).resolve().parent / "golden" / "result_frames.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results(runtime_home):
    return {name: run.to_result() for name, run in runs(fresh_bundled_store()).items()}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_result_frame_is_the_old_one(results, name):
    mine = json.loads(json.dumps(result_digest(results[name])))
    for part in (*FRAMES, "drift_events", "initial_capital", "settings"):
        assert mine[part] == GOLDEN[name][part], part


def test_the_cases_reach_every_kind_of_row(results):
    """The cases are worth their time: text columns of several values, refusals, ex-dates, ladders."""
    rotating, momentum = results["rotating_partial"], results["momentum_bundled"]
    assert rotating.orders["cause"].nunique() == 2 and len(rotating.cash_flows) > 0
    assert set(momentum.orders["status"]) == {"filled", "partial", "refused"}
    assert momentum.orders["reason"].nunique() > 2 and momentum.trades["reason"].nunique() == 1
    assert results["vqm_synthetic_ladders"].risk_days["rung"].nunique() > 1
    assert len(results["empty"].trades) == 0


def test_the_public_constructor_gives_the_same_frames(runtime_home, monkeypatch):
    """Without pandas' block constructor (``pandas.api.internals``, new in pandas 3) ``to_result`` falls back on
    ``pd.DataFrame(dict)`` and every frame is still the old one; so are column labels a caller renames."""
    from vnpy_rotation.backtest import engine
    from vnpy_rotation.backtest.engine import symbol_columns

    monkeypatch.setattr(engine, "_from_blocks", None)
    cases = runs(fresh_bundled_store())
    for name in ("rotating_partial", "empty"):
        mine = json.loads(json.dumps(result_digest(cases[name].to_result())))
        for part in (*FRAMES, "drift_events"):
            assert mine[part] == GOLDEN[name][part], (name, part)
    labels = symbol_columns(("510300.SSE", "159915.SZSE"))
    labels.name = "symbol"
    assert symbol_columns(("510300.SSE", "159915.SZSE")).name is None
