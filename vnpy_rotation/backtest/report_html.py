"""Self-contained HTML report for one backtest: KPI table, plotly figures and the table of refused or reduced
orders.

No network is needed to view it: plotly.js is inlined once, and every chart's data sits in one JSON block as
compact arrays (dates once, as day gaps from the first date; values rounded to what a reader sees; one shared
layout template) that a few lines of script expand for ``Plotly.newPlot``. The figures are plain plotly JSON
built here, so writing a report imports nothing of plotly's Python package.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np
import pandas as pd

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
CHART_DATA_ID = "chart-data"  # the JSON block every figure is drawn from
REFUSAL_COLUMNS = ("date", "vt_symbol", "direction", "requested", "submitted", "filled", "reason")
MAX_REFUSAL_ROWS = 2000  # beyond this the refusals table is cut, with a note saying how many are omitted
TOP_SYMBOLS = 20  # the allocation chart shows this many symbols, the rest summed as "other"
FIGURE_HEIGHT = 420
_NUM = ' class="num"'
UP, DOWN = "#d62728", "#2ca02c"  # A-share convention: red up, green down
# Decimals kept per chart value: what the axes and hover labels show, not the float's full precision.
CNY_DECIMALS, PERCENT_DECIMALS, RATIO_DECIMALS = 2, 4, 4
# plotly's "RdYlGn" reversed (the colorscale plotly's Python package resolves "RdYlGn_r" to): red is up.
_RDYLGN_R = [[0.0, "rgb(0,104,55)"], [0.1, "rgb(26,152,80)"], [0.2, "rgb(102,189,99)"], [0.3, "rgb(166,217,106)"],
             [0.4, "rgb(217,239,139)"], [0.5, "rgb(255,255,191)"], [0.6, "rgb(254,224,139)"],
             [0.7, "rgb(253,174,97)"], [0.8, "rgb(244,109,67)"], [0.9, "rgb(215,48,39)"], [1.0, "rgb(165,0,38)"]]

_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:24px auto;
max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:0.9em;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:480px;overflow:auto}.note{color:#666}
"""

# Expands the chart-data block: "dates" are lists of day gaps from t0 (ISO dates rebuilt once per list),
# {"$d": k} in a trace stands for dates[k]; the shared template goes into every layout.
_DRAW_JS = """(function(){
var R=JSON.parse(document.getElementById("%s").textContent),t0=Date.parse(R.t0),D=R.dates.map(function(g){
var out=new Array(g.length),d=0;for(var i=0;i<g.length;i++){d+=g[i];out[i]=new Date(t0+d*864e5).toISOString().slice(0,10);}
return out;});
function ref(v){if(Array.isArray(v))return v.map(ref);if(v&&typeof v==="object"){if("$d" in v)return D[v.$d];
var o={};for(var k in v)o[k]=ref(v[k]);return o;}return v;}
R.order.forEach(function(id){var f=ref(R.figures[id]);f.layout.template=R.template;
Plotly.newPlot(id,f.data,f.layout,R.config);});})();"""


def _plotly_path(name: str) -> Path:
    """A file of plotly's package data (``plotly.min.js``, ``templates/plotly.json``), found without importing
    plotly (its Python package costs an import this report does not need)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed; it ships the plotly.js the report inlines")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / name


@lru_cache(maxsize=1)
def _plotly_asset(name: str) -> str:
    """The text of a (small) plotly package-data file; plotly.js itself is streamed (:class:`_Inline`)."""
    return _plotly_path(name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class _Inline:
    """A part of the page that is a plotly package-data file's text, copied into the page when it is written:
    plotly.js is 4.8 MB, and held as text, inside the page's string and again encoded it cost ~25 MB at peak."""

    name: str

    def text(self) -> str:
        return _plotly_path(self.name).read_text(encoding="utf-8")

    def copy_to(self, target: TextIO) -> None:
        # text mode on both sides, as read_text/write_text: the same newline handling and encoding, in chunks
        with _plotly_path(self.name).open(encoding="utf-8") as source:
            shutil.copyfileobj(source, target)


_Part = str | _Inline


def _dates(index: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(index))


class _Charts:
    """The figures' JSON with each distinct date axis stored once (as day gaps) and values rounded."""

    def __init__(self) -> None:
        self.axes: list[pd.DatetimeIndex] = []

    def days(self, index: Any) -> dict[str, int]:
        index = _dates(index).normalize()
        for k, known in enumerate(self.axes):
            if known.equals(index):
                return {"$d": k}
        self.axes.append(index)
        return {"$d": len(self.axes) - 1}

    def payload(self) -> tuple[str, list[list[int]]]:
        """(t0, day gaps of each axis from t0)."""
        firsts = [a[0] for a in self.axes if len(a)]
        t0 = min(firsts) if firsts else pd.Timestamp("1970-01-01")
        gaps = []
        for axis in self.axes:
            offsets = ((axis - t0) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
            gaps.append(np.diff(offsets, prepend=0).tolist())
        return t0.strftime("%Y-%m-%d"), gaps


def _values(values: Any, decimals: int) -> list[float | int | None]:
    """A JSON list: rounded to ``decimals`` (integers when 0), NaN and infinities as null (a gap)."""
    array = np.asarray(values, dtype=float)
    rounded = np.round(array, decimals).tolist()
    if decimals == 0:
        return [int(v) if math.isfinite(v) else None for v in rounded]
    return [v if math.isfinite(v) else None for v in rounded]


MARGIN, LEGEND = {"l": 60, "r": 30, "t": 50, "b": 40}, {"orientation": "h", "y": -0.15}


def _layout(fig: Any, title: str, yaxis: str) -> Any:
    """The reports' figure layout applied to a plotly ``go.Figure`` (the walk-forward and risk reports draw with
    plotly's Python package); returns the figure."""
    fig.update_layout(title=title, height=FIGURE_HEIGHT, margin=MARGIN, yaxis_title=yaxis, hovermode="x unified",
                      legend=LEGEND)
    return fig


def _layout_json(title: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    """The same layout as plotly JSON, ``extra`` keys merged in (this report's figures)."""
    layout: dict[str, Any] = {"margin": dict(MARGIN), "legend": dict(LEGEND), "title": {"text": title},
                              "height": FIGURE_HEIGHT, "hovermode": "x unified", "yaxis": {"title": {"text": ytitle}}}
    for key, value in extra.items():
        layout[key] = {**layout.get(key, {}), **value} if isinstance(value, dict) else value
    return layout


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "layout": layout}


def _equity_figure(charts: _Charts, equity: pd.Series, benchmark: pd.Series | None,
                   initial: float) -> dict[str, Any]:
    data = [{"type": "scatter", "name": "策略 strategy", "line": {"color": UP}, "x": charts.days(equity.index),
             "y": _values(equity.values, CNY_DECIMALS)}]
    if benchmark is not None and len(benchmark.dropna()):
        bench = pd.Series(benchmark.values, index=_dates(benchmark.index)).sort_index()
        bench = bench.reindex(bench.index.union(equity.index)).ffill().reindex(equity.index).dropna()
        if len(bench) and bench.iloc[0]:
            rebased = bench / bench.iloc[0] * initial
            data.append({"type": "scatter", "name": "基准 benchmark", "line": {"color": "#7f7f7f"},
                         "x": charts.days(rebased.index), "y": _values(rebased.values, CNY_DECIMALS)})
    return _figure(data, _layout_json("权益曲线 Equity vs benchmark", "CNY"))


def _drawdown_figure(charts: _Charts, dd: pd.Series) -> dict[str, Any]:
    data = [{"type": "scatter", "name": "回撤", "fill": "tozeroy", "line": {"color": DOWN},
             "x": charts.days(dd.index), "y": _values(dd.values * 100, PERCENT_DECIMALS)}]
    return _figure(data, _layout_json("回撤 Drawdown", "%"))


def _monthly_figure(monthly: pd.Series) -> dict[str, Any]:
    index = monthly.index
    index = index.to_timestamp() if isinstance(index, pd.PeriodIndex) else _dates(index)  # Period or Timestamp
    monthly = pd.Series(monthly.values, index=index).dropna()
    table = pd.DataFrame({"year": monthly.index.year, "month": monthly.index.month, "r": monthly.values * 100})
    grid = table.pivot_table(index="year", columns="month", values="r", aggfunc="sum")
    grid = grid.reindex(columns=range(1, 13))
    data = [{"type": "heatmap", "z": [_values(row, PERCENT_DECIMALS) for row in grid.to_numpy(dtype=float)],
             "x": [f"{m}月" for m in range(1, 13)], "y": [str(y) for y in grid.index],
             "colorscale": _RDYLGN_R, "zmid": 0, "texttemplate": "%{z:.1f}",
             "hovertemplate": "%{y}-%{x}: %{z:.2f}%<extra></extra>", "colorbar": {"title": {"text": "%"}}}]
    return _figure(data, _layout_json("月度收益 Monthly returns (%)", "",
                                 yaxis={"type": "category", "autorange": "reversed"}))


def _rolling_sharpe_figure(charts: _Charts, sharpe: pd.Series, window: int) -> dict[str, Any]:
    data = [{"type": "scatter", "name": "rolling Sharpe", "x": charts.days(sharpe.index),
             "y": _values(sharpe.values, RATIO_DECIMALS)}]
    zero = {"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": 0, "y1": 0,
            "line": {"color": "#999", "width": 1}}
    return _figure(data, _layout_json(f"滚动夏普 Rolling Sharpe ({window} 日)", "Sharpe", shapes=[zero]))


def _exposure_figure(charts: _Charts, equity: pd.DataFrame, holdings: pd.DataFrame) -> dict[str, Any]:
    exposure = equity["market_value"] / equity["equity"].where(equity["equity"] != 0)
    data = [{"type": "scatter", "name": "仓位 exposure %", "x": charts.days(equity.index),
             "y": _values(exposure.values * 100, PERCENT_DECIMALS)}]
    if not holdings.empty:
        held = (holdings.fillna(0) > 0).sum(axis=1)
        data.append({"type": "scatter", "name": "持仓数 holdings", "line": {"dash": "dot"},
                     "x": charts.days(holdings.index), "y": _values(held.values, 0), "xaxis": "x", "yaxis": "y2"})
    # The layout plotly's make_subplots(secondary_y=True) builds: a right-hand axis over the main one.
    layout = _layout_json("仓位与持仓数 Exposure", "%", xaxis={"anchor": "y", "domain": [0.0, 0.94]},
                     yaxis={"anchor": "x", "domain": [0.0, 1.0], "rangemode": "tozero"},
                     yaxis2={"anchor": "x", "overlaying": "y", "side": "right", "rangemode": "tozero",
                             "title": {"text": "#"}, "tickformat": "d"})
    return _figure(data, layout)


def _positions_figure(charts: _Charts, holdings: pd.DataFrame) -> dict[str, Any]:
    holdings = holdings.fillna(0.0)
    holdings = holdings.loc[:, (holdings != 0).any()] if len(holdings.columns) else holdings
    top = holdings.mean().sort_values(ascending=False).index[:TOP_SYMBOLS]
    series = {str(s): holdings[s] for s in top}
    if len(holdings.columns) > len(top):
        series["其他 other"] = holdings.drop(columns=top).sum(axis=1)
    data = [{"type": "scatter", "name": name, "stackgroup": "one", "mode": "lines", "line": {"width": 0.5},
             "x": charts.days(values.index), "y": _values(values.values, CNY_DECIMALS)}
            for name, values in series.items()]
    return _figure(data, _layout_json("持仓市值 Holdings by symbol", "CNY"))


def _cost_figure(costs: dict[str, float]) -> dict[str, Any]:
    data = [{"type": "bar", "x": [f"{COST_LABELS[k]} {k}" for k in costs],
             "y": _values(list(costs.values()), CNY_DECIMALS),
             "text": [f"{v:,.2f}" for v in costs.values()], "textposition": "auto"}]
    return _figure(data, _layout_json("交易成本 Costs", "CNY"))


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no "</" can close it early)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def charts_html(figures: dict[str, dict[str, Any]], charts: _Charts) -> list[_Part]:
    """plotly.js once, an empty div per figure (in :data:`FIGURES` order), the data block and the drawing script."""
    t0, gaps = charts.payload()
    payload = {"t0": t0, "dates": gaps, "order": list(FIGURES), "figures": figures,
               "template": json.loads(_plotly_asset("templates/plotly.json")),
               "config": {"displaylogo": False, "responsive": True}}
    return ['<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: \'local\'};</script>',
            '<script type="text/javascript">', _Inline("plotly.min.js"), "</script>",
            *(f'<div id="{fid}" class="plotly-graph-div" style="height:{FIGURE_HEIGHT}px; width:100%;"></div>'
              for fid in FIGURES),
            f'<script type="application/json" id="{CHART_DATA_ID}">{_script_json(payload)}</script>',
            f"<script>{_DRAW_JS % CHART_DATA_ID}</script>"]


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
    # column by column: a row Series per order (iterrows) cost more than the whole table's formatting
    columns = {c: refused[c].tolist() for c in REFUSAL_COLUMNS}
    return [(format_value(columns["date"][k], "date"), str(columns["vt_symbol"][k]), str(columns["direction"][k]),
             *(format_value(columns[c][k], "int") for c in ("requested", "submitted", "filled")),
             str(columns["reason"][k])) for k in range(len(refused))]


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
    return _join(_render_parts(result, metrics, benchmark, title, tables))


def _join(parts: Sequence[_Part]) -> str:
    """The page: its lines joined by newlines, except that an inlined file continues the line before it and the
    line after it continues the file (``<script>``, the file, ``</script>`` on one line)."""
    out: list[str] = []
    for k, part in enumerate(parts):
        glue = "" if k == 0 or isinstance(part, _Inline) or isinstance(parts[k - 1], _Inline) else "\n"
        out.append(glue + (part.text() if isinstance(part, _Inline) else part))
    return "".join(out)


def _render_parts(result: BacktestResult, metrics: dict[str, Any], benchmark: pd.Series | None, title: str,
                  tables: Sequence[tuple[str, str, pd.DataFrame]] = ()) -> list[_Part]:
    from vnpy_rotation.backtest.metrics import drawdown, monthly_returns, rolling_sharpe

    frame = result.equity.copy()
    frame.index = _dates(frame.index)
    equity = frame["equity"].astype(float)
    holdings = result.holdings_value.copy()
    holdings.index = _dates(holdings.index)
    window = _sharpe_window(len(equity))
    charts = _Charts()
    figures = {
        "fig-equity": _equity_figure(charts, equity, benchmark, result.initial_capital),
        "fig-drawdown": _drawdown_figure(charts, drawdown(equity)),
        "fig-monthly": _monthly_figure(monthly_returns(equity)),
        "fig-rolling-sharpe": _rolling_sharpe_figure(charts, rolling_sharpe(equity, window=window), window),
        "fig-exposure": _exposure_figure(charts, frame, holdings),
        "fig-positions": _positions_figure(charts, holdings),
        "fig-costs": _cost_figure(cost_breakdown(result, metrics)),
    }
    divs = charts_html(figures, charts)

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
    return parts


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
    parts = _render_parts(result, metrics, benchmark, title, tables)
    with path.open("w", encoding="utf-8") as target:  # part by part: the same text as _join(parts)
        for k, part in enumerate(parts):
            if k and not isinstance(part, _Inline) and not isinstance(parts[k - 1], _Inline):
                target.write("\n")
            if isinstance(part, _Inline):
                part.copy_to(target)
            else:
                target.write(part)
    return path
