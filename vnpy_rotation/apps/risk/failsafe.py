"""Each scope's exception verdict and fail-safes at its close, without vnpy: what the risk state file keeps.

- **Equity history**: the scope's close equities, the newest :data:`HISTORY_DAYS` kept (exactly what the
  verdict needs: a 250-session VaR window before each of the 250 judged sessions, plus one for the returns).
- **Exception verdict**: :func:`vnpy_rotation.backtest.risk_section.exception_verdict` on those closes (the
  99 % historical VaR's Basel traffic light and Kupiec p-value), never re-implemented here.
- **Fail-safes**: :func:`vnpy_rotation.risk.response.step` with the scope's persisted ``ResponseState``. A
  session's observations may arrive in pieces (the rotation app's drift alerts before the strategy's close,
  the replay's deviation after it): each piece re-steps the session from the state before it with
  everything observed that session so far. The observations only ever grow within a session, so a re-step
  never withdraws a flag, and a flag is reported once, on the piece that raised it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from ...backtest.risk_section import VAR_WINDOW, VERDICT_DAYS, daily_returns, exception_verdict
from ...risk.response import (
    DEFAULT_POLICY,
    Flag,
    Observations,
    RaisedFlag,
    ResponsePolicy,
    ResponseState,
    clear_flag,
    step,
)

HISTORY_DAYS = VAR_WINDOW + VERDICT_DAYS + 1  # closes kept per scope
RED = "red"


def append_equity(history: dict[str, float], day: date, equity: float) -> dict[str, float]:
    """``history`` (ISO day -> equity) with ``day``'s close, the newest :data:`HISTORY_DAYS` closes kept."""
    merged = {**history, day.isoformat(): float(equity)}
    return {d: merged[d] for d in sorted(merged)[-HISTORY_DAYS:]}


def verdict_of(history: dict[str, float]) -> dict[str, Any]:
    """The exception verdict of the closes in ``history`` (``status`` ``ok`` with ``zone``, ``exceptions``,
    ``kupiec_p``; or ``too short``), with ``closes``: how many closes it was judged on."""
    days = sorted(history)
    equity = pd.Series([history[d] for d in days], index=pd.DatetimeIndex(days), dtype=float)
    return exception_verdict(daily_returns(equity)) | {"closes": len(days)}


def zone_label(verdict: dict[str, Any] | None) -> str:
    """What the window's zone column shows, e.g. ``red: 10 exceptions / 250 d, Kupiec p 0.000``."""
    if not verdict:
        return ""
    if verdict.get("status") != "ok":
        return f"too short ({verdict['closes']}/{HISTORY_DAYS} closes)"
    return (f"{verdict['zone']}: {verdict['exceptions']} exceptions / {verdict['days']} d, "
            f"Kupiec p {verdict['kupiec_p']:.3f}")


def major_reasons(rung: str, verdict: dict[str, Any] | None) -> tuple[str, ...]:
    """The major risk thresholds a scope breaches at its close: its ladder HALTED, its VaR zone red."""
    reasons = [f"ladder {rung}"] if rung == "HALTED" else []
    if verdict and verdict.get("zone") == RED:
        reasons.append(f"VaR exception test red ({verdict['exceptions']} exceptions / {verdict['days']} d)")
    return tuple(reasons)


def _merge(old: Observations, new: Observations) -> Observations:
    deviations = [d for d in (old.deviation, new.deviation) if d is not None]
    return Observations(drift=tuple(dict.fromkeys(old.drift + new.drift)),
                        major=tuple(dict.fromkeys(old.major + new.major)),
                        deviation=max(deviations) if deviations else None)


def observe(record: dict[str, Any] | None, day: date, observations: Observations,
            policy: ResponsePolicy = DEFAULT_POLICY) -> tuple[dict[str, Any], tuple[RaisedFlag, ...]] | None:
    """Add ``observations`` to ``day``'s session of a scope whose persisted record is ``record`` (None: none
    yet). Returns the new record and the flags this piece raised; None when ``day`` is before the session
    last stepped (too late to count)."""
    if record is None:
        record = {"day": None, "before": ResponseState().model_dump(mode="json"),
                  "state": ResponseState().model_dump(mode="json"),
                  "observations": Observations().model_dump(mode="json")}
    state = ResponseState.model_validate(record["state"])
    iso = day.isoformat()
    if record["day"] is not None and iso < record["day"]:
        return None
    if record["day"] == iso:  # another piece of the same session: re-step it with everything seen so far
        before = ResponseState.model_validate(record["before"])
        seen = _merge(Observations.model_validate(record["observations"]), observations)
    else:
        before, seen = state, observations
    new, _ = step(before, seen, day, policy)
    raised = tuple(f for f in new.flags if state.raised(f.flag) is None)
    return ({"day": iso, "before": before.model_dump(mode="json"), "state": new.model_dump(mode="json"),
             "observations": seen.model_dump(mode="json")}, raised)


def clear(record: dict[str, Any], flag: Flag, reason: str, day: date,
          policy: ResponsePolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """``record`` with ``flag`` cleared (ValueError when it is not raised or ``reason`` is empty). The state
    before the last session is cleared too, so a re-step of that session counts the condition afresh."""
    state, _ = clear_flag(ResponseState.model_validate(record["state"]), flag, reason, day, policy)
    before = ResponseState.model_validate(record["before"])
    if before.raised(flag) is not None:
        before, _ = clear_flag(before, flag, reason, day, policy)
    else:
        conditions = {r.condition for r in policy.failsafes if r.flag == flag}
        before = before.model_copy(update={"condition_sessions": {
            c: 0 if c in conditions else n for c, n in before.condition_sessions.items()}})
    # the session's observations of the cleared condition are acknowledged: a later piece of the same session
    # must not raise the flag again from them
    seen = Observations.model_validate(record["observations"])
    cleared = {"drift": {"drift": ()}, "major": {"major": ()}, "deviation": {"deviation": None}}
    for condition in {r.condition for r in policy.failsafes if r.flag == flag}:
        seen = seen.model_copy(update=cleared.get(condition, {}))
    return {**record, "before": before.model_dump(mode="json"), "state": state.model_dump(mode="json"),
            "observations": seen.model_dump(mode="json")}


def check_record(record: dict[str, Any]) -> None:
    """Validate a persisted record (a damaged one raises ValueError / KeyError)."""
    ResponseState.model_validate(record["state"])
    ResponseState.model_validate(record["before"])
    Observations.model_validate(record["observations"])
