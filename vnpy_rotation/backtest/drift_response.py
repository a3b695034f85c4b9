"""The drift monitors (:mod:`vnpy_rotation.risk.drift`) and the three-stage response
(:mod:`vnpy_rotation.risk.response`) applied to a :class:`TargetPlan`.

One function, :func:`apply_drift_response`, called by :func:`~vnpy_rotation.backtest.engine.simulate` right
after the limits (so every backtest path) and by the live decision on the rows since the instance started:
a replay and a backtest with the same configuration see the same monitors, step the same response and cut
the same rows.

The monitors run on the strategy's own bars, as its basket: the equal-weight daily return of its symbols
(backward-adjusted closes) and their summed traded turnover. The factor panel and the order book are not
part of the market data a plan is made from, so their monitors cannot run here (the configuration rejects
them). Point-in-time: the session t sees bars up to t only (:func:`~vnpy_rotation.risk.drift.drift_history`:
the recent window ends at t, the reference before it); the response is stepped from the first session
(``since``) with the thresholds recalibrated every ``recalibrate_every`` sessions counted from there, so the
result does not depend on how much history before ``since`` is loaded beyond the windows.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.market_data import MarketData
from ..errors import InputRejected, Problem
from ..risk.drift import DriftInputs, drift_history
from ..risk.response import STAGES, Observations, ResponseState, step
from .config import BacktestConfig
from .notes import notes_frame

if TYPE_CHECKING:  # engine.simulate calls apply_drift_response
    from .engine import TargetPlan

EVENT_COLUMNS = ["date", "kind", "stage", "flag", "exposure", "requests", "monitors", "reason"]


class DriftSkipped(UserWarning):
    """A share-count plan under a configured drift response: it is not applied to it."""


def skipped(plan: TargetPlan, config: BacktestConfig) -> str | None:
    """Why the drift response does not apply to ``plan`` (None when it does, or when it is off): an
    exposure is a fraction of equity, which a share-count row becomes only on the day it executes."""
    if plan.kind == "shares" and config.risk.drift.enabled:
        return ("risk.drift is enabled but the plan is in share counts: the drift response (a fraction of "
                "equity) is not applied to it")
    return None


def basket_inputs(market: MarketData) -> DriftInputs:
    """The basket's daily inputs: the equal-weight return of the symbols with a return that day
    (backward-adjusted closes, so ex-dates are not returns) and the total turnover of those with a bar."""
    adjusted = market.adjusted("close")
    returns = np.full(adjusted.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        returns[1:] = adjusted[1:] / adjusted[:-1] - 1.0
    traded = np.where(market.suspended, np.nan, market.turnover)
    has_return, has_turnover = np.isfinite(returns).any(axis=1), np.isfinite(traded).any(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a day without any bar stays NaN
        basket = np.where(has_return, np.nanmean(np.where(np.isfinite(returns), returns, np.nan), axis=1), np.nan)
    volume = np.where(has_turnover, np.nansum(traded, axis=1), np.nan)
    return DriftInputs(returns=np.asarray(basket, dtype=float), volume=np.asarray(volume, dtype=float))


@dataclasses.dataclass(frozen=True)
class ResponseDays:
    """The response on each market day from ``first`` on (before it: normal, never stepped)."""

    first: int  # position of the first stepped session in the market's days
    stage: np.ndarray  # (days,) index into STAGES
    exposure: np.ndarray  # (days,) the rung's exposure
    cause: np.ndarray  # (days,) object: the alerting monitors of the session that last moved the ladder up
    events: pd.DataFrame  # EVENT_COLUMNS
    breached: np.ndarray  # (days,) object: the alerting monitors that breached that session ("" none)


def response_days(config: BacktestConfig, market: MarketData, since: pd.Timestamp | None = None) -> ResponseDays:
    """Monitors on the basket and the response stepped session by session from ``since`` (default: the
    market's first day)."""
    drift = config.risk.drift
    policy = drift.policy
    days = market.days
    first = 0 if since is None else int(days.searchsorted(pd.Timestamp(since)))
    # Anchor the recalibrations at ``first``: start the history exactly one warm-up before it when there is
    # that much data (drift_history calibrates on its first judged row, then every recalibrate_every rows).
    warm = drift.monitor.reference_days + drift.monitor.recent_days - 1
    lo = max(0, first - warm)
    inputs = basket_inputs(market)
    assert inputs.returns is not None and inputs.volume is not None
    history = drift_history(DriftInputs(returns=inputs.returns[lo:], volume=inputs.volume[lo:]), days[lo:],
                            drift.monitor, drift.recalibrate_every)
    alerting = [m for m in drift.monitor.alerting if m in history.breached]
    breached = np.zeros((len(days), len(alerting)), dtype=bool)
    judged_from = lo + warm
    for k, name in enumerate(alerting):
        breached[judged_from:judged_from + len(history.days), k] = history.breached[name]
    stage = np.zeros(len(days), dtype=np.int64)
    exposure = np.ones(len(days))
    cause = np.full(len(days), "", dtype=object)
    breached_names = np.full(len(days), "", dtype=object)
    rows: list[dict[str, object]] = []
    state, why = ResponseState(), ""
    for t in range(first, len(days)):
        names = tuple(m for m, hit in zip(alerting, breached[t]) if hit)
        breached_names[t] = ", ".join(names)
        before = STAGES.index(state.stage)
        state, events = step(state, Observations(drift=names), days[t].date(), policy)
        if STAGES.index(state.stage) > before:  # the monitors that moved the ladder up name the cut
            why = ", ".join(names)
        for event in events:
            rows.append({"date": days[t], "kind": event.kind, "stage": event.stage or "", "flag": event.flag or "",
                         "exposure": event.exposure, "requests": ";".join(event.requests),
                         "monitors": ", ".join(names), "reason": event.reason})
        stage[t] = STAGES.index(state.stage)
        exposure[t] = policy.row(state.stage).exposure
        cause[t] = why if state.stage != "normal" else ""
    return ResponseDays(first, stage, exposure, cause, pd.DataFrame(rows, columns=EVENT_COLUMNS), breached_names)


def apply_drift_response(plan: TargetPlan, config: BacktestConfig, market: MarketData,
                         since: pd.Timestamp | None = None, response: ResponseDays | None = None) -> TargetPlan:
    """``plan`` with each decision row cut to the exposure of the response's rung that day.

    ``market``: the bars the strategy decided on (its warm-up included: the monitors' windows come from it);
    ``since``: the first session the response is stepped from (the backtest's first traded day, the live
    instance's first session; default the market's first day). A row decided at t in a rung with exposure
    e < 1 (degrade, retrain) has its weights scaled by e; the cut stays in cash, or with
    ``degrade_mode: defensive`` goes to the defensive symbol. Every changed cell's note (or the plan's reason)
    gains e.g. ``drift degrade 50%: volatility`` (the rung, its exposure, the alerting monitors that moved the
    ladder up), which becomes the reason of the orders it causes. ``alert`` changes nothing; the ``retrain``
    requests never change a plan by themselves. The stage changes and raised flags are returned as
    ``drift_events`` on the plan.

    ``response``: :func:`response_days` of the same arguments when the caller computed it already (the live
    decision reads the day's breached monitors from it). Off: ``plan`` itself. A share-count plan: unchanged
    with a :class:`DriftSkipped` warning."""
    drift = config.risk.drift
    if not drift.enabled:
        return plan
    why = skipped(plan, config)
    if why is not None:
        warnings.warn(why, DriftSkipped, stacklevel=2)
        return plan
    response = response or response_days(config, market, since)
    frame = plan.frame
    if frame.empty:
        return dataclasses.replace(plan, drift_events=response.events)
    position = market.days.get_indexer(pd.DatetimeIndex(frame.index))
    if (position < 0).any():
        bad = frame.index[position < 0][0]
        raise InputRejected(Problem("targets", None, f"decision day {bad} is not a trading day of the data"))
    scale = response.exposure[position]
    cut = scale < 1.0
    if not cut.any():
        return dataclasses.replace(plan, drift_events=response.events)
    weights = frame.to_numpy(dtype=float)
    columns = list(frame.columns)
    notes_given = plan.notes.reindex(columns=columns) if plan.notes is not None else None
    defensive = drift.policy.defensive_symbol if drift.policy.degrade_mode == "defensive" else None
    if defensive is not None and defensive not in columns:
        if defensive not in market.symbols:
            raise InputRejected(Problem("risk.drift.response.defensive_symbol", None,
                                        f"{defensive} is not among the strategy's symbols: it has no bars"))
        columns = columns + [defensive]
        weights = np.column_stack([weights, np.zeros(len(weights))])
        if notes_given is not None:
            notes_given = notes_given.reindex(columns=columns)
    new = weights.copy()
    new[cut] = weights[cut] * scale[cut, None]  # NaN (keep the holding) stays NaN
    changed = cut[:, None] & (new != weights) & np.isfinite(weights)
    if defensive is not None:
        d = columns.index(defensive)
        moved = np.nansum(weights[cut], axis=1) * (1.0 - scale[cut])
        new[cut, d] = np.nan_to_num(new[cut, d]) + moved
        changed[cut, d] |= moved > 0
    given = (notes_given.to_numpy(dtype=object) if notes_given is not None
             else np.full(weights.shape, None, dtype=object))
    base = np.where(pd.isna(given) | (given == ""), plan.reason, given)
    stages = np.array(STAGES, dtype=object)[response.stage[position]]
    texts = np.array([f"drift {s} {e:.0%}: {c}" for s, e, c in zip(stages, scale, response.cause[position])],
                     dtype=object)
    notes = given.copy()
    i, j = np.nonzero(changed)
    notes[i, j] = [f"{b}; {t}" for b, t in zip(base[i, j], texts[i])]
    return dataclasses.replace(plan, frame=pd.DataFrame(new, index=frame.index, columns=columns),
                               notes=notes_frame(notes, frame.index, columns),
                               drift_events=response.events)
