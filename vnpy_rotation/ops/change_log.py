"""The change and rollback log of a run over a span, and the ADR skeleton pre-filled from it.

Sources, each row dated:

* the version aliases' audit rows (:meth:`VersionRegistry.alias_history`: who, why, when, from → to); a move of
  ``champion`` back to a version that was champion before is a **rollback**;
* the risk state file of the run (``OUT/state/risk_state.json``, read as data: ops sits below the risk app):
  rung changes (``history``), manual resets and cleared flags (``audit``, with who and why), alerts (``alerts``:
  a fail-safe raising a flag such as a release freeze, an exception-test zone change) and raised flags without
  an alert;
* the canary ledger in the strategy's state (``OUT/state/<strategy>.json``): every transition of the release;
  a ``rollback`` or ``manual_rollback`` event is a rollback.

A **parameter change** is a ``champion`` move to a version whose settings differ from those of the version
it left (the first champion counts: it differs from nothing); its experiments make it traceable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from ..live.state_file import read_json
from ..risk.events import RISK_STATE_FILE
from .versions import AliasMove, FieldDiff, Version, diff_versions

CHANGE_COLUMNS = ["date", "time", "kind", "scope", "change", "who", "why", "source"]
ROLLBACK_EVENTS = ("rollback", "manual_rollback")
TO_FILL = "_(to be filled in by the person who made it)_"


@dataclass(frozen=True)
class ParameterChange:
    """A champion move that changed the settings that trade."""

    move: AliasMove
    fields: tuple[FieldDiff, ...]  # the settings that differ (``settings.*``)
    experiments: tuple[str, ...] | None  # experiment ids behind the new version (None: no registry to ask)

    @property
    def traceable(self) -> bool | None:
        return None if self.experiments is None else bool(self.experiments)


def _day(text: str) -> str:
    return str(text)[:10]


def alias_rows(moves: Sequence[AliasMove]) -> list[dict[str, Any]]:
    """One row per alias move; champion moves back to a former champion are ``rollback``."""
    rows, champions = [], set()
    for move in moves:
        rollback = move.alias == "champion" and move.version_id is not None and move.version_id in champions
        if move.alias == "champion" and move.previous_id:
            champions.add(move.previous_id)
        rows.append({"date": _day(move.at), "time": move.at, "kind": "rollback" if rollback else "alias",
                     "scope": f"{move.strategy}:{move.alias}",
                     "change": f"{move.previous_id or '(none)'} → {move.version_id or '(retired)'}",
                     "who": move.who, "why": move.why, "source": "version registry"})
    return rows


def risk_rows(state_folder: Path) -> list[dict[str, Any]]:
    """Rung changes, manual resets, cleared and raised flags from the risk state file (none when absent)."""
    raw = read_json(state_folder / RISK_STATE_FILE) or {}
    source = f"{RISK_STATE_FILE}"
    rows = [{"date": h["day"], "time": h["day"], "kind": "risk_rung", "scope": h["scope"],
             "change": f"{h['before']} → {h['after']}", "who": h.get("source", "ladder"), "why": h["reason"],
             "source": source}
            for h in raw.get("history") or [] if h.get("source") != "reset"]  # resets: the audit rows say who
    rows += [{"date": _day(a["time"]), "time": a["time"],
              "kind": "risk_reset" if a.get("after") == "ACTIVE" else "risk_flag_cleared", "scope": a["scope"],
              "change": f"{a['before']} → {a['after']}", "who": a.get("who") or "(not recorded)",
              "why": a.get("reason", ""), "source": source}
             for a in raw.get("audit") or []]
    alerts = raw.get("alerts") or []
    rows += [{"date": a["day"], "time": a["day"], "kind": "risk_alert", "scope": a["scope"],
              "change": f"alert {a['kind']}", "who": "risk engine", "why": a.get("reason", ""), "source": source}
             for a in alerts]
    alerted = {(a["scope"], a["day"], a.get("reason", "")) for a in alerts}  # the engine alerts as it raises a flag
    rows += [{"date": f["day"], "time": f["day"], "kind": "risk_flag", "scope": f["scope"],
              "change": f"raised {f['flag']}", "who": "risk engine", "why": f.get("reason", ""), "source": source}
             for f in (raw.get("flags") or {}).values() if (f["scope"], f["day"], f.get("reason", "")) not in alerted]
    return rows


def canary_rows(state_folder: Path, strategy: str) -> list[dict[str, Any]]:
    """Every transition of the strategy's latest canary release (none without one)."""
    from ..live.plan import StrategyState

    raw = read_json(state_folder / f"{strategy}.json")
    ledger = StrategyState.from_json(raw).canary if raw else None
    if ledger is None:
        return []
    rows = []
    for t in ledger.machine.history:
        if t.from_status == t.to_status and t.from_stage == t.to_stage:
            continue  # a held session changes nothing
        event = t.event.value
        rows.append({"date": t.day.isoformat(), "time": t.day.isoformat(),
                     "kind": "canary_rollback" if event in ROLLBACK_EVENTS else "canary",
                     "scope": f"{strategy}:{ledger.candidate}",
                     "change": f"{event}: {t.from_status.value}/{t.from_stage} → {t.to_status.value}/{t.to_stage}",
                     "who": "operator" if event in ("manual_rollback", "approve", "reject") else "canary",
                     "why": t.reason, "source": f"{strategy}.json canary ledger"})
    return rows


def change_table(rows: Sequence[dict[str, Any]], start: date, end: date) -> pd.DataFrame:
    """The rows dated ``start`` … ``end``, in time order (:data:`CHANGE_COLUMNS`)."""
    frame = pd.DataFrame(list(rows), columns=CHANGE_COLUMNS)
    inside = frame["date"].between(start.isoformat(), end.isoformat())
    return frame[inside].sort_values(["date", "time"], kind="stable").reset_index(drop=True)


def parameter_changes(moves: Sequence[AliasMove], load: Callable[[str], Version],
                      experiments: Callable[[str], Sequence[Any]], start: date, end: date) -> list[ParameterChange]:
    """Champion moves dated ``start`` … ``end`` whose settings differ from the version before."""
    changes = []
    for move in moves:
        if move.alias != "champion" or move.version_id is None or not start.isoformat() <= _day(move.at) <= end.isoformat():
            continue
        new = load(move.version_id)
        if move.previous_id:
            fields = tuple(d for d in diff_versions(load(move.previous_id), new) if d.field.startswith("settings."))
        else:
            fields = tuple(FieldDiff(f"settings.{k}", None, v) for k, v in sorted(new.settings.items()))
        if fields:
            try:
                ids: tuple[str, ...] | None = tuple(str(getattr(e, "id", e)) for e in experiments(move.version_id))
            except ImportError:  # the experiment registry is not installed: traceability unknown
                ids = None
            changes.append(ParameterChange(move, fields, ids))
    return changes


def adr_markdown(week: str, strategy: str, changes: pd.DataFrame, parameters: Sequence[ParameterChange]) -> str:
    """An Architecture Decision Record skeleton for the week: title, status, context, decision, consequences,
    pre-filled with what was done; why it was done is left for a person."""
    lines = [f"# ADR {week}: {strategy} — {TO_FILL}", "", "- **Status**: proposed (proposed | accepted | superseded)",
             f"- **Week**: {week}", "", "## Context", ""]
    if not len(changes) and not parameters:
        lines += ["No alias move, parameter change, rollback or risk event this week.", ""]
    rolled = changes[changes["kind"].isin(("rollback", "canary_rollback"))]
    freezes = changes[changes["kind"].isin(("risk_flag", "risk_rung", "risk_alert"))]
    lines += [f"- {len(changes)} recorded changes, {len(parameters)} parameter changes, {len(rolled)} rollbacks, "
              f"{len(freezes)} risk alerts, flags or rung changes (see changes.md).", "", "## Decision", ""]
    for _, row in changes.iterrows():
        lines += [f"### {row['date']} {row['kind']} {row['scope']}: {row['change']}", "",
                  f"- What was done: {row['change']} by {row['who']} (recorded reason: {row['why'] or '—'})",
                  f"- Why: {TO_FILL}", ""]
    for change in parameters:
        move = change.move
        lines += [f"### Parameter change {move.at[:10]}: {move.strategy}:champion → {move.version_id}", "",
                  "| setting | before | after |", "|---|---|---|",
                  *(f"| {d.field.removeprefix('settings.')} | {d.a} | {d.b} |" for d in change.fields), "",
                  f"- Experiments behind it: {_experiments(change)}",
                  f"- Why: {TO_FILL}", ""]
    lines += ["## Consequences", ""]
    if len(rolled):
        lines += [f"- Rolled back: {r['date']} {r['scope']} {r['change']} ({r['why'] or '—'})"
                  for _, r in rolled.iterrows()]
    else:
        lines.append("- Rolled back: nothing this week.")
    lines += [f"- Was it worth it, what follows: {TO_FILL}", ""]
    return "\n".join(lines)


def _experiments(change: ParameterChange) -> str:
    if change.experiments is None:
        return "unknown (the experiment registry is not installed)"
    return ", ".join(change.experiments) or "none recorded (not traceable)"


def changes_markdown(week: str, changes: pd.DataFrame) -> str:
    """The change and rollback log as a markdown table."""
    lines = [f"# Change and rollback log {week}", ""]
    if not len(changes):
        return "\n".join(lines + ["No change recorded this week.", ""])
    lines += ["| " + " | ".join(CHANGE_COLUMNS) + " |", "|" + "---|" * len(CHANGE_COLUMNS)]
    lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
              for row in changes[CHANGE_COLUMNS].itertuples(index=False)]
    return "\n".join(lines + [""])
