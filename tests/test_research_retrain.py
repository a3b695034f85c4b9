"""The retrain stage's output: a real (small) walk-forward and the parameter audit comparing the current
settings with the proposal, which nothing applies."""

from __future__ import annotations

from datetime import date

from vnpy_rotation.research.retrain import AUDIT_FILE, retrain
from vnpy_rotation.research.walkforward import HOLDOUT, evaluate, walk_forward
from vnpy_rotation.research.wf_config import make_spec


def _table(text: str, header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_retrain_writes_an_audit_of_a_real_walk_forward(bundled_market, tmp_path):
    symbols = list(bundled_market.symbols)
    current = {"symbols": symbols, "lookback": 60, "top_n": 2}
    grid = {"lookback": [20, 60], "top_n": [1, 2]}
    audit = retrain("momentum_topn", current, date(2018, 1, 1), date(2023, 12, 31), tmp_path, reason="drift",
                    grid=grid, market=bundled_market, train_years=2)
    direct = walk_forward(bundled_market, make_spec("momentum_topn", current, start=date(2018, 1, 1),
                                                    end=date(2023, 12, 31), grid=grid, train_years=2))
    assert audit.proposed == direct.holdout_params
    assert [(p.name, p.current, p.latest) for p in audit.parameters] == [
        ("lookback", 60, direct.last_params["lookback"]), ("top_n", 2, direct.last_params["top_n"])]
    assert {p.name for p in audit.changes} == {k for k, v in direct.holdout_params.items() if current[k] != v}
    assert audit.proposed_holdout == direct.holdout.metrics
    # the current settings on the same holdout, backtested directly
    own = evaluate(bundled_market, direct.spec, {"lookback": 60, "top_n": 2}, direct.holdout.span, HOLDOUT)
    assert audit.current_holdout == own.metrics

    text = (tmp_path / AUDIT_FILE).read_text(encoding="utf-8")
    rows = _table(text, "| parameter | current | proposed | last window's choice | changed |")
    assert rows == [[p.name, str(p.current), str(p.proposed), str(p.latest), "yes" if p.changed else "no"]
                    for p in audit.parameters]
    holdout = _table(text, "| settings | annual_return | sharpe | max_drawdown | trade_count |")
    assert [r[0] for r in holdout] == ["current", "proposed"]
    assert (tmp_path / "walkforward" / "report.md").exists() and audit.walkforward_files
