"""The short risk section every backtest report carries: the drawdown ladder's days per rung (when the result
records them), the stops fired per rule, and the exception-test verdict of the run's own daily VaR.

The verdict is the Basel backtest of a one-day 99 % historical-simulation VaR over a trailing 250-session
window (:mod:`vnpy_rotation.risk.var`), judged on the most recent 250 sessions that have a forecast: the
traffic-light zone (green 0-4, yellow 5-9, red >= 10 exceptions) and the Kupiec proportion-of-failures
p-value (:mod:`vnpy_rotation.risk.coverage`). Basel Committee on Banking Supervision, "Supervisory framework
for the use of 'backtesting' in conjunction with the internal models approach to market risk capital
requirements" (January 1996). A run too short for 250 forecast days says "too short" instead of a zone.

Everything here is a plain dict (it goes into ``metrics.json`` under ``"risk"``) and costs a few tens of
milliseconds on ten years, so ``run.py backtest`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..risk.coverage import kupiec_pof, traffic_light
from ..risk.ladder import RUNGS
from ..risk.limits import RULES as LIMIT_RULES
from ..risk.stops import CAUSES, PLAN
from ..risk.var import Method, var_es_series
from .result import BacktestResult

VERDICT_METHOD: Method = "historical"
VERDICT_LEVEL = 0.99
VAR_WINDOW = 250  # sessions of returns behind each forecast
VERDICT_DAYS = 250  # the Basel backtest sample: the most recent 250 sessions with a forecast
TOO_SHORT = "too short"
NOT_RECORDED = "not recorded"
# The rules an order's cause can name: the risk orders' (``risk.stops.CAUSES`` without the plan: stops and the
# ladder) and the plan limits that bound its target (``risk.limits.RULES``, e.g. ``max_position_weight 10.0%``).
RISK_RULES: tuple[str, ...] = (*(c for k, c in enumerate(CAUSES) if k != PLAN), *LIMIT_RULES)
# "<rule> <trigger>%" (e.g. "stock_stop -9.5%"); several binding rules are joined by ";".
_REASON = r"^\s*(?P<rule>[a-z_]+)(?:[^;%]*?(?P<trigger>[-+]?\d+(?:\.\d+)?)%)?"
_NAMES = "|".join(RISK_RULES)
STOP_COLUMNS = ["date", "rule", "trigger", "vt_symbol", "direction", "requested", "submitted", "filled", "status",
                "cause"]

Block = str | tuple[Sequence[str], list[tuple[Any, ...]], str]  # a line, or (header, rows, align)


def daily_returns(equity: pd.Series) -> pd.Series:
    """Close-to-close returns of an equity series (the first day has none)."""
    values = equity.astype(float)
    return (values / values.shift(1) - 1.0).iloc[1:].rename("return")


def stop_orders(orders: pd.DataFrame, trades: pd.DataFrame) -> pd.DataFrame:
    """Orders whose cause names a risk rule, one row per rule named (:data:`STOP_COLUMNS`; ``trigger`` a fraction:
    the loss or drawdown that fired a stop or the ladder, the cap of a limit).

    The backtest's orders carry ``cause``; without it (a replay's or a hand-built result's orders) the fills'
    ``reason`` stands in: then every row is a filled order.
    """
    if "cause" in orders.columns:
        rows = orders
    else:
        rows = trades.rename(columns={"datetime": "date", "reason": "cause", "volume": "filled"})
        rows = rows.assign(date=pd.to_datetime(rows["date"]).dt.normalize(), status="filled",
                           requested=rows["filled"], submitted=rows["filled"]) if len(rows) else rows
    if "cause" not in rows.columns or not len(rows):
        return pd.DataFrame(columns=STOP_COLUMNS)
    # Causes repeat (one text per rule and trigger, or per plan note): parse each distinct text once.
    codes, texts = pd.factorize(rows["cause"].fillna("").astype(str))
    texts = pd.Series(texts, dtype=object)
    parts = texts[texts.str.contains(_NAMES, regex=True)].str.split(";").explode()  # plan notes are long
    found = parts.str.extract(_REASON)
    found = found[found["rule"].isin(RISK_RULES)]
    if found.empty:
        return pd.DataFrame(columns=STOP_COLUMNS)
    # One row per (order, rule its text names), in order: repeat each order by its text's rule count and
    # point each copy at that text's k-th rule (``found`` is grouped by text, in text order).
    per_text = np.bincount(found.index.to_numpy(), minlength=len(texts))
    first_rule = np.cumsum(per_text) - per_text
    repeats = per_text[codes]
    order = np.repeat(np.arange(len(codes)), repeats)
    match = first_rule[codes[order]] + np.arange(len(order)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    picked = rows.iloc[order].assign(rule=found["rule"].to_numpy()[match],
                                     trigger=pd.to_numeric(found["trigger"]).to_numpy()[match] / 100.0)
    return picked.reindex(columns=STOP_COLUMNS).reset_index(drop=True).round({"trigger": 6})


def stop_counts(stops: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per rule: orders sent, sessions it sent them on, and orders that filled (in part or in full)."""
    counts: dict[str, dict[str, int]] = {}
    for rule, part in stops.groupby("rule", sort=False):
        filled = pd.to_numeric(part["filled"], errors="coerce").fillna(0) > 0
        counts[str(rule)] = {"orders": len(part), "days": int(part["date"].nunique()), "filled": int(filled.sum())}
    return {rule: counts[rule] for rule in RISK_RULES if rule in counts}


def ladder_days(risk_days: pd.DataFrame | None) -> dict[str, dict[str, int]] | None:
    """Sessions per rung for the most restrictive rung (``rung``) and each configured ladder; None when the
    result does not record the ladder."""
    if risk_days is None or not len(risk_days.columns):
        return None
    out = {}
    for column in risk_days.columns:
        counts = risk_days[column].astype(str).value_counts()
        out[str(column)] = {rung: int(counts.get(rung, 0)) for rung in RUNGS} | {
            str(k): int(v) for k, v in counts.items() if k not in RUNGS}
    return out


def exception_verdict(returns: pd.Series) -> dict[str, Any]:
    """The 99 % historical VaR's Basel backtest on the last :data:`VERDICT_DAYS` forecast sessions.

    ``status`` is ``"ok"`` or :data:`TOO_SHORT`; with ``ok``: ``zone``, ``exceptions``, ``kupiec_p`` over
    those sessions and ``exceptions_all``/``kupiec_p_all`` over every forecast session.
    """
    forecast = var_es_series(returns, VERDICT_METHOD, VERDICT_LEVEL, VAR_WINDOW)["var"]
    known = forecast.notna() & returns.notna()
    hits = (-returns[known] > forecast[known]).to_numpy()
    verdict: dict[str, Any] = {"method": VERDICT_METHOD, "level": VERDICT_LEVEL, "window": VAR_WINDOW,
                               "days": VERDICT_DAYS, "observations": int(len(hits))}
    if len(hits) < VERDICT_DAYS:
        return verdict | {"status": TOO_SHORT, "zone": None, "exceptions": None, "kupiec_p": None}
    recent = hits[-VERDICT_DAYS:]
    days = returns[known].index
    count = int(recent.sum())
    return verdict | {
        "status": "ok", "start": str(days[-VERDICT_DAYS].date()), "end": str(days[-1].date()),
        "exceptions": count, "zone": traffic_light(count, VERDICT_DAYS, VERDICT_LEVEL).zone.value,
        "kupiec_p": kupiec_pof(count, VERDICT_DAYS, VERDICT_LEVEL).p_value,
        "exceptions_all": int(hits.sum()), "kupiec_p_all": kupiec_pof(int(hits.sum()), len(hits), VERDICT_LEVEL).p_value,
    }


def risk_summary(result: BacktestResult) -> dict[str, Any]:
    """The section's content as plain data: ``ladder`` (days per rung per ladder, or None), ``stops`` (per
    rule) and ``verdict`` (:func:`exception_verdict`)."""
    equity = pd.Series(result.equity["equity"].to_numpy(dtype=float), index=pd.DatetimeIndex(result.equity.index))
    return {"ladder": ladder_days(result.risk_days),
            "stops": stop_counts(stop_orders(result.orders, result.trades)),
            "verdict": exception_verdict(daily_returns(equity))}


def _p(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


ZONE_MARK = {"green": "🟢", "yellow": "🟡", "red": "🔴"}


def verdict_line(verdict: dict[str, Any]) -> str:
    """One sentence: the zone, the exceptions and the Kupiec p-value, or why there is no verdict."""
    head = f"99 % historical VaR ({verdict['window']}-day window), Basel traffic light over {verdict['days']} days"
    if verdict["status"] != "ok":
        return (f"{head}: {TOO_SHORT} ({verdict['observations']} days with a forecast; "
                f"{verdict['days']} needed after the {verdict['window']}-day window)")
    zone = verdict["zone"]
    return (f"{head} ({verdict['start']} … {verdict['end']}): {ZONE_MARK[zone]} **{zone.upper()}**, "
            f"{verdict['exceptions']} exceptions (expected {verdict['days'] * (1 - verdict['level']):.1f}), "
            f"Kupiec p = {_p(verdict['kupiec_p'])}; whole run {verdict['exceptions_all']} exceptions in "
            f"{verdict['observations']} days, Kupiec p = {_p(verdict['kupiec_p_all'])}")


def ladder_table(ladder: dict[str, dict[str, int]]) -> Block:
    """Sessions per rung, one row per ladder (:func:`ladder_days`)."""
    rungs = list(dict.fromkeys(r for days in ladder.values() for r in days))
    return (("ladder", *rungs), [(name, *(days.get(r, 0) for r in rungs)) for name, days in ladder.items()],
            "l" + "r" * len(rungs))


def stops_table(stops: dict[str, dict[str, int]]) -> Block:
    """Orders, sessions and filled orders per rule (:func:`stop_counts`)."""
    return (("rule", "orders", "sessions", "filled"),
            [(rule, c["orders"], c["days"], c["filled"]) for rule, c in stops.items()], "lrrr")


def risk_blocks(summary: dict[str, Any]) -> list[Block]:
    """The section as lines and tables, rendered by the markdown and the HTML report alike."""
    blocks: list[Block] = [f"- 例外检验 Exception test: {verdict_line(summary['verdict'])}"]
    ladder = summary["ladder"]
    if ladder is None:
        blocks.append(f"- 回撤阶梯 Drawdown ladder: {NOT_RECORDED}")
    else:
        blocks += ["- 回撤阶梯 Drawdown ladder: sessions per rung", ladder_table(ladder)]
    stops = summary["stops"]
    if not stops:
        blocks.append("- 止损 Stops fired: none")
    else:
        blocks += ["- 止损 Stops fired: orders per rule", stops_table(stops)]
    return blocks
