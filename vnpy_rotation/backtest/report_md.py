"""Markdown report for one backtest: data, look-ahead checks, settings, risk metrics and trades with
reasons (what a reader needs to trust the run), plus costs, refusals and accounting identities.

Also home of the value formatting and refusal counting shared with :mod:`report_html`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from vnpy_rotation.backtest.result import COST_KINDS, REFUSAL_REASONS, BacktestResult
from vnpy_rotation.backtest.risk_section import Block, risk_blocks, risk_summary

# Section headings, in order; each is rendered as ``## <heading>``. Tests rely on these, not on wording.
SECTIONS: dict[str, str] = {
    "data": "1. 数据说明 Data",
    "lookahead": "2. 未来函数检查 Look-ahead checks",
    "settings": "3. 回测设置 Settings",
    "metrics": "4. 收益与风险指标 Return & risk",
    "months": "5. 最佳与最差月份 Best & worst months",
    "costs": "6. 交易成本 Costs",
    "refusals": "7. 拒单与减量 Refusals",
    "trades": "8. 交易记录 Trades",
    "identities": "9. 会计恒等式 Accounting identities",
    "alerts": "10. 告警规则 Alert rules",
    "risk": "11. 风险 Risk",
}
WARNINGS_HEADING = "警告 Warnings"  # rendered only when the context carries warnings
TRADE_HEAD = 50  # long runs show the first and last TRADE_HEAD trades
PASS, FAIL, MISSING = "✅", "❌", "—"

# (metrics key, label, kind); kind drives formatting: pct, num, times, money, int, date.
KPI_ROWS: tuple[tuple[str, str, str], ...] = (
    ("start", "开始日期", "date"), ("end", "结束日期", "date"), ("days", "交易日数", "int"),
    ("initial_equity", "初始资金", "money"), ("final_equity", "期末权益", "money"),
    ("total_return", "总收益", "pct"), ("annual_return", "年化收益", "pct"),
    ("annual_volatility", "年化波动率", "pct"), ("sharpe", "夏普比率", "num"),
    ("sortino", "索提诺比率", "num"), ("max_drawdown", "最大回撤", "pct"),
    ("max_drawdown_peak", "回撤峰值日", "date"), ("max_drawdown_trough", "回撤谷底日", "date"),
    ("max_drawdown_recovery", "回撤修复日", "date"), ("max_drawdown_duration", "回撤持续天数", "int"),
    ("calmar", "卡玛比率", "num"), ("daily_win_rate", "日胜率", "pct"),
    ("monthly_win_rate", "月胜率", "pct"), ("profit_loss_ratio", "盈亏比", "num"),
    ("turnover", "年化换手率", "times"), ("total_cost", "总交易成本", "money"),
    ("trade_count", "成交笔数", "int"), ("exposure", "平均仓位", "pct"),
    ("var_95", "VaR 95%", "pct"), ("var_99", "VaR 99%", "pct"),
    ("es_95", "ES 95%", "pct"), ("es_99", "ES 99%", "pct"),
    ("benchmark_total_return", "基准总收益", "pct"), ("benchmark_annual_return", "基准年化收益", "pct"),
    ("excess_return", "超额收益", "pct"), ("tracking_error", "跟踪误差", "pct"),
    ("information_ratio", "信息比率", "num"), ("beta", "Beta", "num"),
)
COST_LABELS: dict[str, str] = {"commission": "佣金", "stamp_duty": "印花税", "transfer_fee": "过户费",
                               "slippage": "滑点"}
REFUSAL_LABELS: dict[str, str] = {
    "limit_up": "涨停无法买入", "limit_down": "跌停无法卖出", "suspended": "停牌",
    "t1_locked": "T+1 锁定", "insufficient_cash": "资金不足", "lot_rounding": "整手取整",
    "participation_cap": "成交量参与上限",
}
ORDER_STATUSES = ("refused", "partial", "filled")


@dataclass(frozen=True)
class ReportContext:
    """What the report needs beyond the result: provenance, settings and check outcomes.

    ``lookahead_checks`` and ``identities`` are ``(name, passed, detail)`` triples.
    """

    strategy: str
    data_description: Sequence[str]
    settings: dict[str, Any]
    lookahead_checks: Sequence[tuple[str, bool, str]]
    identities: Sequence[tuple[str, bool, str]]
    warnings: Sequence[str] = ()
    extra: Sequence[tuple[str, pd.DataFrame]] = ()  # strategy-specific (heading, table), after the sections


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts
        return False


def format_value(value: Any, kind: str) -> str:
    """Format one value for a report cell; missing or non-finite values become ``—``."""
    if _missing(value):
        return MISSING
    if kind == "date":
        return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else str(value)[:10]
    if isinstance(value, (int, float)) and not math.isfinite(float(value)):
        return MISSING
    if kind == "pct":
        return f"{float(value) * 100:.2f}%"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "num":
        return f"{float(value):.2f}"
    if kind == "times":
        return f"{float(value):.2f}×"
    return str(value)


def kpi_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, key, formatted value)`` for every KPI, in display order."""
    return [(label, key, format_value(metrics.get(key), kind)) for key, label, kind in KPI_ROWS]


def cost_breakdown(result: BacktestResult, metrics: dict[str, Any]) -> dict[str, float]:
    """CNY per cost kind: the metrics' ``cost_<kind>``, else the sum over the trades."""
    out: dict[str, float] = {}
    for kind in COST_KINDS:
        value = metrics.get(f"cost_{kind}")
        if _missing(value):
            trades = result.trades
            value = float(trades[kind].sum()) if kind in trades.columns and len(trades) else 0.0
        out[kind] = float(value)
    return out


def refusal_counts(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders per refusal reason (an order with ``a;b`` counts once under each), split by status.

    Index: reason (known reasons first, in :data:`REFUSAL_REASONS` order); columns ``orders`` and one per
    status in :data:`ORDER_STATUSES`.
    """
    columns = ["orders", *ORDER_STATUSES]
    if orders.empty:
        return pd.DataFrame(columns=columns, dtype=int)
    flagged = orders[orders["reason"].fillna("") != ""]
    pairs = flagged.assign(reason=flagged["reason"].str.split(";")).explode("reason")
    pairs = pairs[pairs["reason"].str.strip() != ""].assign(reason=lambda d: d["reason"].str.strip())
    table = pd.crosstab(pairs["reason"], pairs["status"]) if len(pairs) else pd.DataFrame()
    table = table.reindex(columns=list(ORDER_STATUSES), fill_value=0)
    table.insert(0, "orders", table.sum(axis=1))
    order = [r for r in REFUSAL_REASONS if r in table.index] + sorted(set(table.index) - set(REFUSAL_REASONS))
    return table.reindex(order).astype(int).rename_axis("reason")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """A GitHub-flavoured markdown table; ``align`` has one of ``l r c`` per column (default left)."""
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    spec = [marks[a] for a in (align or "l" * len(header))]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(spec) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _checks(checks: Sequence[tuple[str, bool, str]], empty: str) -> list[str]:
    if not checks:
        return [empty]
    failed = sum(1 for _, ok, _ in checks if not ok)
    summary = f"{PASS} 全部 {len(checks)} 项通过" if not failed else f"{FAIL} {failed} / {len(checks)} 项未通过"
    rows = [(name, PASS if ok else FAIL, detail) for name, ok, detail in checks]
    return [summary, "", *_table(("检查项", "结果", "说明"), rows, "lcl")]


def _settings_rows(settings: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """One row per leaf setting; nested dicts become dotted keys, lists stay one JSON cell."""
    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _settings_rows(value, f"{name}.")
        elif isinstance(value, (dict, list, tuple)):
            rows.append((name, json.dumps(value, ensure_ascii=False, default=str)))
        else:
            rows.append((name, str(value)))
    return rows


def _months(metrics: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, title in (("best_months", "最佳月份"), ("worst_months", "最差月份")):
        months = metrics.get(key) or []
        lines += [f"### {title}", ""]
        if not months:
            lines += ["无数据。", ""]
            continue
        rows = []
        for m in months:
            contrib = sorted((m.get("contributions") or {}).items(), key=lambda kv: -abs(kv[1]))[:5]
            text = ", ".join(f"{sym} {format_value(v, 'pct')}" for sym, v in contrib) or MISSING
            rows.append((m.get("month", MISSING), format_value(m.get("return"), "pct"), text))
        lines += [*_table(("月份", "收益", "主要贡献 (前5)"), rows, "lrl"), ""]
    return lines[:-1]


def _costs(result: BacktestResult, metrics: dict[str, Any]) -> list[str]:
    costs = cost_breakdown(result, metrics)
    total = sum(costs.values())
    traded = float(result.trades["value"].sum()) if len(result.trades) else 0.0
    rows = [(f"{COST_LABELS[k]} {k}", format_value(v, "money"),
             format_value(v / total if total else None, "pct")) for k, v in costs.items()]
    rows.append(("合计 total", format_value(total, "money"), format_value(1.0 if total else None, "pct")))
    bps = f"{total / traded * 1e4:.2f} bp" if traded else MISSING
    return [*_table(("成本", "金额 (CNY)", "占比"), rows, "lrr"), "",
            f"成交总额 {format_value(traded, 'money')} CNY，综合成本 {bps}。"]


def _refusals(orders: pd.DataFrame) -> list[str]:
    status = orders["status"].value_counts() if len(orders) else pd.Series(dtype=int)
    lines = [f"共 {len(orders)} 笔订单：全部成交 {int(status.get('filled', 0))}，"
             f"部分成交 {int(status.get('partial', 0))}，被拒 {int(status.get('refused', 0))}。", ""]
    counts = refusal_counts(orders)
    if counts.empty:
        return lines + ["无拒单或减量。"]
    rows = [(reason, REFUSAL_LABELS.get(reason, reason), *(int(v) for v in row))
            for reason, row in counts.iterrows()]
    return lines + _table(("原因", "说明", "订单数", "被拒", "部分成交", "全部成交"), rows, "llrrrr")


def _format_time(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M")


def _trades(trades: pd.DataFrame) -> list[str]:
    if trades.empty:
        return ["无成交。"]
    trades = trades.sort_values("datetime", kind="stable")
    cost_cols = [k for k in COST_KINDS if k in trades.columns]
    costs = trades[cost_cols].sum(axis=1)
    n = len(trades)
    shown = list(range(n)) if n <= 2 * TRADE_HEAD else [*range(TRADE_HEAD), *range(n - TRADE_HEAD, n)]
    # only the rows shown are read, column by column (a row Series per trade costs more than the formatting)
    picked = trades.iloc[shown]
    columns = {c: picked[c].tolist() for c in ("datetime", "direction", "vt_symbol", "price", "volume", "value",
                                                "reason")}
    picked_costs = costs.iloc[shown].tolist()

    def row(k: int) -> tuple[str, ...]:
        return (_format_time(columns["datetime"][k]), str(columns["direction"][k]).upper(), columns["vt_symbol"][k],
                f"{columns['price'][k]:.3f}", f"{int(columns['volume'][k]):,}",
                format_value(columns["value"][k], "money"), format_value(picked_costs[k], "money"),
                columns["reason"][k] or MISSING)

    header = ("时间", "操作", "代码", "价格", "数量", "金额", "费用", "原因")
    if n <= 2 * TRADE_HEAD:
        return [f"共 {n} 笔成交。", "", *_table(header, [row(k) for k in range(n)], "lcl" + "r" * 4 + "l")]
    omitted = n - 2 * TRADE_HEAD
    rows = [row(k) for k in range(TRADE_HEAD)]
    rows.append(("…", "…", f"省略 {omitted} 笔", "…", "…", "…", "…", "…"))
    rows += [row(k) for k in range(TRADE_HEAD, 2 * TRADE_HEAD)]
    return [f"共 {n} 笔成交，显示前 {TRADE_HEAD} 笔与后 {TRADE_HEAD} 笔，中间省略 {omitted} 笔。", "",
            *_table(header, rows, "lcl" + "r" * 4 + "l")]


def alert_rows(alerts: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(rule, metric key, formatted value, status) per alert rule; shared with the HTML report."""
    kinds = {key: kind for key, _, kind in KPI_ROWS}
    return [(a["rule"], a["metric"], format_value(a["value"], kinds.get(a["metric"], "num")),
             MISSING if a["triggered"] is None else (f"{FAIL} 触发" if a["triggered"] else f"{PASS} 正常"))
            for a in alerts]


def _alerts(alerts: Sequence[dict[str, Any]]) -> list[str]:
    if not alerts:
        return ["未评估告警规则。"]
    rows = [(rule, f"`{key}`", value, status) for rule, key, value, status in alert_rows(alerts)]
    return _table(("规则", "key", "值", "状态"), rows, "llrl")


def blocks_markdown(blocks: Sequence[Block]) -> list[str]:
    """Lines as they are, tables (header, rows, align) as markdown tables set off by blank lines."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines.append(block)
        else:
            lines += ["", *_table(*block), ""] if lines and lines[-1] != "" else [*_table(*block), ""]
    return lines[:-1] if lines and lines[-1] == "" else lines


def render_markdown(result: BacktestResult, metrics: dict[str, Any], context: ReportContext) -> str:
    """The report as one markdown string (see :func:`write_markdown`)."""
    start, end = format_value(metrics.get("start"), "date"), format_value(metrics.get("end"), "date")
    capital = format_value(result.initial_capital, "money")
    lines = [f"# {context.strategy} 回测报告", "", f"区间 {start} ~ {end}，初始资金 {capital} CNY", ""]
    if context.warnings:
        lines += [f"## {WARNINGS_HEADING}", "", *(f"> ⚠️ {_cell(w)}" for w in context.warnings), ""]

    settings = context.settings or result.settings
    metrics_rows = [(label, f"`{key}`", value) for label, key, value in kpi_rows(metrics)]
    body = {
        "data": [f"- {_cell(d)}" for d in context.data_description] or ["无数据说明。"],
        "lookahead": _checks(context.lookahead_checks, "未提供未来函数检查。"),
        "settings": _table(("设置", "值"), _settings_rows(settings), "ll"),
        "metrics": _table(("指标", "key", "值"), metrics_rows, "llr"),
        "months": _months(metrics),
        "costs": _costs(result, metrics),
        "refusals": _refusals(result.orders),
        "trades": _trades(result.trades),
        "identities": _checks(context.identities, "未提供会计恒等式检查。"),
        "alerts": _alerts(metrics.get("alerts") or []),
        "risk": blocks_markdown(risk_blocks(metrics.get("risk") or risk_summary(result))),
    }
    for key, heading in SECTIONS.items():
        lines += [f"## {heading}", "", *body[key], ""]
    for number, (heading, table) in enumerate(context.extra, start=len(SECTIONS) + 1):
        lines += [f"## {number}. {heading}", "", *_table(list(table.columns), table.round(4).values.tolist()), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_markdown(path: Path, result: BacktestResult, metrics: dict[str, Any], context: ReportContext) -> Path:
    """Write the markdown report to ``path`` (UTF-8; parent folders created) and return the path.

    Settings shown are ``context.settings``, or ``result.settings`` when the context has none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(result, metrics, context), encoding="utf-8")
    return path
