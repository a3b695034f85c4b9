"""Write a backtest run to its output folder (the file contract of ``run.py backtest`` in the README)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..attribution import AttributionReport, attribute
from .attribution_inputs import from_backtest
from .report_html import write_html
from .report_md import ReportContext, write_markdown
from .risk_section import risk_summary
from .runner import BacktestRun

FILES = ("metrics.json", "equity.csv", "trades.csv", "orders.csv", "positions.csv", "corporate_actions.csv",
         "report.html", "report.md")
ATTRIBUTION_HEADING = "收益归因 P&L attribution"
ATTRIBUTION_TABLE_ID = "attribution-table"
SEGMENTS_HEADING = "分段归因 Brinson–Fachler by segment (Carino-linked returns; CNY sums)"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def data_description(run: BacktestRun) -> list[str]:
    md = run.market
    first_bar = {s: md.days[i].date() for s, i in zip(md.symbols, (~md.suspended).argmax(axis=0))}
    lines = [f"{len(md.symbols)} symbols, {len(md.days)} trading days {md.days[0].date()} … {md.days[-1].date()}",
             "fills at unadjusted prices; signals on backward-adjusted prices (factors from corporate actions)"]
    lines += [f"{s}: first tradable bar {d}, suspended/no-bar days {int(md.suspended[:, j].sum())}"
              for j, (s, d) in enumerate(first_bar.items())]
    if run.benchmark:
        lines.append(f"benchmark {run.benchmark[0]}")
    return lines


def attribution_table(report: AttributionReport) -> pd.DataFrame:
    """The report's attribution section: the summary lines plus the coverage (docs/ops/attribution.md)."""
    coverage = pd.DataFrame({"group": ["check"], "component": ["coverage (1 − Σ|daily residual| / gross)"],
                             "cny": [float("nan")], "share_of_gross": [report.coverage]})
    return pd.concat([report.summary, coverage], ignore_index=True)


def _extra_sections(run: BacktestRun, attribution: AttributionReport) -> list[tuple[str, pd.DataFrame]]:
    """Strategy-specific tables for the report: per-pool metrics and where capacity limits bound."""
    sections = [(ATTRIBUTION_HEADING, attribution_table(attribution))]
    if attribution.brinson is not None:
        sections.append((SEGMENTS_HEADING, attribution.brinson.linked()))
    if run.pool_metrics is not None:
        sections.append(("分池指标 Per-pool metrics", run.pool_metrics))
    capacity = run.plan.table("capacity")
    if capacity is not None:
        summary = (capacity.groupby(["pool", "vt_symbol", "rule"]).size().rename("decisions_bound").reset_index()
                   if len(capacity) else pd.DataFrame({"result": ["no capacity limit bound"]}))
        sections.append(("容量约束 Capacity limits that bound", summary))
    universe = run.plan.table("universe")
    if universe is not None and len(universe):
        counts = universe.drop(columns="date")
        sections.append(("选股范围 Universe per decision (mean / min / max names)",
                         counts.agg(["mean", "min", "max"]).T.round(1).rename_axis("count").reset_index()))
    events = run.result.drift_events
    if events is not None:  # the drift response is on: its stage changes and flags (drift_events.csv)
        shown = (events.assign(date=events["date"].dt.strftime("%Y-%m-%d"))[["date", "kind", "stage", "flag",
                                                                              "monitors"]]
                 if len(events) else pd.DataFrame({"result": ["no drift alert"]}))
        sections.append(("漂移响应 Drift response (stage changes and flags)", shown))
    return sections


def write_outputs(run: BacktestRun, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    result = run.result
    metrics = {**run.metrics, "risk": risk_summary(result)}  # computed once for the json and both reports
    (out / "metrics.json").write_text(json.dumps(_json_safe({
        **metrics,
        "identities_ok": all(c.ok for c in run.identities),
        "lookahead_ok": all(c.ok for c in run.lookahead),
    }), ensure_ascii=False, indent=2), encoding="utf-8")
    result.equity.to_csv(out / "equity.csv", date_format="%Y-%m-%d")
    result.trades.to_csv(out / "trades.csv", index=False, date_format="%Y-%m-%d")
    result.orders.to_csv(out / "orders.csv", index=False, date_format="%Y-%m-%d")
    result.positions.to_csv(out / "positions.csv", index=False, date_format="%Y-%m-%d")
    result.cash_flows.to_csv(out / "corporate_actions.csv", index=False, date_format="%Y-%m-%d")
    attribution = replace(attribute(from_backtest(run)), warnings=tuple(run.metrics.get("data_warnings") or ()))
    extra = attribution.write(out)  # attribution.csv and the tables `run.py attribution` re-reads
    title = f"{run.strategy.name} backtest"
    write_html(out / "report.html", result, metrics, None if run.benchmark is None else run.benchmark[1], title,
               [(ATTRIBUTION_HEADING, ATTRIBUTION_TABLE_ID, attribution_table(attribution))])
    context = ReportContext(
        strategy=run.strategy.name,
        data_description=data_description(run),
        settings={"strategy": run.strategy.settings.model_dump(mode="json"),
                  "backtest": run.spec.config.model_dump(mode="json"),
                  "start": str(run.market.days[0].date()), "end": str(run.market.days[-1].date())},
        lookahead_checks=[(f"perturb bars after {c.cut.date()}", c.ok, c.detail) for c in run.lookahead],
        identities=[(c.name, c.ok, c.detail) for c in run.identities],
        warnings=run.metrics.get("data_warnings") or (),
        extra=_extra_sections(run, attribution),
    )
    write_markdown(out / "report.md", result, metrics, context)
    for name in run.plan.tables:  # the strategy's diagnostics (capacity, selection, ...)
        run.plan.table(name).to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%d")
        extra.append(out / f"{name}.csv")
    if run.pool_metrics is not None:
        run.pool_metrics.to_csv(out / "pool_metrics_summary.csv", index=False)
        extra.append(out / "pool_metrics_summary.csv")
    if result.risk_days is not None:  # the drawdown ladders' rung per day, when one is configured
        result.risk_days.to_csv(out / "risk_days.csv", date_format="%Y-%m-%d")
        extra.append(out / "risk_days.csv")
    if result.drift_events is not None:  # the drift response's stage changes and flags, when it is on
        result.drift_events.to_csv(out / "drift_events.csv", index=False, date_format="%Y-%m-%d")
        extra.append(out / "drift_events.csv")
    return [out / name for name in FILES] + extra
