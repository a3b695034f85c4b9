"""The dashboard page as one self-contained HTML document: inline style, inline SVG sparklines and a small
inline script that re-fetches the body every few seconds. Nothing is loaded from another address.

Colours follow the A-share convention the VeighNa GUI uses: a gain is red, a loss green.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from typing import Any

STYLE = """
*{box-sizing:border-box}body{margin:0;background:#19232d;color:#e6e9ec;font:13px/1.35 "Microsoft YaHei",
"PingFang SC","Noto Sans CJK SC","WenQuanYi Micro Hei",system-ui,sans-serif}header{display:flex;align-items:center;gap:14px;
padding:8px 14px;background:#0f1720;border-bottom:1px solid #32414b}header h1{font-size:16px;margin:0;
font-weight:600}.chip{color:#9fb0bf}.chip b{color:#e6e9ec;font-weight:500}#clock{margin-left:auto;color:#9fb0bf}
#clock.stale{color:#ffb000}main{padding:10px 14px}.cards{display:grid;grid-template-columns:repeat(8,minmax(0,1fr));gap:8px;
margin-bottom:10px}.card{background:#23313d;border:1px solid #32414b;border-radius:4px;padding:6px 9px}
.card .l{color:#9fb0bf;font-size:11px}.card .v{font-size:19px;font-variant-numeric:tabular-nums;white-space:nowrap}
.card .s{color:#9fb0bf;font-size:11px}.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:10px}
section{background:#23313d;border:1px solid #32414b;border-radius:4px;margin-bottom:10px;overflow-x:auto}
section h2{font-size:13px;margin:0;padding:5px 9px;background:#2b3b48;border-bottom:1px solid #32414b;
font-weight:600;display:flex;gap:8px}section h2 .n{color:#9fb0bf;font-weight:400;margin-left:auto}
table{width:100%;border-collapse:collapse}th,td{padding:3px 8px;text-align:left;white-space:nowrap}
th{color:#9fb0bf;font-weight:500;font-size:11px;border-bottom:1px solid #32414b}tr+tr td{border-top:1px solid #2b3b48}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}td.w{white-space:normal;max-width:420px}
.note{padding:6px 9px;color:#9fb0bf}.err{padding:6px 9px;color:#ffb000}.up{color:#ff5a5a}.down{color:#2ecc71}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:11px;font-weight:600}
.ok,.ACTIVE,.normal,.none{background:#1e5631;color:#c8f7d5}.breach,.HALTED,.alert,.rolled_back,.rolling_back{background:#8b1e1e;
color:#ffd6d6}.REDUCING,.warn,.watch,.awaiting_approval{background:#7a5a00;color:#ffe9a8}.na,.info,.complete{background:#32414b;
color:#cfd8e0}.shadow,.staged{background:#1464a0;color:#e1efff}svg{vertical-align:middle}#equity svg{display:block;padding:4px 6px}tr.mark td{background:#2a3f52}
"""

SCRIPT = """
const stamp=()=>new Date().toLocaleTimeString('zh-CN',{hour12:false});
const clock=document.getElementById('clock');clock.textContent='更新 Updated '+stamp();
async function refresh(){try{const r=await fetch('fragment',{credentials:'same-origin',cache:'no-store'});
if(!r.ok)throw new Error(r.status);document.getElementById('body').innerHTML=await r.text();
clock.textContent='更新 Updated '+stamp();clock.className=''}catch(e){clock.textContent='刷新失败 refresh failed ('+
e.message+') '+stamp();clock.className='stale'}}
setInterval(refresh,REFRESH_MS);
"""


def text(value: Any) -> str:
    return "–" if value is None else escape(str(value))


def money(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def pct(value: Any, signed: bool = True) -> str:
    return "–" if value is None else (f"{value:+.2%}" if signed else f"{value:.2%}")


def number(value: Any) -> str:
    """A price, count or KPI value: thousands separators and at most three decimals from 1 on (a fund's
    price tick is 0.001 yuan in the SSE/SZSE trading rules; fractional share counts), trailing zeros dropped;
    four significant digits below 1 (ratios: an exponent only below 1e-4)."""
    if value is None:
        return "–"
    if not isinstance(value, float) or not math.isfinite(value):
        return escape(str(value))
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def signed_class(value: Any) -> str:
    """A gain red, a loss green (the A-share convention)."""
    if value is None or value == 0:
        return ""
    return "up" if value > 0 else "down"


def badge(value: Any) -> str:
    label = text(value)
    css = "na" if value in (None, "n/a") else escape(str(value))
    return f'<span class="badge {css}">{label}</span>'


def sparkline(values: list[Any], width: int = 110, height: int = 24) -> str:
    """An inline SVG line of ``values`` (None gaps skipped), the last point marked; empty for < 2 values."""
    points = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(float(v))]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = high - low or 1.0
    last_index = max(len(values) - 1, 1)
    xy = [(1 + i * (width - 4) / last_index, height - 2 - (v - low) / span * (height - 4)) for i, v in points]
    colour = "#ff5a5a" if points[-1][1] >= points[0][1] else "#2ecc71"
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    x, y = xy[-1]
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" points="{line}"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/></svg>')


def equity_chart(dates: list[str], equity: list[float], width: int = 640, height: int = 150) -> str:
    """The equity line over its drawdown area (below), with the first/last dates and the high/low marked."""
    if len(equity) < 2:
        return ""
    values = [float(v) for v in equity]
    peaks = [max(values[: i + 1]) for i in range(len(values))]
    drawdowns = [v / p - 1.0 if p else 0.0 for v, p in zip(values, peaks)]
    top, split, bottom = 14, 104, height - 14  # equity above ``split``, drawdown below it
    low, high = min(values), max(values)
    worst = min(min(drawdowns), -1e-9)
    step = (width - 80) / (len(values) - 1)
    xs = [70 + i * step for i in range(len(values))]
    ys = [split - 4 - (v - low) / ((high - low) or 1.0) * (split - 4 - top) for v in values]
    ds = [split + 4 + d / worst * (bottom - split - 4) for d in drawdowns]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    area = f"{xs[0]:.1f},{split + 4} " + " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ds)) + f" {xs[-1]:.1f},{split + 4}"
    colour = "#ff5a5a" if values[-1] >= values[0] else "#2ecc71"
    label = 'font-size="10" fill="#9fb0bf"'
    return (f'<svg width="100%" height="{height}" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img">'
            f'<text x="4" y="{top + 4}" {label}>{high:,.0f}</text><text x="4" y="{split - 2}" {label}>{low:,.0f}</text>'
            f'<text x="4" y="{bottom}" {label}>{worst:.2%}</text>'
            f'<line x1="70" x2="{width - 10}" y1="{split + 4}" y2="{split + 4}" stroke="#32414b"/>'
            f'<polygon points="{area}" fill="#2ecc71" fill-opacity="0.35"/>'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{line}"/>'
            f'<text x="70" y="{height - 1}" {label}>{escape(dates[0])}</text>'
            f'<text x="{width - 10}" y="{height - 1}" text-anchor="end" {label}>{escape(dates[-1])}</text></svg>')


def table(headers: list[tuple[str, str]], rows: list[list[str]], empty: str, marked: set[int] | None = None) -> str:
    """``headers``: (label, "r" for right-aligned numbers, "w" for wrapping text, or ""), ``rows``: cells already
    escaped; rows whose index is in ``marked`` are highlighted (the latest session's)."""
    if not rows:
        return f'<div class="note">{escape(empty)}</div>'
    align = [a for _, a in headers]
    head = "".join(f'<th class="{a}">{label}</th>' for label, a in headers)
    body = "".join(('<tr class="mark">' if i in (marked or ()) else "<tr>")
                   + "".join(f'<td class="{a}">{c}</td>' for a, c in zip(align, row)) + "</tr>" for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def panel(title: str, content: str, note: str = "", key: str = "") -> str:
    count = f'<span class="n">{escape(note)}</span>' if note else ""
    return f'<section id="{key}"><h2>{title}{count}</h2>{content}</section>'


def failed(data: dict[str, Any]) -> str:
    return f'<div class="err">{escape(data["error"])}</div>' if "error" in data else ""


# -- sections --------------------------------------------------------------------------------------------
def cards(summary: dict[str, Any]) -> str:
    account, fills = summary["account"], summary["fills"]
    risk_rows = summary["risk"].get("rows") or []
    rung = risk_rows[0]["rung"] if risk_rows else account.get("risk_rung")
    if "error" in account or not account.get("sessions"):
        return f'<div class="cards">{failed(account) or "<div class=note>尚无收盘记录 no session closed yet</div>"}</div>'
    items = [
        ("权益 Equity", money(account["equity"]), sparkline(account["trend"]["equity"], 120, 22)),
        ("当日盈亏 Day P&amp;L", f'<span class="{signed_class(account["pnl"])}">{money(account["pnl"])}</span>',
         text(account["date"])),
        ("累计收益 Return", f'<span class="{signed_class(account["return"])}">{pct(account["return"])}</span>',
         f'{account["sessions"]} 个交易日 sessions'),
        ("回撤 Drawdown", f'<span class="{signed_class(account["drawdown"])}">{pct(account["drawdown"])}</span>',
         f'最大 max {pct(account["max_drawdown"])}'),
        ("现金 Cash", money(account["cash"]), f'市值 MV {money(account["market_value"], 0)}'),
        ("持仓 Positions", str(len(account["positions"])), "只 symbols held"),
        ("风控 Risk", badge(rung), f'告警 alerts {summary["alerts"].get("count", 0)}'),
        ("成交 Fills", str(len(fills.get("today") or [])), f'{text(fills.get("session"))} · 共 total {fills.get("count", 0)}'),
    ]
    body = "".join(f'<div class="card"><div class="l">{label}</div><div class="v">{value}</div>'
                   f'<div class="s">{sub}</div></div>' for label, value, sub in items)
    return f'<div class="cards" id="cards">{body}</div>'


def kpi_panel(kpis: dict[str, Any]) -> str:
    rows = [[text(r["scope"]), text(r["kpi"]), number(r["value"]), sparkline(r["trend"]), number(r["baseline"]),
             text(r["threshold"]), badge(r["status"]), text(r["date"])] for r in kpis.get("rows") or []]
    headers = [("范围 Scope", ""), ("指标 KPI", ""), ("数值 Value", "r"), ("趋势 Trend", ""), ("基准 Baseline", "r"),
               ("阈值 Threshold", ""), ("状态 Status", ""), ("日期 Date", "")]
    note = f'{kpis.get("breaches", 0)} 项超限 breaches' if kpis.get("rows") else ""
    return panel("关键指标 KPIs", failed(kpis) + table(headers, rows, kpis.get("note") or "—"), note, "kpis")


def risk_panel(risk: dict[str, Any], canary: dict[str, Any]) -> str:
    rows = [[text(r["scope"]), f'{badge(r["rung"])} <span class="chip">{text(r["since"])}</span>', money(r["equity"]),
             f'<span class="{signed_class(r["drawdown"])}" title="峰值 peak {money(r["peak"])}">{pct(r["drawdown"])}</span>',
             ", ".join(escape(f) for f in r["flags"]) or "–", text(r["zone"]), badge(r["stage"]),
             escape("; ".join(r["reasons"])) or "–"] for r in risk.get("rows") or []]
    headers = [("范围 Scope", ""), ("级别 Rung · 起始 Since", ""), ("权益 Equity", "r"), ("回撤 DD", "r"),
               ("标志 Flags", ""), ("VaR 例外检验 Exceptions", "w"), ("处置 Fail-safe", ""), ("原因 Reasons", "w")]
    canary_rows = []
    for c in canary.get("rows") or []:
        if c["status"] == "none":
            canary_rows.append([text(c["strategy"]), badge("none"), "–", "–", "–", "未运行 no canary"])
            continue
        gates = [g for g in c.get("gates") or [] if g.get("passed") is False]
        canary_rows.append([text(c["strategy"]), badge(c["status"]), text(c["stage"]), pct(c["share"], signed=False),
                            text(c["sessions_in_stage"]),
                            f'{text(c["candidate"])[:10]} vs {text(c["champion"])[:10] or "–"}'
                            + (f' · 未过 failing: {", ".join(escape(g["name"]) for g in gates)}' if gates else "")])
    canary_headers = [("策略 Strategy", ""), ("状态 Status", ""), ("阶段 Stage", ""), ("资金占比 Share", "r"),
                      ("阶段天数 Sessions", "r"), ("版本 Versions", "")]
    return (panel("风控状态 Risk state", failed(risk) + table(headers, rows, risk.get("note") or "—"), "", "risk")
            + panel("金丝雀 Canary", failed(canary) + table(canary_headers, canary_rows, "—"), "", "canary"))


def plan_panel(plan: dict[str, Any]) -> str:
    parts = [failed(plan)]
    for s in plan.get("strategies") or []:
        if s["targets"]:
            rows = [[text(t["symbol"]), pct(t["target"], signed=False) if s["weighted"] else number(t["target"]),
                     text(t["note"])] for t in s["targets"]]
            parts.append(f'<div class="note">{escape(s["strategy"])} · 待执行计划 pending plan, decided '
                         f'{text(s["decided"])}</div>')
            parts.append(table([("代码 Symbol", ""), ("目标 Target", "r"), ("说明 Note", "")], rows, "—"))
        rows = [[text(leg["symbol"]), f'<span class="{"up" if leg["side"] == "buy" else "down"}">'
                 f'{"买 buy" if leg["side"] == "buy" else "卖 sell"}</span>', number(leg["wanted"]),
                 number(leg["submitted"]), number(leg["filled"]), number(leg["remaining"]),
                 escape(", ".join(leg["cuts"])) or "–"] for leg in s["legs"]]
        parts.append(f'<div class="note">{escape(s["strategy"])} · 交易日 session {text(s["session"])} '
                     f'({text(s["phase"])})</div>')
        parts.append(table([("代码 Symbol", ""), ("方向 Side", ""), ("计划 Wanted", "r"), ("委托 Submitted", "r"),
                            ("成交 Filled", "r"), ("未成 Remaining", "r"), ("削减 Cuts", "")], rows,
                           "无调仓 no legs yet"))
    return panel("今日计划 Plan", "".join(parts), "", "plan")


def fills_panel(fills: dict[str, Any]) -> str:
    rows = [[text(f["datetime"]), text(f["vt_symbol"]),
             f'<span class="{"up" if f["direction"] == "buy" else "down"}">{text(f["direction"])}</span>',
             number(f["price"]), number(f["volume"]), money(f.get("value")),
             money((f.get("commission") or 0) + (f.get("stamp_duty") or 0) + (f.get("transfer_fee") or 0)),
             text(f.get("reason"))] for f in fills.get("recent") or []]
    headers = [("日期 Date", ""), ("代码 Symbol", ""), ("方向 Side", ""), ("价格 Price", "r"), ("数量 Volume", "r"),
               ("金额 Value", "r"), ("费用 Fees", "r"), ("原因 Reason", "")]
    note = f'共 {fills.get("count", 0)} 笔 fills' + (f' · 最新 last {fills["session"]}' if fills.get("session") else "")
    latest = {i for i, f in enumerate(fills.get("recent") or []) if f["datetime"] == fills.get("session")}
    return panel("成交 Fills", failed(fills) + table(headers, rows, "尚无成交 no fills yet", latest), note, "fills")


ORDERS_TITLE = "未成交/被拒委托 Unfilled &amp; refused orders"


def orders_panel(orders: dict[str, Any]) -> str:
    refused = [[text(o["date"]), text(o["vt_symbol"]), text(o["direction"]), number(o["volume"]), number(o["traded"]),
                badge(o["status"]), text(o["reference"])] for o in orders.get("refused") or []]
    refused_headers = [("日期 Date", ""), ("代码 Symbol", ""), ("方向 Side", ""), ("委托 Volume", "r"),
                       ("成交 Traded", "r"), ("状态 Status", ""), ("编号 Reference", "")]
    return panel(ORDERS_TITLE, failed(orders) + table(refused_headers, refused, "无 none"), f'{len(refused)}', "orders")


def equity_panel(account: dict[str, Any]) -> str:
    trend = account.get("trend") or {}
    chart = equity_chart(trend.get("dates") or [], trend.get("equity") or [])
    return panel("权益与回撤 Equity &amp; drawdown", chart or '<div class="note">—</div>',
                 f'近 {len(trend.get("equity") or [])} 个交易日 sessions', "equity")


def positions_panel(account: dict[str, Any]) -> str:
    rows = [[text(symbol), number(volume)] for symbol, volume in sorted((account.get("positions") or {}).items())]
    return panel("持仓 Positions", table([("代码 Symbol", ""), ("数量 Volume", "r")], rows, "空仓 no positions"),
                 text(account.get("date")), "positions")


def alerts_panel(alerts: dict[str, Any]) -> str:
    rows = [[text(a["day"]), text(a["scope"]), badge(a["severity"]), text(a["kind"]),
             f'<span title="{text(a["message"])}">{text(str(a["message"])[:110])}</span>'] for a in alerts.get("rows") or []]
    headers = [("日期 Day", ""), ("范围 Scope", ""), ("级别 Level", ""), ("类别 Kind", ""), ("内容 Message", "w")]
    return panel("告警 Alerts", failed(alerts) + table(headers, rows, "无告警 no alerts"),
                 f'{alerts.get("count", 0)}', "alerts")


def guarded_panel(title: str, key: str, build: Callable[[], str]) -> str:
    """``build()``, or its panel showing why it failed: a file of an unexpected shape blanks one panel,
    never the page (the JSON sections are guarded the same way in ``data.guarded``)."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - any fault of one panel stays in that panel
        return panel(title, f'<div class="err">{escape(f"{type(exc).__name__}: {exc}")}</div>', "", key)


def render_body(summary: dict[str, Any]) -> str:
    """Everything below the header: what the page's script replaces on each refresh."""
    s = summary
    left = [("风控状态 Risk state", "risk", lambda: risk_panel(s["risk"], s["canary"])),
            ("关键指标 KPIs", "kpis", lambda: kpi_panel(s["kpis"])), ("今日计划 Plan", "plan", lambda: plan_panel(s["plan"])),
            ("持仓 Positions", "positions", lambda: positions_panel(s["account"]))]
    right = [("权益与回撤 Equity &amp; drawdown", "equity", lambda: equity_panel(s["account"])),
             ("告警 Alerts", "alerts", lambda: alerts_panel(s["alerts"])),
             ("成交 Fills", "fills", lambda: fills_panel(s["fills"])),
             (ORDERS_TITLE, "orders", lambda: orders_panel(s["orders"]))]

    def column(panels: list[tuple[str, str, Callable[[], str]]]) -> str:
        return "".join(guarded_panel(*p) for p in panels)

    return (guarded_panel("概览 Overview", "cards", lambda: cards(s)) + '<div class="grid"><div>' + column(left)
            + "</div><div>" + column(right) + "</div></div>")


def render_page(summary: dict[str, Any], refresh: int) -> str:
    run = summary["run"]
    chips = [("策略 Strategy", ", ".join(run.get("strategies") or []) or "–"), ("网关 Gateway", run.get("gateway")),
             ("最新交易日 Last session", run.get("last_session")), ("状态写入 State written", run.get("written")),
             ("目录 Run", run.get("folder"))]
    header = "".join(f'<span class="chip">{label} <b>{text(value)}</b></span>' for label, value in chips)
    return ("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            "<title>交易看板 Dashboard · vnpy_rotation</title>"
            f"<style>{STYLE}</style></head><body><header><h1>交易看板 Dashboard</h1>{header}"
            f'<span id="clock"></span></header><main id="body">{render_body(summary)}</main>'
            f"<script>{SCRIPT.replace('REFRESH_MS', str(int(refresh * 1000)))}</script></body></html>")
