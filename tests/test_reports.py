"""HTML and markdown reports of one backtest, on a small hand-built result."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import pytest

from vnpy_rotation.backtest.metrics import compute_metrics
from vnpy_rotation.backtest.report_html import ALERTS_TABLE_ID, FIGURES, REFUSALS_TABLE_ID, write_html
from vnpy_rotation.backtest.report_md import FAIL, PASS, SECTIONS, TRADE_HEAD, ReportContext, write_markdown
from vnpy_rotation.backtest.result import COST_KINDS, BacktestResult

SYMBOLS = ("510300.SSE", "159915.SZSE", "600519.SSE", "000001.SZSE")
CAPITAL = 1_000_000.0
# (day, symbol, direction, requested, submitted, filled, status, reason)
ORDERS = [
    (0, "510300.SSE", "buy", 100_000, 100_000, 100_000, "filled", ""),
    (0, "159915.SZSE", "buy", 60_000, 60_000, 60_000, "filled", ""),
    (0, "600519.SSE", "buy", 200, 200, 200, "filled", ""),
    (0, "000001.SZSE", "buy", 10_000, 10_000, 0, "refused", "limit_up"),
    (30, "510300.SSE", "sell", 100_000, 100_000, 100_000, "filled", ""),
    (31, "000001.SZSE", "buy", 20_050, 20_000, 20_000, "filled", "lot_rounding"),
    (31, "600519.SSE", "buy", 300, 300, 100, "partial", "participation_cap"),
    (45, "159915.SZSE", "sell", 60_000, 60_000, 0, "refused", "limit_down"),
    (50, "510300.SSE", "buy", 250, 200, 0, "refused", "insufficient_cash;lot_rounding"),
]
EXPECTED_REFUSALS = {"limit_up": 1, "limit_down": 1, "insufficient_cash": 1, "lot_rounding": 2,
                     "participation_cap": 1}


def _costs(direction: str, value: float) -> dict[str, float]:
    return {"commission": max(value * 2.5e-4, 5.0), "stamp_duty": value * 5e-4 if direction == "sell" else 0.0,
            "transfer_fee": value * 1e-5, "slippage": value * 5e-4}


def make_result(days: int = 60) -> BacktestResult:
    """A consistent result: equity = cash + holdings, symbol profit sums to the change in equity."""
    dates = pd.bdate_range("2024-01-02", periods=days, name="date")
    rng = np.random.default_rng(7)
    start = np.array([3.5, 2.0, 1600.0, 10.0])
    closes = pd.DataFrame(start * np.cumprod(1 + rng.normal(0.0005, 0.015, (days, 4)), axis=0),
                          index=dates, columns=list(SYMBOLS))
    orders = pd.DataFrame(
        [(dates[d], s, dr, rq, sb, fl, closes.at[dates[d], s], st, rs) for d, s, dr, rq, sb, fl, st, rs in ORDERS],
        columns=["date", "vt_symbol", "direction", "requested", "submitted", "filled", "price", "status", "reason"])
    fills = orders[orders["filled"] > 0]
    trades = pd.DataFrame([{
        "datetime": o.date + pd.Timedelta(hours=9, minutes=30), "vt_symbol": o.vt_symbol, "direction": o.direction,
        "price": o.price, "volume": o.filled, "value": o.price * o.filled,
        **_costs(o.direction, o.price * o.filled), "reason": "rebalance"} for o in fills.itertuples()])

    volume = pd.DataFrame(0.0, index=dates, columns=list(SYMBOLS))
    flow = pd.DataFrame(0.0, index=dates, columns=list(SYMBOLS))  # cash per symbol, costs included
    for t in trades.itertuples():
        day = t.datetime.normalize()
        sign = 1 if t.direction == "buy" else -1
        volume.loc[day:, t.vt_symbol] += sign * t.volume
        flow.at[day, t.vt_symbol] += -sign * t.value - sum(getattr(t, k) for k in COST_KINDS)
    holdings = volume * closes
    cash = CAPITAL + flow.sum(axis=1).cumsum()
    equity = pd.DataFrame({"equity": cash + holdings.sum(axis=1), "cash": cash,
                           "market_value": holdings.sum(axis=1)})
    symbol_pnl = holdings.diff().fillna(holdings) + flow
    held = holdings.stack()
    held = held[held != 0]
    positions = pd.DataFrame({"date": held.index.get_level_values(0), "vt_symbol": held.index.get_level_values(1),
                              "volume": volume.stack()[held.index].values, "close": closes.stack()[held.index].values,
                              "market_value": held.values})
    positions["weight"] = positions["market_value"] / equity["equity"].reindex(positions["date"]).values
    cash_flows = pd.DataFrame(columns=["date", "vt_symbol", "kind", "volume_before", "volume_after", "cash"])
    return BacktestResult(equity=equity, trades=trades, orders=orders, positions=positions, holdings_value=holdings,
                          symbol_pnl=symbol_pnl, cash_flows=cash_flows, initial_capital=CAPITAL,
                          settings={"fill": "next_open", "commission_rate": 2.5e-4})


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return make_result()


@pytest.fixture(scope="module")
def benchmark(result: BacktestResult) -> pd.Series:
    return pd.Series(np.linspace(3800, 3950, len(result.equity)), index=result.equity.index)


@pytest.fixture(scope="module")
def metrics(result: BacktestResult, benchmark: pd.Series) -> dict:
    return compute_metrics(result.equity, trades=result.trades, benchmark=benchmark, symbol_pnl=result.symbol_pnl)


def test_fixture_is_consistent(result: BacktestResult) -> None:
    assert np.allclose(result.symbol_pnl.sum(axis=1).cumsum() + CAPITAL, result.equity["equity"])


class _Page(HTMLParser):
    """Collects scripts, div ids, headings and table rows (by table id) of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self.div_ids: list[str] = []
        self.graph_divs = 0
        self.tables: dict[str, list[list[str]]] = {}
        self.title = ""
        self._table: str | None = None
        self._tag: str | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self._tag = tag
        if tag == "script":
            self.scripts.append((a, ""))
        elif tag == "div" and "id" in a:
            self.div_ids.append(a["id"])
            self.graph_divs += "plotly-graph-div" in (a.get("class") or "")
        elif tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table is not None and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._table is not None and self._in_body:
            self.tables[self._table][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._in_body = None, False
        self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag == "script":
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)
        elif self._tag == "td" and self._table is not None and self._in_body:
            self.tables[self._table][-1][-1] += data
        elif self._tag == "h1":
            self.title += data


def test_html_report(tmp_path: Path, result: BacktestResult, metrics: dict, benchmark: pd.Series) -> None:
    path = write_html(tmp_path / "out" / "report.html", result, metrics, benchmark, "轮动 <demo> & test")
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()

    assert page.title == "轮动 <demo> & test"  # escaped in the source, intact once parsed
    bundle = plotly.offline.get_plotlyjs()[:200]
    assert sum(bundle in text for _, text in page.scripts) == 1
    assert not [a for a, _ in page.scripts if str(a.get("src", "")).startswith(("http:", "https:", "//"))]
    assert all(fid in page.div_ids for fid in FIGURES)
    assert page.graph_divs == len(FIGURES)

    refused = result.refusals()
    rows = page.tables[REFUSALS_TABLE_ID]
    assert len(rows) == len(refused) == 5
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        (d.strftime("%Y-%m-%d"), s, reason) for d, s, reason in refused[["date", "vt_symbol", "reason"]].values]


def test_html_and_markdown_show_the_alert_rules(tmp_path: Path, result: BacktestResult, metrics: dict) -> None:
    from vnpy_rotation.backtest.alerts import evaluate_alerts

    alerted = {**metrics, "alerts": evaluate_alerts({**metrics, "sharpe": 0.2, "annual_return": 0.5})}
    page = _Page()
    page.feed(write_html(tmp_path / "report.html", result, alerted, None, "t").read_text(encoding="utf-8"))
    rows = {r[1]: r for r in page.tables[ALERTS_TABLE_ID]}
    assert list(rows) == ["annual_return", "max_drawdown", "sharpe", "monthly_win_rate"]
    assert rows["sharpe"][2] == "0.20" and "❌" in rows["sharpe"][3] and "✅" in rows["annual_return"][3]


def test_html_without_benchmark_or_trades(tmp_path: Path, result: BacktestResult) -> None:
    quiet = BacktestResult(equity=result.equity.assign(equity=CAPITAL, cash=CAPITAL, market_value=0.0),
                           trades=result.trades.iloc[:0], orders=result.orders.iloc[:0],
                           positions=result.positions.iloc[:0], holdings_value=result.holdings_value * 0,
                           symbol_pnl=result.symbol_pnl * 0, cash_flows=result.cash_flows,
                           initial_capital=CAPITAL)
    metrics = compute_metrics(quiet.equity, trades=quiet.trades)
    page = _Page()
    page.feed(write_html(tmp_path / "r.html", quiet, metrics, None, "flat").read_text(encoding="utf-8"))
    assert page.graph_divs == len(FIGURES)
    assert page.tables[REFUSALS_TABLE_ID] == []


def _sections(text: str) -> dict[str, list[str]]:
    """Lines under each ``## `` heading."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def _table_rows(lines: list[str]) -> list[list[str]]:
    """Body rows of the first markdown table in ``lines`` (header and separator dropped)."""
    rows, seen = [], False
    for line in lines:
        if line.startswith("|"):
            seen = True
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
        elif seen:
            break
    return rows[2:]


def _context(**changes) -> ReportContext:
    base = dict(strategy="etf_rotation", data_description=["来源: 合成数据", "区间: 2024-01 ~ 2024-03"],
                settings={"rebalance": "monthly", "pools": ["A_SHARE", "QDII"], "cost": {"commission_rate": 2.5e-4}},
                lookahead_checks=[("fills at t+1 open", True, "no same-close fills"),
                                  ("perturbed future data", False, "order on 2024-02-14 changed")],
                identities=[("equity = cash + market value", True, "max error 0.00")])
    return ReportContext(**{**base, **changes})


def test_markdown_report(tmp_path: Path, result: BacktestResult, metrics: dict) -> None:
    path = write_markdown(tmp_path / "out" / "report.md", result, metrics, _context(warnings=["short sample"]))
    sections = _sections(path.read_text(encoding="utf-8"))
    assert all(heading in sections for heading in SECTIONS.values())

    checks = {row[0]: row[1] for row in _table_rows(sections[SECTIONS["lookahead"]])}
    assert checks == {"fills at t+1 open": PASS, "perturbed future data": FAIL}

    trades = _table_rows(sections[SECTIONS["trades"]])
    assert len(trades) == len(result.trades)
    assert all(row[-1] == "rebalance" for row in trades)

    counts = {row[0]: int(row[2]) for row in _table_rows(sections[SECTIONS["refusals"]])}
    assert counts == EXPECTED_REFUSALS

    settings = dict(_table_rows(sections[SECTIONS["settings"]]))
    assert settings["cost.commission_rate"] == "0.00025" and settings["pools"] == '["A_SHARE", "QDII"]'
    fallback = write_markdown(tmp_path / "fallback.md", result, metrics, _context(settings={}))
    assert dict(_table_rows(_sections(fallback.read_text(encoding="utf-8"))[SECTIONS["settings"]])) == {
        "fill": "next_open", "commission_rate": "0.00025"}  # the result's own settings

    identities = _table_rows(sections[SECTIONS["identities"]])
    assert [row[1] for row in identities] == [PASS]
    kpis = {row[1].strip("`"): row[2] for row in _table_rows(sections[SECTIONS["metrics"]])}
    assert kpis["total_return"].endswith("%") and kpis["trade_count"] == str(len(result.trades))


def test_markdown_long_run_shows_head_and_tail(tmp_path: Path, result: BacktestResult, metrics: dict) -> None:
    many = result.trades.loc[result.trades.index.repeat(30)].reset_index(drop=True)
    many["datetime"] = pd.date_range("2024-01-02 09:30", periods=len(many), freq="h")
    long = BacktestResult(**{**result.__dict__, "trades": many})
    text = write_markdown(tmp_path / "long.md", long, metrics, _context()).read_text(encoding="utf-8")
    rows = _table_rows(_sections(text)[SECTIONS["trades"]])
    assert len(many) > 2 * TRADE_HEAD
    assert len(rows) == 2 * TRADE_HEAD + 1  # first and last TRADE_HEAD, one row marking the omission
    assert rows[0][0] == many["datetime"].iloc[0].strftime("%Y-%m-%d %H:%M")
    assert rows[-1][0] == many["datetime"].iloc[-1].strftime("%Y-%m-%d %H:%M")
