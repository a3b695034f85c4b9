"""The daily KPIs: one definition of each, applied alike to a trade run and to its baseline backtest.

Every KPI is a function of a :class:`~vnpy_rotation.ops.kpi_run.RunData` cut at the snapshot's day (close
equity and market value by session, fills, orders); the data dictionary is ``docs/kpi.md``. Units: CNY,
``fraction`` (0.01 = 1 %), ``ratio``, ``bp`` (1e-4), ``count``, ``index`` (a rung or a stage's position).

:func:`snapshot_run` computes them for one run folder and day, per strategy and for the account, each with its
baseline (the same function on the run's backtest over the same sessions), threshold and status.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..backtest.metrics import COST_COLUMNS, daily_returns, rolling_sharpe
from ..backtest.risk_section import VERDICT_LEVEL, VERDICT_METHOD
from ..errors import InputRejected, Problem
from ..risk.ladder import RUNGS
from ..risk.var import var_es_series
from .kpi_config import KpiThresholds
from .kpi_run import ACCOUNT, RunData, baseline, canary_stage, finite, read_run, risk_scopes, run_parameters

BP = 1e4


# -- the definitions ---------------------------------------------------------------------------------------
def pnl(data: RunData) -> float:
    """CNY: the last session's close equity less the previous close (the capital on the first session)."""
    if data.equity.empty:
        return math.nan
    before = float(data.equity.iloc[-2]) if len(data.equity) > 1 else data.capital
    return float(data.equity.iloc[-1]) - before


def cum_return(data: RunData) -> float:
    """fraction: equity / capital − 1 since the run's start."""
    return float(data.equity.iloc[-1]) / data.capital - 1 if len(data.equity) else math.nan


def backtest_metric(name: str) -> Callable[[RunData], float]:
    """A metric as the backtest reports it (:func:`~vnpy_rotation.backtest.metrics.compute_metrics` on the
    equity since the run's start): annual_return, sharpe, max_drawdown, monthly_win_rate."""
    def kpi(data: RunData) -> float:
        if data.equity.empty:
            return math.nan
        return finite(data.metrics.get(name))
    kpi.__name__ = name
    return kpi


def sharpe_over(window: int) -> Callable[[RunData], float]:
    """ratio: mean / standard deviation of the last ``window`` daily returns × √252 (no risk-free rate)."""
    def kpi(data: RunData) -> float:
        if len(data.equity) <= window:
            return math.nan
        return finite(rolling_sharpe(data.equity, window).iloc[-1])
    return kpi


def var_breaches(data: RunData, window: int, lookback: int) -> float:
    """count: sessions among the last ``lookback`` with a forecast whose loss exceeded the previous close's
    one-day VaR (99 % historical simulation over ``window`` returns, :mod:`vnpy_rotation.risk.var`)."""
    r = daily_returns(data.equity)
    if len(r) <= window:
        return math.nan
    forecast = var_es_series(r, VERDICT_METHOD, VERDICT_LEVEL, window)["var"]
    known = forecast.notna() & r.notna()
    hits = (-r[known] > forecast[known]).to_numpy()
    return float(hits[-lookback:].sum()) if len(hits) else math.nan


def fill_calibration_bp(data: RunData) -> float:
    """bp: the last session's fills against the matcher's model price, value-weighted, positive = worse.

    Per (symbol, side): the volume-weighted fill price against the traded-volume-weighted expected price of the
    orders (``expected_price``: the open or VWAP plus the modelled slippage the order was sized with);
    ``(fill / model − 1) × 10⁴`` for a buy, the negative for a sell. NaN without fills or model prices.
    """
    day = data.equity.index[-1] if len(data.equity) else None
    if day is None or not len(data.orders):
        return math.nan
    trades = data.trades[data.trades["date"] == day]
    orders = data.orders[(data.orders["date"] == day) & (data.orders["traded"] > 0)]
    if trades.empty or orders.empty:
        return math.nan
    # per (symbol, side): sums by integer key with bincount (a pandas groupby costs more than the whole KPI)
    keys, inverse = np.unique(np.concatenate([(trades["vt_symbol"] + "|" + trades["direction"]).to_numpy(str),
                                              (orders["vt_symbol"] + "|" + orders["direction"]).to_numpy(str)]),
                              return_inverse=True)
    t_key, o_key, n = inverse[:len(trades)], inverse[len(trades):], len(keys)
    pv = np.bincount(t_key, trades["price"].to_numpy(float) * trades["volume"].to_numpy(float), n)
    volume = np.bincount(t_key, trades["volume"].to_numpy(float), n)
    ev = np.bincount(o_key, orders["expected_price"].to_numpy(float) * orders["traded"].to_numpy(float), n)
    traded = np.bincount(o_key, orders["traded"].to_numpy(float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        fill, model = pv / volume, ev / traded
    both = np.isfinite(fill) & np.isfinite(model) & (model > 0)
    if not both.any():
        return math.nan
    sign = np.where(np.char.endswith(keys.astype(str), "|buy"), 1.0, -1.0)
    error = sign * (fill / model - 1) * BP
    return float(np.average(error[both], weights=pv[both]))


def turnover(data: RunData) -> float:
    """fraction: the last session's traded value / 2 / its close equity (one-sided, as the backtest's)."""
    if data.equity.empty:
        return math.nan
    day = data.equity.index[-1]
    return float(data.trades.loc[data.trades["date"] == day, "value"].sum()) / 2 / float(data.equity.iloc[-1])


def cost(kind: str) -> Callable[[RunData], float]:
    """CNY: the last session's fees of one kind (commission, stamp_duty, transfer_fee, slippage)."""
    def kpi(data: RunData) -> float:
        if data.equity.empty:
            return math.nan
        return float(data.trades.loc[data.trades["date"] == data.equity.index[-1], kind].sum())
    return kpi


def exposure(data: RunData) -> float:
    """fraction: the last close's gross market value / equity."""
    return float(data.market_value.iloc[-1]) / float(data.equity.iloc[-1]) if len(data.equity) else math.nan


@dataclass(frozen=True)
class Kpi:
    name: str
    unit: str
    scopes: tuple[str, ...]  # "strategy", "account"


STRATEGY, BOTH = ("strategy",), ("strategy", "account")
COSTS = tuple(f"cost_{kind}" for kind in COST_COLUMNS)
ROLLING_SHARPE = "sharpe_"  # + the window: sharpe_20, sharpe_60 (KpiThresholds.sharpe_windows)


def kpis(sharpe_windows: tuple[int, ...] = (20, 60)) -> tuple[Kpi, ...]:
    """Every KPI in the snapshot's order."""
    return (
        Kpi("pnl", "CNY", BOTH), Kpi("cum_return", "fraction", BOTH), Kpi("annual_return", "fraction", STRATEGY),
        Kpi("sharpe", "ratio", STRATEGY), *(Kpi(f"{ROLLING_SHARPE}{w}", "ratio", STRATEGY) for w in sharpe_windows),
        Kpi("max_drawdown", "fraction", BOTH), Kpi("monthly_win_rate", "fraction", STRATEGY),
        Kpi("tracking_gap", "fraction", STRATEGY), Kpi("var_breaches", "count", STRATEGY),
        Kpi("fill_calibration_bp", "bp", STRATEGY), Kpi("turnover", "fraction", STRATEGY),
        *(Kpi(name, "CNY", BOTH) for name in COSTS), Kpi("exposure", "fraction", BOTH),
        Kpi("risk_rung", "index", BOTH), Kpi("risk_flags", "count", BOTH), Kpi("canary_stage", "index", STRATEGY),
    )


KPIS = kpis()
KPI_NAMES: tuple[str, ...] = tuple(k.name for k in KPIS)


def known_kpi(name: str) -> bool:
    """A KPI name the snapshot can hold (any rolling-Sharpe window)."""
    return name in KPI_NAMES or (name.startswith(ROLLING_SHARPE) and name[len(ROLLING_SHARPE):].isdigit())


def measures(thresholds: KpiThresholds) -> dict[str, Callable[[RunData], float]]:
    """The KPIs computed from a book's history (the others come from the risk and canary state)."""
    out: dict[str, Callable[[RunData], float]] = {
        "pnl": pnl, "cum_return": cum_return, "fill_calibration_bp": fill_calibration_bp, "turnover": turnover,
        "exposure": exposure,
        **{name: backtest_metric(name) for name in ("annual_return", "sharpe", "max_drawdown", "monthly_win_rate")},
        **{f"cost_{kind}": cost(kind) for kind in COST_COLUMNS},
        "var_breaches": lambda d: var_breaches(d, thresholds.var_window, thresholds.var_lookback),
    }
    for window in thresholds.sharpe_windows:
        out[f"sharpe_{window}"] = sharpe_over(window)
    return out


# -- the snapshot ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KpiRow:
    date: date
    scope: str  # a strategy's name or "account"
    kpi: str
    value: float
    baseline: float  # NaN: none
    threshold: str  # e.g. "< 0.50"; "" when none
    status: str  # "ok" | "breach" | "n/a"
    unit: str
    note: str = ""  # e.g. the rung's or the stage's name

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = self.date.isoformat()
        for key in ("value", "baseline"):
            out[key] = None if not math.isfinite(out[key]) else out[key]
        return out


@dataclass(frozen=True)
class KpiSnapshot:
    run: Path
    day: date
    strategy: str
    rows: tuple[KpiRow, ...]
    warnings: tuple[str, ...] = ()  # e.g. why the baseline is missing

    @property
    def breaches(self) -> tuple[KpiRow, ...]:
        return tuple(r for r in self.rows if r.status == "breach")

    def to_json(self) -> dict[str, Any]:
        return {"run": str(self.run), "date": self.day.isoformat(), "strategy": self.strategy,
                "warnings": list(self.warnings), "rows": [r.to_json() for r in self.rows]}

    def markdown(self) -> str:
        """The one-page snapshot: a table per scope, then the breaches and warnings."""
        lines = [f"# KPI snapshot {self.day.isoformat()}", "",
                 f"Run `{self.run}`, strategy `{self.strategy}`; baseline: the strategy's backtest over the same "
                 "sessions.", ""]
        for scope in dict.fromkeys(r.scope for r in self.rows):
            lines += [f"## {scope}", "", "| KPI | value | baseline | threshold | status |", "|---|---:|---:|---|---|"]
            for r in self.rows:
                if r.scope == scope:
                    value = _format(r.value, r.unit) + (f" ({r.note})" if r.note else "")
                    lines.append(f"| {r.kpi} | {value} | {_format(r.baseline, r.unit)} | {_cell(r.threshold) or '–'} | "
                                 f"{r.status} |")
            lines.append("")
        breaches = self.breaches
        lines.append(f"**Breaches: {len(breaches)}**" + ("" if breaches else " (all thresholds met)"))
        lines += [f"- {r.scope} {r.kpi} = {_format(r.value, r.unit)} ({r.threshold})" for r in breaches]
        lines += ["", *(f"warning: {w}" for w in self.warnings)] if self.warnings else []
        return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    """``text`` inside a markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _format(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "–"
    if unit == "CNY":
        return f"{value:,.2f}"
    if unit == "fraction":
        return f"{value * 100:.2f} %"
    if unit == "bp":
        return f"{value:.1f} bp"
    if unit in ("count", "index"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def snapshot_run(run: Path, day: date | None = None, thresholds: KpiThresholds | None = None) -> KpiSnapshot:
    """The KPIs of the trade run in ``run`` at the close of ``day`` (default: its last session)."""
    run = Path(run)
    thresholds = thresholds or KpiThresholds()
    parameters = run_parameters(run)
    strategy = str(parameters["strategy"])
    data = read_run(run, float(parameters["backtest"]["capital"]))
    if data.equity.empty:
        raise InputRejected(Problem(str(run / "daily_summary.csv"), None, "no session closed yet"))
    day = day or data.equity.index[-1].date()
    if pd.Timestamp(day) not in data.equity.index:
        raise InputRejected(Problem("--date", None, f"{day} is not a session of {run / 'daily_summary.csv'} "
                                    f"({data.equity.index[0].date()} … {data.equity.index[-1].date()})"))
    data = data.until(day)
    warnings: list[str] = []
    try:
        base: RunData | None = baseline(run, parameters, day)
        assert base is not None
        base = base.until(day) if pd.Timestamp(day) in base.equity.index else None
        if base is None:
            warnings.append(f"the baseline backtest has no session {day}")
    except Exception as exc:  # the snapshot stands without its baseline
        base = None
        warnings.append(f"no baseline backtest: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    values, baselines = _compute(data, base, thresholds)
    values["tracking_gap"] = values["cum_return"] - baselines.get("cum_return", math.nan)
    risk = risk_scopes(run, day)
    canary = canary_stage(run, strategy, day)
    rows: list[KpiRow] = []
    for scope, kind in ((strategy, "strategy"), (ACCOUNT, "account")):
        notes: dict[str, str] = {}
        state = risk.get(scope)
        scoped = dict(values)
        # the strategy's rung as its own close recorded it (daily_summary.csv); the account's from the risk state
        rung = data.risk_rung.iloc[-1] if kind == "strategy" and len(data.risk_rung) else None
        rung = rung if isinstance(rung, str) and rung in RUNGS else state.rung if state is not None else None
        if rung is not None:
            scoped["risk_rung"], notes["risk_rung"] = float(RUNGS.index(rung)), rung
        if state is not None:
            scoped["risk_flags"], notes["risk_flags"] = float(len(state.flags)), ", ".join(state.flags)
        if canary is not None:
            scoped["canary_stage"] = float(canary.index)
            notes["canary_stage"] = f"{canary.stage}, {canary.status}, candidate {canary.candidate}"
        for k in kpis(thresholds.sharpe_windows):
            if kind not in k.scopes:
                continue
            value = scoped.get(k.name, math.nan)
            rule = thresholds.threshold(k.name)
            rows.append(KpiRow(day, scope, k.name, value, baselines.get(k.name, math.nan),
                               rule.text() if rule else "", thresholds.status(k.name, value), k.unit,
                               notes.get(k.name, "")))
    return KpiSnapshot(run, day, strategy, tuple(rows), tuple(warnings))


def _compute(data: RunData, base: RunData | None, thresholds: KpiThresholds) -> tuple[dict[str, float],
                                                                                       dict[str, float]]:
    functions = measures(thresholds)
    values = {name: f(data) for name, f in functions.items()}
    baselines = {name: f(base) for name, f in functions.items() if name != "fill_calibration_bp"} if base else {}
    return values, baselines


def write_snapshot(snapshot: KpiSnapshot) -> tuple[Path, Path]:
    """``OUT/kpi/kpi_<date>.md`` and ``.json``."""
    folder = snapshot.run / "kpi"
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / f"kpi_{snapshot.day.isoformat()}.md", folder / f"kpi_{snapshot.day.isoformat()}.json"
    md.write_text(snapshot.markdown(), encoding="utf-8")
    js.write_text(json.dumps(snapshot.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    return md, js


def alert_text(row: KpiRow) -> tuple[str, str]:
    """The subject and content of one breach's alert."""
    subject = f"KPI breach {row.scope} {row.kpi} {row.date.isoformat()}"
    content = (f"{row.scope} {row.kpi} = {_format(row.value, row.unit)} (threshold {row.threshold}, "
               f"baseline {_format(row.baseline, row.unit)})")
    return subject, content
