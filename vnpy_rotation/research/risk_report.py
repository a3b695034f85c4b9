"""The risk report of one strategy's history (``python run.py risk report``): VaR/ES series and their exception
tests, drift monitors, the drawdown ladder's rungs and the stops fired, as CSV files and one report in
markdown and self-contained HTML.

The history is a backtest (:func:`inputs_from_backtest`, the same run as ``run.py backtest``) or the output
folder of a replay or live run (:func:`inputs_from_run_folder`: its ``daily_summary.csv`` and ``trades.csv``).
:func:`build_report` computes everything from those inputs with the pure risk core
(:mod:`vnpy_rotation.risk`); :func:`write_report` writes :data:`FILES`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..backtest.report_html import _CSS, UP, _layout, blocks_html
from ..backtest.report_md import blocks_markdown
from ..backtest.risk_section import (
    NOT_RECORDED,
    VERDICT_DAYS,
    VERDICT_LEVEL,
    VERDICT_METHOD,
    ZONE_MARK,
    Block,
    daily_returns,
    ladder_days,
    ladder_table,
    stop_counts,
    stop_orders,
    stops_table,
)
from ..backtest.runner import BacktestRun
from ..errors import InputRejected, Problem
from ..risk.coverage import CoverageConfig, backtest_report, traffic_light, weekly_reports
from ..risk.drift import DriftConfig, DriftInputs, drift_history
from ..risk.var import VarConfig, var_es_frame

FILES = ("var_es.csv", "exceptions.csv", "exception_tests.csv", "drift.csv", "ladder.csv", "stops.csv",
         "risk_report.md", "risk_report.html")
SECTIONS: dict[str, str] = {
    "light": "1. 交通灯 Traffic light",
    "var": "2. VaR / ES",
    "tests": "3. 例外检验 Exception tests (whole span)",
    "weekly": "4. 每周检验 Weekly tests (trailing 250 days)",
    "drift": "5. 漂移监控 Drift monitors",
    "ladder": "6. 回撤阶梯 Drawdown ladder",
    "stops": "7. 止损 Stops fired",
}
FIGURES = ("fig-var", "fig-weekly-exceptions", "fig-drift", "fig-ladder")
TEST_COLUMNS = ["scope", "method", "level", "start", "end", "observations", "exceptions", "expected_exceptions",
                "exception_rate", "kupiec_lr", "kupiec_p", "kupiec_reject", "ind_lr", "ind_p", "ind_reject",
                "cc_lr", "cc_p", "cc_reject", "zone", "cumulative_probability", "plus_factor", "z2_statistic",
                "z2_critical_value", "z2_p_value", "z2_reject", "var_rejected", "es_rejected"]
STOP_ROWS_SHOWN = 30
LADDER_ROWS_SHOWN = 40
RUN_FILES = ("daily_summary.csv", "trades.csv")


@dataclass(frozen=True)
class RiskInputs:
    """One strategy's history: daily close equity, its orders and fills, and (when recorded) the ladder's rungs.

    ``risk_days``: index date, ``rung`` (the most restrictive rung) and one column per configured ladder.
    ``traded_value``: CNY traded per day (the drift monitors' turnover), aligned to ``equity``.
    """

    strategy: str
    source: str
    equity: pd.Series
    orders: pd.DataFrame
    trades: pd.DataFrame
    risk_days: pd.DataFrame | None = None
    traded_value: pd.Series | None = None


@dataclass(frozen=True)
class ReportConfig:
    """What the report computes: VaR/ES methods and levels, and the exception tests' settings.

    The whole-span ES test simulates ``coverage.scenarios`` paths; each weekly one ``weekly_scenarios``.
    """

    var: VarConfig = field(default_factory=VarConfig)
    coverage: CoverageConfig = field(default_factory=CoverageConfig)
    weekly_scenarios: int = 1_000
    weekly_window: int = VERDICT_DAYS
    drift: DriftConfig = field(default_factory=DriftConfig)


@dataclass(frozen=True)
class RiskReport:
    """Everything written: one frame per CSV file, plus the notes the report prints about missing parts."""

    inputs: RiskInputs
    config: ReportConfig
    returns: pd.Series
    var_es: pd.DataFrame
    exceptions: pd.DataFrame
    tests: pd.DataFrame
    drift: pd.DataFrame
    ladder: pd.DataFrame
    stops: pd.DataFrame


def label(method: str, level: float) -> str:
    """A method and level as a column stem: ``historical_99``, ``ewma_97.5``."""
    return f"{method}_{level * 100:g}"


# ---------------------------------------------------------------- inputs


def inputs_from_backtest(run: BacktestRun) -> RiskInputs:
    """The history of a backtest run (what ``run.py backtest`` writes for the same spec)."""
    result = run.result
    equity = result.equity["equity"].astype(float)
    equity.index = pd.DatetimeIndex(result.equity.index)
    days = run.market.days
    source = f"backtest {days[0].date()} … {days[-1].date()} ({run.spec.source})"
    return RiskInputs(strategy=run.strategy.name, source=source, equity=equity, orders=result.orders,
                      trades=result.trades, risk_days=result.risk_days,
                      traded_value=_traded_value(result.trades, equity.index))


def _traded_value(trades: pd.DataFrame, days: pd.DatetimeIndex) -> pd.Series:
    if not len(trades):
        return pd.Series(0.0, index=days)
    value = trades.groupby(pd.to_datetime(trades["datetime"]).dt.normalize())["value"].sum()
    return value.reindex(days, fill_value=0.0).astype(float)


def _read_csv(path: Path, dates: str) -> pd.DataFrame:
    """``path`` with its ``dates`` column parsed; a value that is not a date is refused by line."""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except OSError:  # absent, or --run is not a folder
        raise InputRejected(Problem(str(path), None, "missing: give the --out folder of a `run.py trade` run")) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputRejected(Problem(str(path), None, f"unreadable ({exc})")) from None
    if dates not in frame.columns:
        raise InputRejected(Problem(str(path), 1, f"no {dates!r} column"))
    parsed = pd.to_datetime(frame[dates], errors="coerce", format="mixed")
    bad = frame.index[parsed.isna()]
    if len(bad):
        raise InputRejected(Problem(str(path), int(bad[0]) + 2, f"{dates}: not a date ({frame[dates].iloc[bad[0]]!r})"))
    frame[dates] = parsed
    return frame


def inputs_from_run_folder(folder: Path, strategy: str, start: Any = None, end: Any = None) -> RiskInputs:
    """The history a replay or live run wrote into its ``--out`` folder (``daily_summary.csv``, ``trades.csv``),
    cut to ``start`` … ``end``. The run's recorded strategy must be ``strategy``."""
    recorded = folder / "state" / "run_parameters.json"
    if recorded.exists():
        try:
            name = json.loads(recorded.read_text(encoding="utf-8"))["parameters"]["strategy"]
        except (ValueError, KeyError, TypeError):
            name = None
        if name is not None and name != strategy:
            raise InputRejected(Problem(str(recorded), None, f"the run traded strategy {name!r}, not {strategy!r}"))
    summary = _read_csv(folder / "daily_summary.csv", "date")
    trades = _read_csv(folder / "trades.csv", "datetime")
    if "equity" not in summary.columns:
        raise InputRejected(Problem(str(folder / "daily_summary.csv"), 1, "no 'equity' column"))
    bad = summary.index[pd.to_numeric(summary["equity"], errors="coerce").isna()]
    if len(bad):
        raise InputRejected(Problem(str(folder / "daily_summary.csv"), int(bad[0]) + 2, "equity: not a number"))
    repeated = summary.index[summary["date"].duplicated()]
    if len(repeated):
        raise InputRejected(Problem(str(folder / "daily_summary.csv"), int(repeated[0]) + 2,
                                    f"date {summary['date'].iloc[repeated[0]].date()} appears twice"))
    equity = pd.Series(summary["equity"].astype(float).to_numpy(), index=pd.DatetimeIndex(summary["date"]),
                       name="equity").sort_index()
    equity = equity.loc[pd.Timestamp(start) if start else None:pd.Timestamp(end) if end else None]
    if len(equity) < 2:
        raise InputRejected(Problem(str(folder / "daily_summary.csv"), None,
                                    f"{len(equity)} sessions in the span: a risk report needs at least two"))
    inside = trades["datetime"].dt.normalize().between(equity.index[0], equity.index[-1]) if len(trades) else []
    trades = trades[inside] if len(trades) else trades
    source = f"run folder {folder} ({equity.index[0].date()} … {equity.index[-1].date()})"
    rung = summary.set_index("date")["risk_rung"] if "risk_rung" in summary.columns else None
    risk_days = None if rung is None or rung.isna().all() else rung.reindex(equity.index).to_frame("rung")
    return RiskInputs(strategy=strategy, source=source, equity=equity, orders=pd.DataFrame(), trades=trades,
                      risk_days=risk_days, traded_value=_traded_value(trades, equity.index))


# ---------------------------------------------------------------- computation


def var_es_table(returns: pd.Series, config: VarConfig) -> pd.DataFrame:
    """Per day: the return, and per method and level the VaR, ES and exception flag (NaN before a forecast)."""
    frame = var_es_frame(returns, config)
    columns: dict[str, pd.Series] = {"return": returns}
    for method in config.methods:
        for level in config.levels:
            var, es = frame[(method, level, "var")], frame[(method, level, "es")]
            stem = label(method, level)
            columns[f"var_{stem}"], columns[f"es_{stem}"] = var, es
            columns[f"exception_{stem}"] = (-returns > var).astype(float).where(var.notna() & returns.notna())
    return pd.DataFrame(columns).rename_axis("date")


def exception_table(var_es: pd.DataFrame, config: VarConfig) -> pd.DataFrame:
    """The daily exception series (1 = the loss exceeded that day's VaR) on the days with a forecast."""
    flags = var_es[[f"exception_{label(m, lv)}" for m in config.methods for lv in config.levels]]
    flags = flags.dropna(how="all")
    flags.columns = [c.removeprefix("exception_") for c in flags.columns]
    return pd.concat([var_es.loc[flags.index, ["return"]], flags.astype("Int64")], axis=1)


def tests_table(var_es: pd.DataFrame, config: ReportConfig) -> pd.DataFrame:
    """Every exception test per method and level: once over the whole span (``scope = overall``) and at every
    ISO week's last session over the trailing ``weekly_window`` sessions (``scope = weekly``)."""
    returns = var_es["return"]
    weekly_config = CoverageConfig(test_level=config.coverage.test_level, significance=config.coverage.significance,
                                   scenarios=config.weekly_scenarios, seed=config.coverage.seed,
                                   distribution=config.coverage.distribution, dof=config.coverage.dof)
    rows: list[dict[str, Any]] = []
    for method in config.var.methods:
        for level in config.var.levels:
            stem = label(method, level)
            var, es = var_es[f"var_{stem}"], var_es[f"es_{stem}"]
            if not (var.notna() & returns.notna()).any():
                continue
            tag = {"method": method, "level": level}
            rows.append({"scope": "overall", **tag,
                         **backtest_report(returns, var, es, level=level, config=config.coverage).row()})
            rows += [{"scope": "weekly", **tag, **report.row()}
                     for report in weekly_reports(returns, var, es, level=level, window=config.weekly_window,
                                                  config=weekly_config)]
    return pd.DataFrame(rows).reindex(columns=TEST_COLUMNS)


DRIFT_COLUMNS = ["date", "monitor", "available", "statistic", "threshold", "breached", "reason"]
NO_FACTOR = "unavailable: the history carries no daily factor panel (a strategy's own factors are not exported)"
NO_TICKS = ("unavailable: the order-book imbalance needs level-1 bid/ask volumes from ticks, and this history has "
            "daily bars only")


def drift_table(inputs: RiskInputs, returns: pd.Series, config: DriftConfig) -> pd.DataFrame:
    """The drift monitors per day (:data:`DRIFT_COLUMNS`, one row per day and monitor) on the strategy's daily
    returns (volatility regime, return shift) and turnover intensity (traded value / previous equity).

    Monitors without an input (the factor panel, the order book without ticks) are reported as unavailable
    with the reason; computable ones are NaN (and not breached) on days before a full reference window.
    """
    volume = None
    if inputs.traded_value is not None:
        previous = inputs.equity.shift(1).reindex(returns.index)
        volume = (inputs.traded_value.reindex(returns.index, fill_value=0.0) / previous).to_numpy(dtype=float)
    history = drift_history(DriftInputs(returns=returns.to_numpy(dtype=float), volume=volume), returns.index.values,
                            config)
    days = pd.DatetimeIndex(returns.index)
    offset = len(days) - len(history.days)
    parts = []
    for monitor in config.monitors:
        statistic = np.full(len(days), np.nan)
        threshold = np.full(len(days), np.nan)
        if monitor in history.statistic and len(history.statistic[monitor]):
            statistic[offset:], threshold[offset:] = history.statistic[monitor], history.threshold[monitor]
        reason = (NO_TICKS if monitor == "order_book" else NO_FACTOR if monitor.startswith("factor")
                  else "" if volume is not None or monitor != "volume" else "unavailable: no trades in the history")
        known = np.isfinite(statistic)
        parts.append(pd.DataFrame({
            "date": days, "monitor": monitor, "available": known, "statistic": statistic, "threshold": threshold,
            "breached": known & (statistic > threshold),
            "reason": np.where(known, "", reason or f"needs {config.reference_days + config.recent_days} sessions "
                               "of a usable reference and recent window"),
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DRIFT_COLUMNS)
    return frame.sort_values("date", kind="stable").reset_index(drop=True)[DRIFT_COLUMNS]


def _longest_run(flags: pd.Series) -> int:
    values = flags.to_numpy(dtype=bool)
    if not values.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], values.astype(int), [0]])))
    return int((edges[1::2] - edges[::2]).max())


def build_report(inputs: RiskInputs, config: ReportConfig | None = None) -> RiskReport:
    """Every table of the report from ``inputs``."""
    config = config or ReportConfig()
    returns = daily_returns(inputs.equity)
    var_es = var_es_table(returns, config.var)
    drift = drift_table(inputs, returns, config.drift)
    ladder = (inputs.risk_days.rename_axis("date") if inputs.risk_days is not None
              else pd.DataFrame(columns=["rung"]).rename_axis("date"))
    return RiskReport(inputs=inputs, config=config, returns=returns, var_es=var_es,
                      exceptions=exception_table(var_es, config.var), tests=tests_table(var_es, config),
                      drift=drift, ladder=ladder,
                      stops=stop_orders(inputs.orders, inputs.trades))


# ---------------------------------------------------------------- report text


def _num(value: Any, digits: int = 3) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value) * 100:.2f}%"


def _recent(report: RiskReport, method: str, level: float) -> dict[str, Any] | None:
    """The most recent ``weekly_window`` forecast sessions of one method and level, as the Basel test sees them."""
    flags = report.exceptions.get(label(method, level))
    if flags is None:
        return None
    flags = flags.dropna()
    days = report.config.weekly_window
    if len(flags) < days:
        return {"status": "too short", "observations": len(flags)}
    recent = flags.iloc[-days:]
    count = int(recent.sum())
    light = traffic_light(count, days, level)
    row = backtest_report(report.returns.loc[recent.index], report.var_es.loc[recent.index, f"var_{label(method, level)}"],
                          level=level, config=report.config.coverage)
    return {"status": "ok", "start": recent.index[0].date(), "end": recent.index[-1].date(), "exceptions": count,
            "zone": light.zone.value, "kupiec_p": row.kupiec.p_value, "cc_p": row.christoffersen.p_value_cc}


def headline(report: RiskReport) -> str:
    """The traffic-light zone of the 99 % historical VaR over the most recent 250 forecast sessions."""
    recent = _recent(report, VERDICT_METHOD, VERDICT_LEVEL)
    if recent is None or recent["status"] != "ok":
        seen = 0 if recent is None else recent["observations"]
        return (f"交通灯 Traffic light: **TOO SHORT** — {seen} sessions with a 99 % historical VaR forecast, "
                f"{report.config.weekly_window} needed")
    zone = recent["zone"]
    return (f"交通灯 Traffic light: {ZONE_MARK[zone]} **{zone.upper()}** — 99 % historical VaR, "
            f"{recent['exceptions']} exceptions in the {report.config.weekly_window} sessions {recent['start']} … "
            f"{recent['end']} (green 0–4, yellow 5–9, red ≥ 10), Kupiec p = {_num(recent['kupiec_p'])}")


def _light(report: RiskReport) -> list[Block]:
    rows = []
    for method in report.config.var.methods:
        for level in report.config.var.levels:
            recent = _recent(report, method, level)
            if recent is None or recent["status"] != "ok":
                rows.append((method, f"{level:.1%}", "too short", "—", "—", "—", "—"))
                continue
            rows.append((method, f"{level:.1%}", f"{ZONE_MARK[recent['zone']]} {recent['zone']}", recent["exceptions"],
                         _num((1 - level) * report.config.weekly_window, 1), _num(recent["kupiec_p"]),
                         _num(recent["cc_p"])))
    return [f"Zones by the binomial generalisation of the Basel table for levels other than 99 %; the last "
            f"{report.config.weekly_window} sessions with a forecast.",
            (("method", "level", "zone", "exceptions", "expected", "Kupiec p", "cond. coverage p"), rows, "llcrrrr")]


def _var(report: RiskReport) -> list[Block]:
    var_es, config = report.var_es, report.config.var
    rows = []
    for method in config.methods:
        for level in config.levels:
            stem = label(method, level)
            var, es = var_es[f"var_{stem}"].dropna(), var_es[f"es_{stem}"].dropna()
            flags = var_es[f"exception_{stem}"].dropna()
            rows.append((method, f"{level:.1%}", _pct(var.iloc[-1] if len(var) else None),
                         _pct(es.iloc[-1] if len(es) else None), _pct(var.mean() if len(var) else None),
                         int(flags.sum()), len(flags), _num(len(flags) * (1 - level), 1)))
    first = var_es[f"var_{label(config.methods[0], config.levels[0])}"].first_valid_index()
    return [f"One-day VaR and ES as positive fractions of equity, each from the {config.window} sessions before "
            f"the day (first forecast {first.date() if first is not None else '—'}); var_es.csv has every day.",
            (("method", "level", "last VaR", "last ES", "mean VaR", "exceptions", "days", "expected"), rows,
             "llrrrrrr")]


def _tests(report: RiskReport) -> list[Block]:
    overall = report.tests[report.tests["scope"] == "overall"]
    if overall.empty:
        return [f"No exception test: fewer than {report.config.var.window + 1} sessions."]
    rows = [(t.method, f"{t.level:.1%}", t.observations, t.exceptions, _num(t.expected_exceptions, 1),
             _num(t.kupiec_p), _num(t.ind_p), _num(t.cc_p), t.zone, _num(t.z2_statistic), _num(t.z2_critical_value),
             "✅" if not t.var_rejected else "❌", "—" if pd.isna(t.z2_reject) else ("❌" if t.es_rejected else "✅"))
            for t in overall.itertuples()]
    return [f"Kupiec POF, Christoffersen independence and conditional coverage (reject at "
            f"{1 - report.config.coverage.test_level:.0%}), traffic-light zone over the whole span, Acerbi–Szekely Z2 "
            f"with {report.config.coverage.scenarios:,} simulated scenarios (reject below the "
            f"{report.config.coverage.significance:.0%} critical value).",
            (("method", "level", "days", "exceptions", "expected", "Kupiec p", "ind. p", "cond. p", "zone", "Z2",
              "Z2 crit.", "VaR ok", "ES ok"), rows, "llrrrrrrlrrcc")]


def _weekly(report: RiskReport) -> list[Block]:
    weekly = report.tests[report.tests["scope"] == "weekly"]
    if weekly.empty:
        return [f"No weekly test: fewer than {report.config.var.window + report.config.weekly_window} sessions."]
    rows = []
    for (method, level), part in weekly.groupby(["method", "level"], sort=False):
        zones = part["zone"].value_counts()
        last = part.iloc[-1]
        rows.append((method, f"{level:.1%}", len(part), *(int(zones.get(z, 0)) for z in ZONE_MARK),
                     f"{ZONE_MARK[last['zone']]} {last['zone']}", int(last["exceptions"]), int(part["var_rejected"].sum()),
                     int(part["es_rejected"].sum())))
    return ["At the last session of every ISO week, every test over the trailing sessions (exception_tests.csv, "
            "scope weekly).",
            (("method", "level", "weeks", "green", "yellow", "red", "latest zone", "latest exceptions",
              "weeks VaR rejected", "weeks ES rejected"), rows, "llrrrrlrrr")]


def _drift(report: RiskReport) -> list[Block]:
    config = report.config.drift
    rows: list[tuple[Any, ...]] = []
    for monitor, part in report.drift.groupby("monitor", sort=False):
        known = part[part["available"]]
        if known.empty:
            rows.append((monitor, "—", 0, "—", "—", "—", "—", part["reason"].iloc[-1]))
            continue
        last = known.iloc[-1]
        alerting = "yes" if monitor in config.alerting else "no"
        rows.append((monitor, alerting, len(known), int(known["breached"].sum()), _pct(known["breached"].mean()),
                     _longest_run(known["breached"]), f"{_num(last['statistic'])} / {_num(last['threshold'])}", ""))
    return [f"Each day the last {config.recent_days} sessions against the {config.reference_days} before them; the "
            f"threshold is the {config.quantile:.0%} quantile of the statistic's null distribution resampled from that "
            f"reference (so about {1 - config.quantile:.0%} of days breach by chance). Three consecutive alert days "
            "raise the forced retrain.",
            (("monitor", "alerts", "days", "breached", "breach rate", "longest run", "last statistic / threshold",
              "note"), rows, "lcrrrrrl")]


def _ladder(report: RiskReport) -> list[Block]:
    days = ladder_days(report.inputs.risk_days)
    if days is None:
        return [f"Ladder states: {NOT_RECORDED} (the history carries no per-day risk state)."]
    ladder = report.ladder
    before = ladder.shift(1)
    changes = [(str(day.date()), name, before.at[day, name], ladder.at[day, name])
               for name in ladder.columns for day in ladder.index[(ladder[name] != before[name]) & before[name].notna()]]
    changes.sort()
    blocks: list[Block] = [ladder_table(days)]
    if not changes:
        return blocks + ["No rung change."]
    shown = changes[:LADDER_ROWS_SHOWN]
    return blocks + [f"Rung changes: first {len(shown)} of {len(changes)} (ladder.csv has every session):",
                     (("date", "ladder", "from", "to"), shown, "llll")]


def _stops(report: RiskReport) -> list[Block]:
    counts = stop_counts(report.stops)
    if not counts:
        return ["No risk rule sent an order."]
    shown = report.stops.head(STOP_ROWS_SHOWN)
    return [stops_table(counts),
            f"First {len(shown)} of {len(report.stops)} (stops.csv has all):",
            (("date", "rule", "trigger", "symbol", "status", "cause"),
             [(str(pd.Timestamp(s.date).date()), s.rule, _pct(s.trigger), s.vt_symbol, s.status, s.cause)
              for s in shown.itertuples()], "llrlll")]


def report_sections(report: RiskReport) -> dict[str, list[Block]]:
    return {"light": _light(report), "var": _var(report), "tests": _tests(report), "weekly": _weekly(report),
            "drift": _drift(report), "ladder": _ladder(report), "stops": _stops(report)}


def _title(report: RiskReport) -> tuple[str, str]:
    return f"{report.inputs.strategy} 风险报告 Risk report", report.inputs.source


def render_markdown(report: RiskReport, sections: dict[str, list[Block]]) -> str:
    title, subtitle = _title(report)
    lines = [f"# {title}", "", subtitle, "", f"> {headline(report)}", ""]
    for key, heading in SECTIONS.items():
        lines += [f"## {heading}", "", *blocks_markdown(sections[key]), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- figures


def _var_figure(report: RiskReport) -> go.Figure:
    var_es = report.var_es
    fig = go.Figure(go.Scatter(x=var_es.index, y=var_es["return"] * 100, name="return", mode="markers",
                               marker={"color": "#888", "size": 3}))
    for method in report.config.var.methods:
        column = f"var_{label(method, VERDICT_LEVEL)}"
        if column in var_es:
            fig.add_trace(go.Scatter(x=var_es.index, y=-var_es[column] * 100, name=f"−VaR 99% {method}",
                                     mode="lines", line={"width": 1}))
    flags = f"exception_{label(VERDICT_METHOD, VERDICT_LEVEL)}"
    if flags in var_es:
        hit = var_es[var_es[flags] == 1]
        fig.add_trace(go.Scatter(x=hit.index, y=hit["return"] * 100, name="exception (historical 99%)",
                                 mode="markers", marker={"color": UP, "size": 7, "symbol": "x"}))
    return _layout(fig, "日收益与 VaR Daily return vs −VaR (99 %)", "%")


def _weekly_figure(report: RiskReport) -> go.Figure:
    weekly = report.tests[(report.tests["scope"] == "weekly") & (report.tests["level"] == VERDICT_LEVEL)]
    fig = go.Figure([go.Scatter(x=pd.to_datetime(part["end"]), y=part["exceptions"], name=method, mode="lines",
                                line={"shape": "hv"}) for method, part in weekly.groupby("method", sort=False)])
    light = traffic_light(0, report.config.weekly_window, VERDICT_LEVEL)
    for edge, color in ((light.yellow_from, "#e6b800"), (light.red_from, UP)):
        fig.add_hline(y=edge - 0.5, line={"color": color, "dash": "dash", "width": 1})
    return _layout(fig, f"滚动例外数 Exceptions in the trailing {report.config.weekly_window} sessions (99 %)", "#")


def _drift_figure(report: RiskReport) -> go.Figure:
    drift = report.drift[report.drift["available"]]
    fig = go.Figure([go.Scatter(x=part["date"], y=part["statistic"] / part["threshold"], name=str(monitor),
                                mode="lines", line={"width": 1}) for monitor, part in drift.groupby("monitor", sort=False)])
    fig.add_hline(y=1.0, line={"color": UP, "dash": "dash", "width": 1})
    return _layout(fig, "漂移监控 Drift statistic / threshold (above 1: breached)", "ratio")


def _ladder_figure(report: RiskReport) -> go.Figure:
    fig = go.Figure()
    ladder = report.ladder
    for column in ladder.columns:
        fig.add_trace(go.Scatter(x=ladder.index, y=ladder[column].astype(str), name=str(column), mode="lines",
                                 line={"shape": "hv"}))
    fig.update_yaxes(categoryorder="array", categoryarray=["ACTIVE", "REDUCING", "HALTED"])
    title = "回撤阶梯 Ladder rung" + ("" if len(ladder) else f" ({NOT_RECORDED})")
    return _layout(fig, title, "rung")


def render_html(report: RiskReport, sections: dict[str, list[Block]]) -> str:
    title, subtitle = _title(report)
    esc = html.escape
    figures = {"fig-var": _var_figure(report), "fig-weekly-exceptions": _weekly_figure(report),
               "fig-drift": _drift_figure(report), "fig-ladder": _ladder_figure(report)}
    config = {"displaylogo": False, "responsive": True}
    divs = {fid: figures[fid].to_html(full_html=False, include_plotlyjs=(i == 0), div_id=fid, config=config)
            for i, fid in enumerate(FIGURES)}
    placed = {"var": "fig-var", "weekly": "fig-weekly-exceptions", "drift": "fig-drift", "ladder": "fig-ladder"}
    parts = ["<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f"<p>{esc(subtitle)}</p>", blocks_html([headline(report)], "headline")]
    for key, heading in SECTIONS.items():
        parts += [f"<h2>{esc(heading)}</h2>", blocks_html(sections[key], f"section-{key}")]
        if key in placed:
            parts.append(divs[placed[key]])
    return "\n".join(parts + ["</body></html>"])


# ---------------------------------------------------------------- files


def write_report(report: RiskReport, out: Path) -> list[Path]:
    """Write every file of :data:`FILES` into ``out`` (created) and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    report.var_es.to_csv(out / "var_es.csv", date_format="%Y-%m-%d")
    report.exceptions.to_csv(out / "exceptions.csv", date_format="%Y-%m-%d")
    report.tests.to_csv(out / "exception_tests.csv", index=False, date_format="%Y-%m-%d")
    report.drift.to_csv(out / "drift.csv", index=False, date_format="%Y-%m-%d")
    report.ladder.to_csv(out / "ladder.csv", date_format="%Y-%m-%d")
    report.stops.to_csv(out / "stops.csv", index=False, date_format="%Y-%m-%d")
    sections = report_sections(report)
    (out / "risk_report.md").write_text(render_markdown(report, sections), encoding="utf-8")
    (out / "risk_report.html").write_text(render_html(report, sections), encoding="utf-8")
    return [out / name for name in FILES]

