"""The weekly replay check: one week of a live run against a replay of the same sessions, and a stable report.

``run.py replay-week --live DIR`` replays the week's sessions through the live stack (the replay gateway: the
command does that, this module reads and compares folders) with the live run's recorded strategy, settings and
backtest config (``DIR/state/run_parameters.json``), then compares per day, symbol and side:

- orders: the requested volume (the sum of the day's orders for that symbol and side; an order only one side
  sent shows as volume against 0);
- fills: volume, and the volume-weighted price (difference in bp of the replay's);
- slippage: each side's volume-weighted fill price against the session's reference price (the open, or the
  VWAP = turnover / volume, as the run's ``backtest.fill_price`` says), in bp, worse-for-the-trader positive;
- the starting state: positions and cash at the close before the week (the replay rebuilds them by replaying
  from the run's first session: when they differ, live diverged earlier and the week carries it).

``replay_week_diff.csv`` lists exactly the differences beyond the thresholds (columns :data:`DIFF_COLUMNS`,
a header only when there are none); ``replay_week.md`` has the sections of :data:`SECTIONS`, in that order,
each present (``none``) even when empty.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from ..backtest.config import BacktestConfig
from ..config import Frozen, read_yaml, validate_section
from ..data.panels import load_panels
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..live.state_file import read_json
from ..market.calendar import default_calendar

PARAMETERS = Path("state") / "run_parameters.json"
DIFF_COLUMNS = ["date", "vt_symbol", "side", "kind", "field", "live", "replay", "difference", "threshold"]
SECTIONS = ("Summary", "Starting state", "Orders", "Fills", "Slippage", "Sessions")
KEY = ["date", "vt_symbol", "side"]
WEEK = re.compile(r"(\d{4})-W(\d{2})")


class ReplayWeekThresholds(Frozen):
    """The ``replay_week:`` section of ``--config`` (every field optional)."""

    order_volume: float = Field(default=0.0, ge=0)  # shares per day, symbol and side
    fill_volume: float = Field(default=0.0, ge=0)
    fill_price_bps: float = Field(default=10.0, ge=0)  # live VWAP vs the replay's, in bp of the replay's
    slippage_bps: float = Field(default=10.0, ge=0)  # live slippage minus the replay's, in bp
    position_volume: float = Field(default=0.0, ge=0)  # shares per symbol at the start of the week
    cash: float = Field(default=1.0, ge=0)  # CNY at the start of the week


def read_thresholds(path: Path | None) -> ReplayWeekThresholds:
    if path is None:
        return ReplayWeekThresholds()
    return validate_section(ReplayWeekThresholds, read_yaml(path).get("replay_week"), f"{path}: replay_week")


@dataclass(frozen=True)
class RunFolder:
    """A ``run.py trade`` output folder: its recorded parameters and what it did, day by day."""

    folder: Path
    parameters: dict[str, Any]
    orders: pd.DataFrame
    trades: pd.DataFrame
    summary: pd.DataFrame

    @property
    def days(self) -> list[date]:
        return [date.fromisoformat(d) for d in self.summary["date"]]

    def config(self) -> BacktestConfig:
        return validate_section(BacktestConfig, self.parameters.get("backtest"), f"{self.folder / PARAMETERS}: backtest")


def read_run(folder: Path) -> RunFolder:
    """The trade run in ``folder``; refused (naming the file) when it is not one or ran a canary."""
    path = folder / PARAMETERS
    stored = read_json(path)
    if not isinstance(stored, dict) or not isinstance(stored.get("parameters"), dict):
        raise InputRejected(Problem(str(path), None, "not found or unreadable: --live takes the --out folder of "
                                    "run.py trade"))
    parameters = stored["parameters"]
    if parameters.get("canary"):
        raise InputRejected(Problem(str(path), None, "canary: a canary run trades two versions in one account; "
                                    "replay-week replays single-strategy runs"))
    tables = {}
    for name in ("orders.csv", "trades.csv", "daily_summary.csv"):
        if not (folder / name).is_file():
            raise InputRejected(Problem(str(folder / name), None, "missing: the run closed no session"))
        tables[name] = pd.read_csv(folder / name, dtype={"date": str, "datetime": str})
    if not len(tables["daily_summary.csv"]):
        raise InputRejected(Problem(str(folder / "daily_summary.csv"), None, "no session closed yet"))
    return RunFolder(folder, parameters, tables["orders.csv"], tables["trades.csv"], tables["daily_summary.csv"])


def week_span(week: str | None, sessions: list[date]) -> tuple[str, date, date]:
    """(label ``YYYY-Www``, Monday, Sunday) of ``week`` (an ISO week or a date inside one; default: the last
    complete week of ``sessions``: the last one whose trading days all closed)."""
    if week:
        match = WEEK.fullmatch(week.strip())
        try:
            monday = (date.fromisocalendar(int(match[1]), int(match[2]), 1) if match else
                      date.fromisoformat(week.strip()) - timedelta(days=date.fromisoformat(week.strip()).weekday()))
        except ValueError:
            raise InputRejected(Problem("--week", None, f"{week!r} is neither an ISO week (2024-W37) nor a date "
                                        "(YYYY-MM-DD)")) from None
    else:
        last = sessions[-1]
        monday = last - timedelta(days=last.weekday())
        if len(default_calendar().between(last + timedelta(days=1), monday + timedelta(days=6))):
            monday -= timedelta(days=7)  # the last week is still open
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}", monday, monday + timedelta(days=6)


def week_sessions(run: RunFolder, monday: date, sunday: date, label: str) -> list[date]:
    days = [d for d in run.days if monday <= d <= sunday]
    if not days:
        raise InputRejected(Problem("--week", None, f"{label} has no session of the live run "
                                    f"({run.days[0]} … {run.days[-1]})"))
    return days


# -- comparison ----------------------------------------------------------------------------------------------------
def _summed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` summed per (date, symbol, side); an empty frame keeps that index (a week without orders)."""
    if not len(frame):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns},
                            index=pd.MultiIndex.from_tuples([], names=KEY))
    return frame.groupby(KEY)[columns].sum().astype(float)


def _orders(run: RunFolder, days: set[str]) -> pd.DataFrame:
    o = run.orders[run.orders["date"].isin(days)].rename(columns={"direction": "side", "volume": "requested"})
    return _summed(o, ["requested"])


def _fills(run: RunFolder, days: set[str]) -> pd.DataFrame:
    t = run.trades.assign(date=run.trades["datetime"].astype(str).str[:10]).rename(columns={"direction": "side"})
    t = t[t["date"].isin(days)]
    g = _summed(t.assign(value=t["price"].astype(float) * t["volume"].astype(float)), ["volume", "value"])
    return g.assign(price=g["value"] / g["volume"])[["volume", "price"]]


def reference_prices(keys: pd.MultiIndex, fill_price: str, store: BarStore | None = None) -> pd.Series:
    """The session's open (or VWAP = turnover / volume) for each (date, symbol, side) of ``keys``."""
    if not len(keys):
        return pd.Series(index=keys, dtype=float)
    symbols = sorted(set(keys.get_level_values("vt_symbol")))
    days = sorted(set(keys.get_level_values("date")))
    panels = load_panels(symbols, date.fromisoformat(days[0]), date.fromisoformat(days[-1]), store=store)
    with np.errstate(divide="ignore", invalid="ignore"):
        prices = panels.open if fill_price == "open" else panels.turnover / panels.volume
    stacked = prices.stack()
    stacked.index = stacked.index.set_names(["date", "vt_symbol"])
    stacked = stacked.rename(lambda d: pd.Timestamp(d).strftime("%Y-%m-%d"), level="date")
    return pd.Series([stacked.get((d, s), math.nan) for d, s, _ in keys], index=keys, dtype=float)


def slippage_bps(price: pd.Series, reference: pd.Series) -> pd.Series:
    """Fill price against the reference in bp: positive when worse for the trader (paid more, received less)."""
    side = np.where(price.index.get_level_values("side") == "buy", 1.0, -1.0)
    return (price / reference - 1.0) * 1e4 * side


def _rows(frame: pd.DataFrame, kind: str, field: str, live: pd.Series, replay: pd.Series, diff: pd.Series,
          threshold: float) -> list[dict[str, Any]]:
    bad = ~(diff.abs() <= threshold)
    return [{"date": d, "vt_symbol": s, "side": side, "kind": kind, "field": field, "live": _cell(live[(d, s, side)]),
             "replay": _cell(replay[(d, s, side)]), "difference": _cell(diff[(d, s, side)]), "threshold": threshold}
            for d, s, side in frame.index[bad.to_numpy()]]


def _cell(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def _positions(run: RunFolder, day: date | None) -> tuple[dict[str, float], float]:
    """Positions (shares) and cash at the close of ``day`` (None: before the first session: nothing held)."""
    row = run.summary[run.summary["date"] == (day.isoformat() if day else "")]
    if not len(row):
        return {}, math.nan
    positions = json.loads(row["positions"].iloc[0] or "{}")
    return {s: float(v) for s, v in positions.items() if float(v)}, float(row["cash"].iloc[0])


@dataclass(frozen=True)
class WeekComparison:
    label: str
    sessions: list[date]
    diff: pd.DataFrame  # DIFF_COLUMNS
    per_day: pd.DataFrame  # date, live_orders, replay_orders, live_fills, replay_fills, live_equity, replay_equity
    slippage: pd.DataFrame  # date, vt_symbol, side, live_bp, replay_bp (every compared fill, within or beyond)
    thresholds: ReplayWeekThresholds

    @property
    def within(self) -> bool:
        return not len(self.diff)


def compare_week(live: RunFolder, replay: RunFolder, label: str, sessions: list[date],
                 thresholds: ReplayWeekThresholds, store: BarStore | None = None) -> WeekComparison:
    days = {d.isoformat() for d in sessions}
    t = thresholds
    rows: list[dict[str, Any]] = []
    before = default_calendar().previous(sessions[0])
    start = before if before is not None and before.isoformat() >= live.summary["date"].iloc[0] else None
    (lp, lc), (rp, rc) = _positions(live, start), _positions(replay, start)
    for symbol in sorted(set(lp) | set(rp)):
        a, b = lp.get(symbol, 0.0), rp.get(symbol, 0.0)
        if abs(a - b) > t.position_volume:
            rows.append({"date": str(start), "vt_symbol": symbol, "side": "", "kind": "start", "field": "volume",
                         "live": a, "replay": b, "difference": a - b, "threshold": t.position_volume})
    if start is not None and not abs(lc - rc) <= t.cash:
        rows.append({"date": str(start), "vt_symbol": "", "side": "", "kind": "start", "field": "cash", "live": lc,
                     "replay": rc, "difference": round(lc - rc, 2), "threshold": t.cash})
    lo, ro = _orders(live, days), _orders(replay, days)
    orders = lo.join(ro, how="outer", lsuffix="_live", rsuffix="_replay").fillna(0.0).sort_index()
    rows += _rows(orders, "order", "requested_volume", orders["requested_live"], orders["requested_replay"],
                  orders["requested_live"] - orders["requested_replay"], t.order_volume)
    lf, rf = _fills(live, days), _fills(replay, days)
    fills = lf.join(rf, how="outer", lsuffix="_live", rsuffix="_replay").sort_index()
    volume_live, volume_replay = fills["volume_live"].fillna(0.0), fills["volume_replay"].fillna(0.0)
    rows += _rows(fills, "fill", "volume", volume_live, volume_replay, volume_live - volume_replay, t.fill_volume)
    both = fills.dropna(subset=["price_live", "price_replay"])
    price_bp = (both["price_live"] / both["price_replay"] - 1.0) * 1e4
    rows += _rows(both, "fill", "price", both["price_live"], both["price_replay"], price_bp, t.fill_price_bps)
    reference = reference_prices(both.index, live.config().fill_price.value, store)
    live_bp, replay_bp = slippage_bps(both["price_live"], reference), slippage_bps(both["price_replay"], reference)
    rows += _rows(both, "slippage", "bp", live_bp, replay_bp, live_bp - replay_bp, t.slippage_bps)
    diff = pd.DataFrame(rows, columns=DIFF_COLUMNS)
    order = {k: i for i, k in enumerate(("start", "order", "fill", "slippage"))}
    diff = diff.sort_values(["date", "kind", "vt_symbol", "side", "field"], key=lambda c: c.map(order) if
                            c.name == "kind" else c, kind="stable").reset_index(drop=True)
    per_day = pd.DataFrame([{
        "date": d, "live_orders": int((live.orders["date"] == d).sum()), "replay_orders": int((replay.orders["date"] == d).sum()),
        "live_fills": int((live.trades["datetime"].astype(str).str[:10] == d).sum()),
        "replay_fills": int((replay.trades["datetime"].astype(str).str[:10] == d).sum()),
        "live_equity": _equity(live, d), "replay_equity": _equity(replay, d)} for d in sorted(days)])
    slippage = pd.DataFrame({"live_bp": live_bp.round(2), "replay_bp": replay_bp.round(2)}).reset_index() \
        if len(both) else pd.DataFrame(columns=[*KEY, "live_bp", "replay_bp"])
    return WeekComparison(label, sessions, diff, per_day, slippage, thresholds)


def _equity(run: RunFolder, day: str) -> float:
    row = run.summary[run.summary["date"] == day]
    return round(float(row["equity"].iloc[0]), 2) if len(row) else math.nan


# -- the report ----------------------------------------------------------------------------------------------------
def _table(frame: pd.DataFrame) -> list[str]:
    if not len(frame):
        return ["none"]
    head = [str(c) for c in frame.columns]
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join("" if (isinstance(v, float) and math.isnan(v)) else str(v) for v in row) + " |"
               for row in frame.itertuples(index=False)])


def write_report(result: WeekComparison, live: Path, replay: Path, out: Path) -> tuple[Path, Path]:
    """``out/replay_week.md`` (sections :data:`SECTIONS`, always all of them) and ``out/replay_week_diff.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "replay_week_diff.csv"
    result.diff.to_csv(csv, index=False)
    t = result.thresholds
    d = result.diff
    counts = {k: int((d["kind"] == k).sum()) for k in ("start", "order", "fill", "slippage")}
    sections = {
        "Summary": [f"Week {result.label}: {len(result.sessions)} sessions ({result.sessions[0]} … {result.sessions[-1]}); "
                    f"live run {live}; replay {replay}.", "",
                    f"Result: **{'WITHIN THRESHOLDS' if result.within else 'DIFFERENCES'}** — {len(d)} differences "
                    f"(starting state {counts['start']}, orders {counts['order']}, fills {counts['fill']}, "
                    f"slippage {counts['slippage']}).", "",
                    f"Thresholds: order volume {t.order_volume:g}, fill volume {t.fill_volume:g} shares; fill price "
                    f"{t.fill_price_bps:g} bp; slippage {t.slippage_bps:g} bp; starting positions "
                    f"{t.position_volume:g} shares, cash {t.cash:g} CNY."],
        "Starting state": _table(d[d["kind"] == "start"]),
        "Orders": _table(d[d["kind"] == "order"]),
        "Fills": _table(d[d["kind"] == "fill"]),
        "Slippage": ["Every compared fill (bp against the session's reference price; positive: worse):", "",
                     *_table(result.slippage), "", "Beyond the threshold:", "", *_table(d[d["kind"] == "slippage"])],
        "Sessions": _table(result.per_day),
    }
    lines = [f"# Weekly replay {result.label}"]
    for name in SECTIONS:
        lines += ["", f"## {name}", "", *sections[name]]
    md = out / "replay_week.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md, csv
