"""``run.py attribution``: the P&L attribution of a backtest, replay or live run folder.

A backtest folder carries its attribution tables (written with every backtest): they are re-read and cut
to the window. A replay or live folder (``run.py trade --out``) is attributed from its own records
(``daily_summary.csv`` positions and equity, ``trades.csv``, the journal's order legs, the recorded run
parameters) and the bars in the home's database; its first session is the base the rest is measured from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..attribution import AttributionReport, attribute
from ..attribution.brinson import SegmentAttribution
from ..attribution.report import assemble
from ..backtest.attribution_inputs import book_input, strategy_benchmark
from ..backtest.config import BacktestConfig
from ..backtest.loader import market_for
from ..config import validate_section
from ..data.store import BarStore
from ..errors import InputRejected, Problem
from ..research.risk_report import _read_csv

Kind = Literal["backtest", "trade"]
BACKTEST_TABLES = ("attribution.csv", "markouts.csv")


def detect(folder: Path) -> Kind:
    """Which kind of run ``folder`` holds; a clear error when neither."""
    if (folder / "metrics.json").is_file() and (folder / "equity.csv").is_file():
        missing = [name for name in BACKTEST_TABLES if not (folder / name).is_file()]
        if missing:
            raise InputRejected(Problem(str(folder / missing[0]), None, "missing: this backtest folder predates "
                                        "the attribution tables; run the backtest again"))
        return "backtest"
    if (folder / "daily_summary.csv").is_file() and (folder / "state" / "run_parameters.json").is_file():
        return "trade"
    raise InputRejected(Problem(str(folder), None, "not a run folder: give the --out folder of `run.py backtest` "
                                "(metrics.json, equity.csv) or of `run.py trade` (daily_summary.csv, "
                                "state/run_parameters.json)"))


def _table(path: Path) -> pd.DataFrame:
    """One of the attribution tables a backtest wrote (machine-written: NaN is ``nan``)."""
    try:
        return pd.read_csv(path, parse_dates=["date"])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputRejected(Problem(str(path), None, f"unreadable ({exc}); run the backtest again")) from None


def _backtest(folder: Path, start: date | None, end: date | None) -> AttributionReport:
    daily = _table(folder / "attribution.csv")
    marks = _table(folder / "markouts.csv")
    segments = None
    path = folder / "attribution_segments_daily.csv"
    if path.is_file():
        table = _table(path)
        segments = SegmentAttribution.from_daily(table) if len(table) else None
    strategy = str(daily["strategy"].iloc[0]) if len(daily) else folder.name
    try:  # the run's data warnings travel with its attribution
        warnings = json.loads((folder / "metrics.json").read_text(encoding="utf-8")).get("data_warnings") or []
    except (OSError, ValueError):
        warnings = []
    report = assemble(strategy, daily, segments, marks, f"backtest folder {folder}", start, end)
    return replace(report, warnings=tuple(str(w) for w in warnings))


def _positions(summary: pd.DataFrame, path: Path, symbols: tuple[str, ...]) -> np.ndarray:
    where = {s: j for j, s in enumerate(symbols)}
    out = np.zeros((len(summary), len(symbols)))
    for row, text in enumerate(summary["positions"].fillna("{}")):
        try:
            held = json.loads(text)
        except ValueError:
            raise InputRejected(Problem(str(path), row + 2, f"positions: not a JSON object ({text!r})")) from None
        for symbol, volume in held.items():
            if symbol not in where:
                raise InputRejected(Problem(str(path), row + 2, f"positions: {symbol} is not in the strategy's "
                                            "universe"))
            out[row, where[symbol]] = float(volume)
    return out


def _unfilled_legs(folder: Path, days: pd.DatetimeIndex) -> pd.DataFrame:
    """The orders the journal's legs left short: wanted − filled, with the first cut as the reason."""
    rows = []
    for day in days:
        path = folder / "journal" / f"{day.date()}.json"
        if not path.is_file():
            continue
        try:
            progress = json.loads(path.read_text(encoding="utf-8")).get("progress") or {}
        except ValueError:
            raise InputRejected(Problem(str(path), None, "not JSON")) from None
        for leg in progress.get("legs", []):
            rows.append({"date": day, "vt_symbol": leg["symbol"], "direction": "buy" if leg["buy"] else "sell",
                         "requested": float(leg["wanted"]), "filled": float(leg["filled"]),
                         "reason": ";".join(leg.get("cuts") or [])})
    return pd.DataFrame(rows, columns=["date", "vt_symbol", "direction", "requested", "filled", "reason"])


def _trade(folder: Path, start: date | None, end: date | None,
           industries: Mapping[str, str] | None) -> AttributionReport:
    from ..strategies import create_strategy

    recorded = folder / "state" / "run_parameters.json"
    try:
        params = json.loads(recorded.read_text(encoding="utf-8"))["parameters"]
        name, settings, backtest = params["strategy"], params.get("settings") or {}, params.get("backtest") or {}
    except (ValueError, KeyError, TypeError):
        raise InputRejected(Problem(str(recorded), None, "unreadable run parameters (strategy, settings, "
                                    "backtest)")) from None
    strategy = create_strategy(name, settings, f"{recorded}: settings")
    config = validate_section(BacktestConfig, backtest, f"{recorded}: backtest")
    path = folder / "daily_summary.csv"
    summary = _read_csv(path, "date").sort_values("date").reset_index(drop=True)
    if len(summary) < 2:
        raise InputRejected(Problem(str(path), None, f"{len(summary)} sessions: attribution needs at least two"))
    days = pd.DatetimeIndex(summary["date"])
    market = market_for(strategy, days[0].date(), days[-1].date(), BarStore())
    md = market.window(days[0].date(), days[-1].date())
    unknown = days[~days.isin(md.days)]
    if len(unknown) or len(md.days) != len(days):
        first = unknown[0].date() if len(unknown) else md.days[~md.days.isin(days)][0].date()
        raise InputRejected(Problem(str(path), None, f"session {first} is not in both the file and the database's "
                                    "trading days: import the bars the run traded on"))
    holdings = _positions(summary, path, tuple(md.symbols))
    equity = summary["equity"].to_numpy(float)
    trades = _read_csv(folder / "trades.csv", "datetime")
    later = trades["datetime"] > days[0]  # the first session is the base
    trades = trades[later]
    legs = _unfilled_legs(folder, days[1:])
    # Dividends the broker credited: the shares held at the record date × the data's cash per share (fen).
    dividend_cash = np.round(holdings[:-1] * np.round(md.dividend[1:], 4), 2)
    rest = md.window(days[1].date(), None)
    actions = [(rest.days[i], rest.symbols[j], "dividend", float(dividend_cash[i, j]))
               for i, j in zip(*np.nonzero(dividend_cash))]
    cash_flows = pd.DataFrame(actions, columns=["date", "vt_symbol", "kind", "cash"])
    data = book_input(name, rest, config, holdings[1:], equity[1:], float(equity[0]), trades, legs, cash_flows,
                      strategy_benchmark(strategy, rest, industries), holdings[0], md.last_close[0])
    return attribute(data, start, end, f"{params.get('gateway', 'trade')} run folder {folder}")


def attribute_folder(folder: Path, start: date | None = None, end: date | None = None,
                     industries: Mapping[str, str] | None = None) -> AttributionReport:
    """The attribution of the run in ``folder`` (a backtest, replay or live ``--out``) over ``start`` … ``end``."""
    folder = Path(folder)
    if start and end and start > end:
        raise InputRejected(Problem("--start/--end", None, f"start {start} is after end {end}"))
    kind = detect(folder)
    try:
        if kind == "backtest":
            if industries:
                raise InputRejected(Problem("--industry", None, "a backtest folder's segments are fixed when it "
                                            "is written: give --industry to a replay or live folder"))
            return _backtest(folder, start, end)
        return _trade(folder, start, end, industries)
    except ValueError as exc:  # a window outside the run
        raise InputRejected(Problem("--start/--end", None, str(exc))) from None
