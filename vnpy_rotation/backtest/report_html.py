"""Self-contained HTML report for one backtest: KPI table, plotly figures (plotly.js inlined once, no
network needed to view it) and the table of refused or reduced orders."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vnpy_rotation.backtest.report_md import (
    COST_LABELS,
    REFUSAL_LABELS,
    WARNINGS_HEADING,
    alert_rows,
    cost_breakdown,
    format_value,
    kpi_rows,
    refusal_counts,
)
from vnpy_rotation.backtest.result import BacktestResult
from vnpy_rotation.backtest.risk_section import Block, risk_blocks, risk_summary

# Figure div ids, in page order.
FIGURES: tuple[str, ...] = ("fig-equity", "fig-drawdown", "fig-monthly", "fig-rolling-sharpe", "fig-exposure",
                            "fig-positions", "fig-costs")
KPI_TABLE_ID, REFUSAL_SUMMARY_ID, REFUSALS_TABLE_ID = "kpi-table", "refusal-summary", "refusals-table"
ALERTS_TABLE_ID = "alerts-table"
RISK_SECTION_ID = "risk-section"  # ladder days per rung, stops fired, the exception-test verdict
WARNINGS_LIST_ID = "data-warnings"  # what the data changed about the run (e.g. a span clipped to the bars)
REFUSAL_COLUMNS = ("date", "vt_symbol", "direction", "requested", "submitted", "filled", "reason")
MAX_REFUSAL_ROWS = 2000  # beyond this the refusals table is cut, with a note saying how many are omitted
TOP_SYMBOLS = 20  # the allocation chart shows this many symbols, the rest summed as "other"
FIGURE_HEIGHT = 420
_NUM = ' class="num"'
UP, DOWN = "#d62728", "#2ca02c"  # A-share convention: red up, green down

_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:24px auto;
max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:0.9em;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:480px;overflow:auto}.note{color:#666}
"""


def _dates(index: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(index))


def _layout(fig: go.Figure, title: str, yaxis: str) -> go.Figure:
    fig.update_layout(title=title, height=FIGURE_HEIGHT, margin={"l": 60, "r": 30, "t": 50, "b": 40},
                      yaxis_title=yaxis, hovermode="x unified", legend={"orientation": "h", "y": -0.15})
    return fig


def _equity_figure(equity: pd.Series, benchmark: pd.Series | None, initial: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=equity.index, y=equity.values, name="策略 strategy", line={"color": UP}))
    if benchmark is not None and len(benchmark.dropna()):
        bench = pd.Series(benchmark.values, index=_dates(benchmark.index)).sort_index()
        bench = bench.reindex(bench.index.union(equity.index)).ffill().reindex(equity.index).dropna()
        if len(bench) and bench.iloc[0]:
            rebased = bench / bench.iloc[0] * initial
            fig.add_trace(go.Scatter(x=rebased.index, y=rebased.values, name="基准 benchmark",
                                     line={"color": "#7f7f7f"}))
    return _layout(fig, "权益曲线 Equity vs benchmark", "CNY")


def _drawdown_figure(dd: pd.Series) -> go.Figure:
    fig = go.Figure(go.Scatter(x=dd.index, y=dd.values * 100, name="回撤", fill="tozeroy",
                               line={"color": DOWN}))
    return _layout(fig, "回撤 Drawdown", "%")


def _monthly_figure(monthly: pd.Series) -> go.Figure:
    index = monthly.index
    index = index.to_timestamp() if isinstance(index, pd.PeriodIndex) else _dates(index)  # Period or Timestamp
    monthly = pd.Series(monthly.values, index=index).dropna()
    table = pd.DataFrame({"year": monthly.index.year, "month": monthly.index.month, "r": monthly.values * 100})
    grid = table.pivot_table(index="year", columns="month", values="r", aggfunc="sum")
    grid = grid.reindex(columns=range(1, 13))
    fig = go.Figure(go.Heatmap(
        z=grid.values, x=[f"{m}月" for m in range(1, 13)], y=[str(y) for y in grid.index],
        colorscale="RdYlGn_r", zmid=0, texttemplate="%{z:.1f}", hovertemplate="%{y}-%{x}: %{z:.2f}%<extra></extra>",
        colorbar={"title": "%"}))
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, "月度收益 Monthly returns (%)", "")


def _rolling_sharpe_figure(sharpe: pd.Series, window: int) -> go.Figure:
    fig = go.Figure(go.Scatter(x=sharpe.index, y=sharpe.values, name="rolling Sharpe"))
    fig.add_hline(y=0, line={"color": "#999", "width": 1})
    return _layout(fig, f"滚动夏普 Rolling Sharpe ({window} 日)", "Sharpe")


def _exposure_figure(equity: pd.DataFrame, holdings: pd.DataFrame) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    exposure = equity["market_value"] / equity["equity"].where(equity["equity"] != 0)
    fig.add_trace(go.Scatter(x=equity.index, y=exposure.values * 100, name="仓位 exposure %"))
    if not holdings.empty:
        held = (holdings.fillna(0) > 0).sum(axis=1)
        fig.add_trace(go.Scatter(x=holdings.index, y=held.values, name="持仓数 holdings", line={"dash": "dot"}),
                      secondary_y=True)
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="#", tickformat="d", secondary_y=True)
    return _layout(fig, "仓位与持仓数 Exposure", "%")


def _positions_figure(holdings: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    holdings = holdings.fillna(0.0)
    holdings = holdings.loc[:, (holdings != 0).any()] if len(holdings.columns) else holdings
    top = holdings.mean().sort_values(ascending=False).index[:TOP_SYMBOLS]
    series = {str(s): holdings[s] for s in top}
    if len(holdings.columns) > len(top):
        series["其他 other"] = holdings.drop(columns=top).sum(axis=1)
    for name, values in series.items():
        fig.add_trace(go.Scatter(x=values.index, y=values.values, name=name, stackgroup="one", mode="lines",
                                 line={"width": 0.5}))
    return _layout(fig, "持仓市值 Holdings by symbol", "CNY")


def _cost_figure(costs: dict[str, float]) -> go.Figure:
    labels = [f"{COST_LABELS[k]} {k}" for k in costs]
    fig = go.Figure(go.Bar(x=labels, y=list(costs.values()), text=[f"{v:,.2f}" for v in costs.values()],
                           textposition="auto"))
    return _layout(fig, "交易成本 Costs", "CNY")


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str,
                numeric: Sequence[bool] = ()) -> str:
    """An HTML table; every cell is escaped."""
    numeric = list(numeric) or [False] * len(header)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{_NUM if num else ''}>{html.escape(str(c))}</td>"
                         for c, num in zip(row, numeric)) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _refusal_rows(refused: pd.DataFrame) -> list[tuple[str, ...]]:
    rows = []
    for _, o in refused.iterrows():
        rows.append((format_value(o["date"], "date"), str(o["vt_symbol"]), str(o["direction"]),
                     *(format_value(o[c], "int") for c in ("requested", "submitted", "filled")), str(o["reason"])))
    return rows


def blocks_html(blocks: Sequence[Block], section_id: str) -> str:
    """Lines as paragraphs (markdown bold kept as <b>) and tables as HTML tables, in one div."""
    parts = []
    for k, block in enumerate(blocks):
        if isinstance(block, str):
            text = html.escape(block.removeprefix("- ")).split("**")
            parts.append("<p>" + "".join(f"<b>{t}</b>" if i % 2 else t for i, t in enumerate(text)) + "</p>")
        else:
            header, rows, align = block
            parts.append(_html_table(header, rows, f"{section_id}-{k}", [a == "r" for a in align]))
    return f'<div id="{section_id}">' + "".join(parts) + "</div>"


def _sharpe_window(n: int) -> int:
    return 126 if n >= 252 else max(20, n // 3)


def render_html(result: BacktestResult, metrics: dict[str, Any], benchmark: pd.Series | None, title: str,
                tables: Sequence[tuple[str, str, pd.DataFrame]] = ()) -> str:
    """The report as one HTML string (see :func:`write_html`); ``tables`` are (heading, id, table) after
    the refusals."""
    from vnpy_rotation.backtest.metrics import drawdown, monthly_returns, rolling_sharpe

    frame = result.equity.copy()
    frame.index = _dates(frame.index)
    equity = frame["equity"].astype(float)
    holdings = result.holdings_value.copy()
    holdings.index = _dates(holdings.index)
    window = _sharpe_window(len(equity))
    figures = {
        "fig-equity": _equity_figure(equity, benchmark, result.initial_capital),
        "fig-drawdown": _drawdown_figure(drawdown(equity)),
        "fig-monthly": _monthly_figure(monthly_returns(equity)),
        "fig-rolling-sharpe": _rolling_sharpe_figure(rolling_sharpe(equity, window=window), window),
        "fig-exposure": _exposure_figure(frame, holdings),
        "fig-positions": _positions_figure(holdings),
        "fig-costs": _cost_figure(cost_breakdown(result, metrics)),
    }
    config = {"displaylogo": False, "responsive": True}
    divs = [figures[fid].to_html(full_html=False, include_plotlyjs=(i == 0), div_id=fid, config=config)
            for i, fid in enumerate(FIGURES)]

    kpis = _html_table(("指标", "key", "值"), kpi_rows(metrics), KPI_TABLE_ID, (False, False, True))
    alerts = _html_table(("规则", "key", "值", "状态"), alert_rows(metrics.get("alerts") or []), ALERTS_TABLE_ID,
                         (False, False, True, False))
    counts = refusal_counts(result.orders)
    summary = _html_table(("原因", "说明", "订单数", "被拒", "部分成交", "全部成交"),
                          [(r, REFUSAL_LABELS.get(r, r), *(int(v) for v in row)) for r, row in counts.iterrows()],
                          REFUSAL_SUMMARY_ID, (False, False, True, True, True, True))
    refused = result.refusals()
    shown = refused.iloc[:MAX_REFUSAL_ROWS]
    note = (f'<p class="note">显示前 {MAX_REFUSAL_ROWS} 条，省略 {len(refused) - len(shown)} 条。</p>'
            if len(refused) > len(shown) else "")
    refusals = _html_table(REFUSAL_COLUMNS, _refusal_rows(shown), REFUSALS_TABLE_ID,
                           (False, False, False, True, True, True, False))
    period = f'{format_value(metrics.get("start"), "date")} ~ {format_value(metrics.get("end"), "date")}'
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1><p>{esc(period)}</p>",
        *([f'<h2>{WARNINGS_HEADING}</h2><ul id="{WARNINGS_LIST_ID}">',
           *(f"<li>{esc(w)}</li>" for w in metrics["data_warnings"]), "</ul>"] if metrics.get("data_warnings") else []),
        "<h2>关键指标 Key metrics</h2>", f'<div class="kpi">{kpis}</div>',
        "<h2>告警规则 Alert rules</h2>", alerts,
        "<h2>风险 Risk</h2>", blocks_html(risk_blocks(metrics.get("risk") or risk_summary(result)), RISK_SECTION_ID),
        "<h2>图表 Charts</h2>", *divs,
        "<h2>拒单与减量 Refusals</h2>", summary,
        f"<p>{len(refused)} 笔订单被拒或减量 (orders refused or reduced)。</p>", note,
        f'<div class="scroll">{refusals}</div>',
        *(f"<h2>{esc(heading)}</h2>{_frame_table(table, table_id)}" for heading, table_id, table in tables),
        "</body></html>",
    ]
    return "\n".join(parts)


def _frame_table(table: pd.DataFrame, table_id: str) -> str:
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    cells = table.round(4).astype(object).where(table.notna(), "")  # an empty cell, not "nan"
    return _html_table([str(c) for c in table.columns], cells.values.tolist(), table_id, numeric)


def write_html(path: Path, result: BacktestResult, metrics: dict[str, Any], benchmark: pd.Series | None,
               title: str, tables: Sequence[tuple[str, str, pd.DataFrame]] = ()) -> Path:
    """Write the self-contained HTML report to ``path`` (UTF-8; parent folders created); return the path.

    ``benchmark`` is a price (or value) series indexed by date; it is aligned to the equity dates and
    rebased to the initial capital.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(result, metrics, benchmark, title, tables), encoding="utf-8")
    return path
