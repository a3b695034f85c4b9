"""The walk-forward's output folder: CSV and JSON files, and one report in markdown and HTML.

The report has these sections (data, look-ahead checklist, WFO table, parameter stability, holdout,
overfit check, trades with reasons, risk metrics, conclusion) plus the settings and the deflated Sharpe
ratio. Its content is built once as sections of lines and tables, then rendered to both formats with the
backtest report's helpers.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go

from ..backtest.report_html import _CSS, _html_table, _layout
from ..backtest.report_md import (
    FAIL,
    KPI_ROWS,
    MISSING,
    PASS,
    TRADE_HEAD,
    _format_time,
    _settings_rows,
    _table,
    format_value,
)
from .walkforward import WalkForwardResult
from .wf_tables import (
    HOLDOUT_RULE,
    equity_table,
    evaluation_count,
    grid_table,
    holdout_document,
    holdout_share,
    param_names,
    stability_table,
    summary_document,
    tests_metrics,
    trades_table,
    windows_table,
    write_json,
)

FILES = ("windows.csv", "grid_train.csv", "stability.csv", "holdout.json", "trades.csv", "equity.csv",
         "summary.json", "report.md", "report.html")
SECTIONS: dict[str, str] = {
    "data": "1. 数据说明 Data", "lookahead": "2. 未来函数检查 Look-ahead checklist",
    "settings": "3. 回测设定 Settings", "wfo": "4. WFO滚动优化结果 Walk-forward windows",
    "stability": "5. 参数稳健性 Parameter stability", "holdout": "6. Holdout样本外测试 Holdout",
    "overfit": "7. 过拟合检验 Overfit check", "deflated": "8. 紧缩夏普比率 Deflated Sharpe ratio",
    "trades": "9. 交易记录 Trades (holdout)", "risk": "10. 风险指标 Risk metrics", "conclusion": "11. 结论 Conclusion",
}
RISK_KEYS = ("total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
             "daily_win_rate", "monthly_win_rate", "profit_loss_ratio", "turnover", "total_cost", "trade_count",
             "excess_return")
DSR_SIGNIFICANT = 0.95  # a deflated Sharpe ratio at or above this is significant at 5 %
STABLE_SHARE = 0.5  # the holdout's parameters chosen in at least this share of windows
KINDS = {key: kind for key, _, kind in KPI_ROWS}
LABELS = {key: label for key, label, _ in KPI_ROWS}


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    align: str = ""  # one of l r c per column; r marks numbers


Block = str | Table


def _pct(value: Any) -> str:
    return format_value(value, "pct")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _check(ok: bool | None) -> str:
    return MISSING if ok is None else (PASS if ok else FAIL)


def _data(r: WalkForwardResult) -> list[Block]:
    md, days = r.market, r.market.days
    symbols = ", ".join(md.symbols[:20]) + (f" … ({len(md.symbols)} in all)" if len(md.symbols) > 20 else "")
    lines = [f"- 股票池 Universe: {len(md.symbols)} symbols: {symbols}",
             f"- 数据区间 Data: {days[0].date()} … {days[-1].date()} ({len(days)} trading days, warm-up included); "
             f"walk-forward {r.span}",
             "- 数据来源 Source: bars from the project's database (vnpy SQLite in the runtime folder: imported "
             "files, or the bundled real data); fills at unadjusted prices, signals on backward-adjusted prices",
             f"- 基准 Benchmark: {r.benchmark or 'none'}"]
    if r.prepared:
        lines.append("- 附加数据 Strategy inputs: attached point-in-time by the strategy's prepare_market")
    return lines + [f"- ⚠️ {w}" for w in r.warnings]


def _lookahead(r: WalkForwardResult) -> list[Block]:
    windows, holdout = r.windows, r.holdout
    ordered = all(w.window.train.end < w.window.test.start for w in windows)
    last_seen = max(w.window.test.end for w in windows)
    unseen = holdout is None or last_seen < holdout.span.start
    rows = [("decisions on truncated data", PASS, f"each of the {evaluation_count(r)} evaluations decides on the data "
             "cut at its span's end (market.window(None, end)); bars before the span are warm-up"),
            ("parameters chosen on train spans only", _check(ordered), "each window's grid is measured on its "
             "train span; its test span starts after the train span ends"),
            ("holdout unseen by every choice", _check(unseen),
             "no holdout" if holdout is None else f"last span any choice saw ends {last_seen}; holdout starts "
             f"{holdout.span.start}"),
            ("point-in-time fundamentals", PASS, "the strategy's own inputs (prepare_market) are as known before "
             "each decision day; the harness below perturbs them too" if r.prepared
             else "not used: the strategy decides on prices only")]
    rows += [(f"look-ahead harness: perturb bars after {c.cut.date()}", _check(c.ok), c.detail) for c in r.lookahead]
    failed = sum(row[1] == FAIL for row in rows)
    summary = f"{PASS} all {len(rows)} checks pass" if not failed else f"{FAIL} {failed} of {len(rows)} checks fail"
    return [summary + " (the harness re-runs the holdout parameters over the data up to the last evaluated day)",
            Table(("检查项 Check", "结果", "说明 Detail"), rows, "lcl")]


def _settings(r: WalkForwardResult) -> list[Block]:
    settings = {"walkforward": r.spec.options.model_dump(mode="json", exclude={"grid"}),
                "grid": {k: list(v) for k, v in r.spec.grid.items()}, "grid_source": r.spec.grid_source,
                "strategy": r.spec.run.strategy_settings, "backtest": r.spec.run.config.model_dump(mode="json")}
    return [Table(("设置 Setting", "值 Value"), _settings_rows(settings), "ll")]


def _wfo(r: WalkForwardResult, windows: pd.DataFrame) -> list[Block]:
    names = param_names(r)
    kind = KINDS.get(r.spec.options.objective, "num")
    rows = [(f"{w.window}", f"{w.train_start} … {w.train_end}", f"{w.test_start} … {w.test_end}",
             *(getattr(w, n) for n in names), format_value(w.train_objective, kind),
             _pct(w.test_total_return), _pct(w.test_annual_return), format_value(w.test_sharpe, "num"),
             _pct(w.test_max_drawdown), format_value(w.test_trade_count, "int"))
            for w in windows.itertuples()]
    header = ("窗口", "训练期 Train", "测试期 Test", *names, f"训练 {r.spec.options.objective}", "测试总收益",
              "测试年化", "测试夏普", "测试最大回撤", "成交笔数")
    return [Table(header, rows, "lll" + "c" * len(names) + "r" * 6)]


def _stability(r: WalkForwardResult, stability: pd.DataFrame) -> list[Block]:
    columns = list(stability.columns)
    def cell(column: str, v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return MISSING
        return _pct(v) if column == "mode_share" else f"{v:.4g}" if isinstance(v, float) else v

    rows = [[cell(c, v) for c, v in zip(columns, row)] for row in stability.itertuples(index=False)]
    return [Table(columns, rows, "l" + "c" * (len(columns) - 1)),
            f"Holdout parameters {_params(r.holdout_params)}: {HOLDOUT_RULE} (chosen in "
            f"{_pct(holdout_share(r))} of the windows); the last window chose {_params(r.last_params)}."]


def _holdout(r: WalkForwardResult) -> list[Block]:
    if r.holdout is None:
        return ["No holdout (holdout_years = 0)."]
    m = r.holdout.metrics
    return [f"- 测试期 Span: {r.holdout.span}", f"- 参数 Parameters: {_params(r.holdout_params)}",
            *(f"- {LABELS[k]} {k}: {format_value(m.get(k), KINDS[k])}"
              for k in ("total_return", "annual_return", "sharpe", "max_drawdown", "trade_count"))]


def _overfit(r: WalkForwardResult) -> list[Block]:
    o = r.overfit
    verdict = {None: f"{MISSING} not evaluated", True: "⚠️ flagged: possible overfit",
               False: f"{PASS} passed"}[o.flagged]
    return [f"WFO mean test annual return {_pct(o.mean_test_annual_return)}, holdout {_pct(o.holdout_annual_return)}, "
            f"gap {_pct(o.gap)} (flagged above ±{o.threshold * 100:g} percentage points): {verdict}",
            f"Measure: {o.measure}."]


def _num(value: float, digits: str = ".4f", scale: float = 1.0) -> str:
    return f"{value * scale:{digits}}" if math.isfinite(value) else MISSING


def _deflated(r: WalkForwardResult) -> list[Block]:
    d = r.deflated
    annual = math.sqrt(252)
    rows = [("Sharpe (daily / annualised)", f"{_num(d.sharpe)} / {_num(d.sharpe, '.2f', annual)}"),
            ("observations T", d.n_obs), ("skewness γ₃", _num(d.skew, ".3f")), ("kurtosis γ₄", _num(d.kurtosis, ".3f")),
            ("trials N (grid size)", d.n_trials), ("V[SR] of the trials (daily)", _num(d.trial_variance, ".3g")),
            ("E[max SR_N] = SR₀ (daily / annualised)",
             f"{_num(d.expected_max_sharpe)} / {_num(d.expected_max_sharpe, '.2f', annual)}"),
            ("PSR(0)", _num(d.psr, ".3f")), ("DSR = PSR(SR₀)", _num(d.dsr, ".3f"))]
    return [Table(("项目", "值"), rows, "lr"),
            "Bailey & López de Prado (2014): DSR = Φ((SR − SR₀)·√(T−1) / √(1 − γ₃·SR + (γ₄−1)/4·SR²)), "
            "SR₀ = √V·((1−γ)Φ⁻¹(1−1/N) + γΦ⁻¹(1−1/(N·e))). Returns: the out-of-sample segments (test windows, "
            "then the holdout), daily, each within its own span; V: the variance of the grid's daily train Sharpe "
            f"ratios within a window, averaged over the windows. DSR ≥ {DSR_SIGNIFICANT} is significant at 5 %."]


def _trades(r: WalkForwardResult, trades: pd.DataFrame) -> list[Block]:
    held = trades[trades["segment"] == "holdout"]
    note = (f"{len(held)} holdout fills (first {min(TRADE_HEAD, len(held))} shown); all {len(trades)} "
            "out-of-sample fills, test windows included, are in trades.csv with their segment.")
    rows = [(_format_time(t.datetime), str(t.direction).upper(), t.vt_symbol, f"{t.price:.3f}", f"{int(t.volume):,}",
             format_value(t.value, "money"), t.reason or MISSING) for t in held.head(TRADE_HEAD).itertuples()]
    return [note, Table(("时间", "操作", "代码", "价格", "数量", "金额", "原因 Reason"), rows, "lcl" + "r" * 3 + "l")]


def _risk(r: WalkForwardResult, tests: dict[str, Any]) -> list[Block]:
    holdout = r.holdout.metrics if r.holdout else {}
    rows = [(LABELS[k], k, format_value(tests.get(k), KINDS[k]), format_value(holdout.get(k), KINDS[k]))
            for k in RISK_KEYS]
    return [Table(("指标", "key", "WFO 测试 (chained)", "Holdout"), rows, "llrr"),
            "Win rates are of days and months with a gain; the profit/loss ratio is the mean daily gain over the "
            "mean daily loss."]


def _conclusion(r: WalkForwardResult) -> list[Block]:
    dsr = r.deflated.dsr
    effective = None if math.isnan(dsr) else dsr >= DSR_SIGNIFICANT
    stable = holdout_share(r) >= STABLE_SHARE
    overfit = r.overfit.flagged
    clean = all(c.ok for c in r.lookahead)
    marks = [effective, stable, None if overfit is None else not overfit, clean]
    verdict = ("❌ not recommended" if not clean or effective is False and overfit else
               "✅ adopt" if all(m is True for m in marks) else "🟡 adopt with caution")
    return [f"- 策略有效性 Effectiveness: {_check(effective)} (deflated Sharpe {format_value(dsr, 'num')} "
            f"vs {DSR_SIGNIFICANT})",
            f"- 参数稳健性 Stability: {_check(stable)} (holdout parameters chosen in {_pct(holdout_share(r))} of the "
            f"windows; ≥ {_pct(STABLE_SHARE)} counts as stable)",
            f"- 过拟合风险 Overfit: {'⚠️' if overfit else _check(marks[2])} (see section 7)",
            f"- 未来函数 Look-ahead: {_check(clean)}",
            f"- 推荐采用 Recommendation: {verdict}"]


def report_sections(r: WalkForwardResult, tables: dict[str, Any]) -> dict[str, list[Block]]:
    return {"data": _data(r), "lookahead": _lookahead(r), "settings": _settings(r),
            "wfo": _wfo(r, tables["windows"]), "stability": _stability(r, tables["stability"]),
            "holdout": _holdout(r), "overfit": _overfit(r), "deflated": _deflated(r),
            "trades": _trades(r, tables["trades"]), "risk": _risk(r, tables["tests"]), "conclusion": _conclusion(r)}


def _title(r: WalkForwardResult) -> tuple[str, str]:
    o = r.spec.options
    return (f"{r.spec.run.strategy_name} 滚动优化报告 Walk-forward report",
            f"{r.span}: {len(r.windows)} windows, train {o.train_years}y / test {o.test_years}y ({o.mode}), "
            f"holdout {r.holdout.span if r.holdout else 'none'}, objective {o.objective}")


def _bullet(block: Block | None) -> bool:
    return isinstance(block, str) and block.startswith("- ")


def render_markdown(r: WalkForwardResult, sections: dict[str, list[Block]]) -> str:
    title, subtitle = _title(r)
    lines = [f"# {title}", "", subtitle, ""]
    for key, heading in SECTIONS.items():
        lines += [f"## {heading}", ""]
        for k, block in enumerate(sections[key]):
            if isinstance(block, Table):
                lines += _table(block.header, block.rows, block.align)
            else:
                lines.append(block)
            following = sections[key][k + 1] if k + 1 < len(sections[key]) else None
            if not (_bullet(block) and _bullet(following)):  # a list's items stay together
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _equity_figure(equity: pd.DataFrame) -> go.Figure:
    fig = go.Figure([go.Scatter(x=part["date"], y=part["equity"], name=segment, mode="lines")
                     for segment, part in equity.groupby("segment", sort=False)])
    return _layout(fig, "样本外权益 Out-of-sample equity (chained)", "CNY")


def render_html(r: WalkForwardResult, sections: dict[str, list[Block]], equity: pd.DataFrame) -> str:
    title, subtitle = _title(r)
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f"<p>{esc(subtitle)}</p>",
             _equity_figure(equity).to_html(full_html=False, include_plotlyjs=True, div_id="fig-oos-equity",
                                            config={"displaylogo": False, "responsive": True})]
    for key, heading in SECTIONS.items():
        parts.append(f"<h2>{esc(heading)}</h2>")
        for k, block in enumerate(sections[key]):
            if isinstance(block, Table):
                numeric = [a == "r" for a in (block.align or "l" * len(block.header))]
                table = _html_table(block.header, block.rows, f"{key}-{k}", numeric)
                parts.append(f'<div class="scroll">{table}</div>')
            else:
                parts.append(f"<p>{esc(block.removeprefix('- '))}</p>")
    return "\n".join(parts + ["</body></html>"])


def write_report(r: WalkForwardResult, out: Path) -> list[Path]:
    """Write every file of :data:`FILES` into ``out`` (created) and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {"windows": windows_table(r), "stability": stability_table(r), "trades": trades_table(r),
              "equity": equity_table(r), "tests": tests_metrics(r)}
    csv = {"windows.csv": tables["windows"], "grid_train.csv": grid_table(r), "stability.csv": tables["stability"],
           "trades.csv": tables["trades"], "equity.csv": tables["equity"]}
    for name, frame in csv.items():
        frame.to_csv(out / name, index=False, date_format="%Y-%m-%d")
    write_json(out / "holdout.json", holdout_document(r))
    write_json(out / "summary.json", summary_document(r))
    sections = report_sections(r, tables)
    (out / "report.md").write_text(render_markdown(r, sections), encoding="utf-8")
    (out / "report.html").write_text(render_html(r, sections, tables["equity"]), encoding="utf-8")
    return [out / name for name in FILES]
