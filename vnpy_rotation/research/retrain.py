"""What the response ladder's "retrain" stage produces: a walk-forward re-optimisation and a parameter
audit report comparing the strategy's current settings with the ones the walk-forward proposes.

It is a proposal for a person to read. Nothing here changes a running strategy: adopting the proposal
means releasing a new strategy version, which goes through the release checks and the canary stages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..backtest.config import BacktestConfig
from ..backtest.report_md import format_value
from ..data.market_data import MarketData
from .walkforward import HOLDOUT, WalkForwardResult, evaluate, run_walkforward, walk_forward
from .wf_config import make_spec
from .wf_report import write_report

AUDIT_FILE = "parameter_audit.md"
WALKFORWARD_DIR = "walkforward"
COMPARED = (("annual_return", "pct"), ("sharpe", "num"), ("max_drawdown", "pct"), ("trade_count", "int"))
NOT_LIVE = ("This is a proposal. Nothing here goes live by itself: the running strategy keeps its current "
            "settings until a person releases a new version, which then passes the release checks and the "
            "canary stages.")


@dataclass(frozen=True)
class ParameterChange:
    name: str
    current: Any
    proposed: Any  # the walk-forward's choice for the holdout (chosen most often over the windows)
    latest: Any  # the last window's choice

    @property
    def changed(self) -> bool:
        return bool(self.current != self.proposed)


@dataclass(frozen=True)
class RetrainAudit:
    strategy: str
    reason: str  # why the retrain was requested (the response event's reason)
    span: tuple[date, date]
    parameters: tuple[ParameterChange, ...]
    current_holdout: dict[str, Any] | None  # metrics of the current settings on the holdout
    proposed_holdout: dict[str, Any] | None  # metrics of the proposal on the holdout
    overfit_flagged: bool | None
    lookahead_ok: bool
    report: Path  # the parameter audit (markdown)
    walkforward_files: tuple[Path, ...]

    @property
    def proposed(self) -> dict[str, Any]:
        return {p.name: p.proposed for p in self.parameters}

    @property
    def changes(self) -> tuple[ParameterChange, ...]:
        return tuple(p for p in self.parameters if p.changed)


def retrain(strategy: str, settings: dict[str, Any], start: date, end: date, out: Path, *, reason: str = "",
            config: BacktestConfig | None = None, grid: dict[str, list[Any]] | None = None,
            market: MarketData | None = None, store: Any = None, **options: Any) -> RetrainAudit:
    """Walk forward ``strategy`` from its current ``settings`` over ``start … end`` (``grid``: the searched
    values, default the strategy's ``search_space``; ``options``: further walk-forward settings such as
    ``train_years``), write the walk-forward report to ``out/walkforward`` and the parameter audit to
    ``out/parameter_audit.md``. ``market`` skips loading (tests, callers holding the data)."""
    spec = make_spec(strategy, settings, config, start=start, end=end, grid=grid, **options)
    result = walk_forward(market, spec) if market is not None else run_walkforward(spec, store)
    files = tuple(write_report(result, out / WALKFORWARD_DIR))
    current = _current(result)
    parameters = tuple(ParameterChange(name, current[name], result.holdout_params[name], result.last_params[name])
                       for name in spec.grid)
    current_holdout = proposed_holdout = None
    if result.holdout is not None:
        proposed_holdout = result.holdout.metrics
        current_holdout = evaluate(result.market, spec, current, result.holdout.span, HOLDOUT).metrics
    audit = RetrainAudit(strategy, reason, result.span.as_tuple(), parameters, current_holdout, proposed_holdout,
                         result.overfit.flagged, all(c.ok for c in result.lookahead), out / AUDIT_FILE, files)
    out.mkdir(parents=True, exist_ok=True)
    audit.report.write_text(render_audit(audit, result), encoding="utf-8")
    return audit


def _current(result: WalkForwardResult) -> dict[str, Any]:
    """The current value of every searched parameter (the base settings, or the strategy's default)."""
    from ..strategies import create_strategy

    run = result.spec.run
    full = create_strategy(run.strategy_name, run.strategy_settings).settings.model_dump(mode="json")
    return {name: full[name] for name in result.spec.grid}


def _cell(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_audit(audit: RetrainAudit, result: WalkForwardResult) -> str:
    start, end = audit.span
    lines = [f"# Parameter audit: {audit.strategy}", "", NOT_LIVE, "",
             f"- requested because: {audit.reason or 'not stated'}",
             (f"- walk-forward: {start} … {end}, {len(result.windows)} windows, objective "
              f"{result.spec.options.objective}, grid from {result.spec.grid_source}"),
             f"- look-ahead check: {'passed' if audit.lookahead_ok else 'FAILED'}",
             f"- overfit check: {({None: 'not evaluated', True: 'FLAGGED', False: 'passed'})[audit.overfit_flagged]}",
             "", "## Parameters", "", "| parameter | current | proposed | last window's choice | changed |",
             "|---|---|---|---|---|"]
    lines += [f"| {p.name} | {_cell(p.current)} | {_cell(p.proposed)} | {_cell(p.latest)} | "
              f"{'yes' if p.changed else 'no'} |" for p in audit.parameters]
    lines += ["", "## Holdout (no choice saw it)", ""]
    if audit.current_holdout is None or audit.proposed_holdout is None:
        lines.append("No holdout was configured: the proposal has no out-of-sample comparison.")
    else:
        lines += ["| settings | " + " | ".join(name for name, _ in COMPARED) + " |",
                  "|---|" + "---|" * len(COMPARED)]
        for label, metrics in (("current", audit.current_holdout), ("proposed", audit.proposed_holdout)):
            lines.append(f"| {label} | " + " | ".join(format_value(metrics.get(name), kind)
                                                    for name, kind in COMPARED) + " |")
    lines += ["", f"The walk-forward report is in `{WALKFORWARD_DIR}/`.", ""]
    return "\n".join(lines)
