"""A :class:`~vnpy_rotation.monitor.view.MonitorView` as text cells and as a ``rich`` renderable.

Pure functions of the view (and the symbols' labels): the cells are what the tests check, the renderable
only adds layout and colour. Colours follow the A-share convention: red is up, green is down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..monitor.records import Alert, Indicators, Severity
from ..monitor.view import MonitorView

COLUMNS = ("symbol", "name", "last", "chg%", "→up%", "→dn%", "vwap", "量比", "1m%", "5m%", "flags")
RANK_COLUMN = "rank"  # shown only when the view carries strategy scores (keeps the table within 80 columns otherwise)
ALERT_COLUMNS = ("time", "severity", "rule", "symbol", "reason")
SEVERITY_STYLE = {Severity.INFO: "cyan", Severity.WARNING: "bold yellow", Severity.CRITICAL: "bold white on red"}
DASH = "—"


@dataclass(frozen=True)
class Label:
    """How a symbol is shown: its short name and the decimals of its tick (ETFs 3, stocks 2)."""

    name: str = ""
    decimals: int = 2


def _pct(value: float | None) -> str:
    return DASH if value is None or not math.isfinite(value) else f"{value * 100:+.2f}"


def _price(value: float, decimals: int) -> str:
    return DASH if not math.isfinite(value) or value <= 0 else f"{value:.{decimals}f}"


def stale_symbols(view: MonitorView) -> set[str]:
    """Symbols whose latest ``stale_quote`` alert is newer than their latest quote (the core decided they are
    stale; no quote has come since)."""
    quoted = {s: ind.time for s, ind in view.rows if ind is not None}
    stale: set[str] = set()
    for alert in view.alerts:
        if alert.rule == "stale_quote":
            if alert.vt_symbol in quoted and quoted[alert.vt_symbol] > alert.time:
                stale.discard(alert.vt_symbol)
            else:
                stale.add(alert.vt_symbol)
    return stale


def flags(ind: Indicators, stale: bool) -> str:
    """The row's flags: 封↑ / 封↓ sealed at limit-up / -down, 停 suspended, ≠limit the feed's limit prices
    disagree with ours, stale no quote for too long."""
    parts = [text for on, text in ((ind.sealed_up, "封↑"), (ind.sealed_down, "封↓"), (ind.suspended, "停"),
                                   (ind.limit_mismatch, "≠limit"), (stale, "stale")) if on]
    return " ".join(parts)


def row_cells(vt_symbol: str, ind: Indicators | None, label: Label = Label(), stale: bool = False) -> tuple[str, ...]:
    """One table row as text, in :data:`COLUMNS` order (percentages signed, two decimals)."""
    if ind is None:
        return (vt_symbol, label.name, DASH, DASH, DASH, DASH, DASH, DASH, DASH, DASH, "stale" if stale else "no quote")
    ratio = DASH if ind.volume_ratio is None else f"{ind.volume_ratio:.2f}"
    return (vt_symbol, label.name, _price(ind.last, label.decimals), _pct(ind.change), _pct(ind.to_limit_up),
            _pct(ind.to_limit_down), _price(ind.vwap, label.decimals), ratio, _pct(ind.return_1m),
            _pct(ind.return_5m), flags(ind, stale))


def table_cells(view: MonitorView, labels: Mapping[str, Label] | None = None) -> list[tuple[str, ...]]:
    """Every watchlist row as text, in the view's order; with strategy scores in the view, a last ``rank``
    column (:data:`RANK_COLUMN`: ``vqm 3/45``, blank for a symbol no strategy ranks)."""
    labels = labels or {}
    stale = stale_symbols(view)
    rows = [row_cells(s, ind, labels.get(s, Label()), s in stale) for s, ind in view.rows]
    if view.scores:
        rows = [cells + (view.rank_text(s),) for cells, (s, _) in zip(rows, view.rows)]
    return rows


def alert_cells(view: MonitorView, limit: int = 10) -> list[tuple[str, ...]]:
    """The latest ``limit`` alerts, newest first, in :data:`ALERT_COLUMNS` order."""
    return [_alert_cells(a) for a in reversed(view.alerts[-limit:] if limit > 0 else ())]


def _alert_cells(alert: Alert) -> tuple[str, ...]:
    return (alert.time.strftime("%H:%M:%S"), alert.severity.value, alert.rule, alert.vt_symbol, alert.reason)


def status_line(view: MonitorView, title: str = "") -> str:
    """``title  YYYY-MM-DD HH:MM:SS  connected|DISCONNECTED  N alerts  q: quit``."""
    state = "connected" if view.connected else "DISCONNECTED"
    parts = [title, view.at.strftime("%Y-%m-%d %H:%M:%S"), state, f"{len(view.alerts)} alerts", "q: quit"]
    return "  ".join(p for p in parts if p)


def _signed_style(value: float | None) -> str:
    if value is None or not math.isfinite(value) or value == 0:
        return ""
    return "red" if value > 0 else "green"


def render(view: MonitorView, labels: Mapping[str, Label] | None = None, *, title: str = "",
           alert_rows: int = 10) -> RenderableType:
    """The whole screen: status line, watchlist table, alert pane (newest first, coloured by severity)."""
    status = Text(status_line(view, title), style="bold" if view.connected else "bold white on red")
    # a light frame and one space between columns: the table fits an 80-column SSH terminal
    table = Table(title="watchlist", title_justify="left", box=None, padding=(0, 1, 0, 0), header_style="bold underline",
                  collapse_padding=True, pad_edge=False, show_edge=False)
    for k, name in enumerate(COLUMNS + ((RANK_COLUMN,) if view.scores else ())):
        table.add_column(name, justify="left" if k in (0, 1) or k >= len(COLUMNS) - 1 else "right", no_wrap=True,
                         max_width=8 if name == "name" else None)  # a short name is 4 characters, 8 cells
    rows = dict(view.rows)
    for cells in table_cells(view, labels):
        ind = rows[cells[0]]
        change = None if ind is None else ind.change
        styled = [Text(c) for c in cells]
        for k in (3, 8, 9):
            styled[k].stylize(_signed_style(change if k == 3 else (ind.return_1m if k == 8 else ind.return_5m)
                                            if ind is not None else None))
        if ind is not None and (ind.sealed_up or ind.sealed_down):
            styled[10].stylize("bold red" if ind.sealed_up else "bold green")
        elif cells[10]:
            styled[10].stylize("yellow")
        table.add_row(*styled)
    pane = Table(title="alerts (newest first)", title_justify="left", box=None, padding=(0, 1, 0, 0), header_style="bold underline",
                 collapse_padding=True, pad_edge=False, show_edge=False)
    for name in ALERT_COLUMNS:
        pane.add_column(name, no_wrap=name != "reason")
    for alert in list(reversed(view.alerts[-alert_rows:])) if alert_rows > 0 else []:
        pane.add_row(*_alert_cells(alert), style=SEVERITY_STYLE[alert.severity])
    if not view.alerts:
        pane.add_row("", "", "no alerts", "", "")
    return Group(status, table, pane)
