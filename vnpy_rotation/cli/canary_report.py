"""The canary drill's report: the stages, every session's gate values, the rollback and what it cost.

Read from a replay's folder (``OUT/state/<strategy>.json`` holds the release's ledger, ``OUT/journal`` every
session's fills), written as ``drill.md``, ``drill_sessions.csv`` (one row per session and gate) and
``drill_stages.csv`` (the transitions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..canary.gates import GateValue
from ..live.canary_stage import CanaryLedger, SessionRecord
from ..live.state_file import read_json
from .canary_cmd import gate_line

SESSION_COLUMNS = ["date", "stage", "status", "share", "event", "gate", "kind", "value", "threshold", "passed", "note",
                   "candidate_equity", "champion_equity", "reconciled"]


@dataclass(frozen=True)
class DrillReport:
    strategy: str
    candidate: str
    champion: str
    stages: list[dict[str, Any]]  # the transitions
    rolled_back: bool
    trip: SessionRecord | None  # the session whose rule tripped, with its gates
    rollback_cost: dict[str, float]  # fees and slippage of the sessions that moved the capital back
    reconciled: bool  # the books summed to the broker account at every close
    folder: Path

    def summary(self) -> str:
        lines = [f"canary drill of {self.strategy}: candidate {self.candidate} beside champion {self.champion}"]
        lines += [f"  {row['day']}  {row['from']:<22} → {row['to']:<22} {row['event']}: {row['reason']}"
                  for row in self.stages]
        if self.trip is not None:
            lines.append(f"  rollback tripped on {self.trip.day}:")
            lines += ["    " + gate_line(asdict(g)) for g in self.trip.gates if g.kind == "rollback" and g.passed is False]
        cost = self.rollback_cost
        if self.rolled_back:
            lines.append(f"  rollback cost: {cost['fees']:,.2f} CNY fees + {cost['slippage']:,.2f} CNY slippage over "
                         f"{int(cost['sessions'])} session(s), {int(cost['orders'])} order(s)")
        else:
            lines.append("  no rollback: no rule tripped")
        lines.append(f"  books reconciled with the broker at every close: {'yes' if self.reconciled else 'NO'}")
        lines.append(f"  report: {self.folder / 'drill.md'}")
        return "\n".join(lines)


def _journal(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "journal").glob("*.json"))}


def write_drill_report(out: Path, strategy: str) -> DrillReport:
    from ..apps.rotation.canary_records import canary_view

    ledger = CanaryLedger.from_json((read_json(out / "state" / f"{strategy}.json") or {})["canary"])
    view = canary_view(ledger)
    rows = []
    for s in ledger.sessions:
        base = {"date": s.day, "stage": s.stage, "status": s.status, "share": s.share, "event": s.event,
                "candidate_equity": s.candidate_equity, "champion_equity": s.champion_equity,
                "reconciled": s.reconciled}
        for g in s.gates or (GateValue("", "report", None, None, None, s.reason),):
            rows.append({**base, "gate": g.name, "kind": g.kind, "value": g.value, "threshold": g.threshold,
                         "passed": g.passed, "note": g.note})
    pd.DataFrame(rows, columns=SESSION_COLUMNS).to_csv(out / "drill_sessions.csv", index=False)
    pd.DataFrame(view["history"], columns=["day", "from", "to", "event", "reason"]).to_csv(
        out / "drill_stages.csv", index=False)
    trip = next((s for s in ledger.sessions if s.event in ("rollback", "manual_rollback")), None)
    rolled_back = view["status"] in ("rolling_back", "rolled_back")
    cost = {"fees": 0.0, "slippage": 0.0, "sessions": 0.0, "orders": 0.0}
    if trip is not None:
        ended = next((s.day for s in ledger.sessions if s.event == "drained"), None)
        for day, record in _journal(out).items():
            if day <= trip.day or (ended is not None and day > ended):
                continue
            progress = record.get("progress") or {}
            fills = progress.get("fills", [])
            cost["fees"] += sum(f["commission"] + f["stamp_duty"] + f["transfer_fee"] for f in fills)
            cost["slippage"] += sum(f["slippage"] for f in fills)
            cost["orders"] += len(progress.get("orders", []))
            cost["sessions"] += 1
    report = DrillReport(strategy, ledger.candidate, ledger.champion, view["history"], rolled_back, trip, cost,
                         all(s.reconciled for s in ledger.sessions), out)
    _write_markdown(report, ledger, out / "drill.md")
    return report


def _write_markdown(report: DrillReport, ledger: CanaryLedger, path: Path) -> None:
    stages = ledger.config.stages
    lines = [f"# Canary drill: {report.strategy}", "",
             f"Candidate `{report.candidate}` beside champion `{report.champion}`, from {ledger.started}; "
             f"{len(ledger.sessions)} sessions of the canary replayed through the live stack (replay gateway); "
             "the drill stops when the canary ends.", "",
             "## Stage table", "", "| stage | share | min sessions |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.share:.0%} | {s.min_sessions} |" for s in stages]
    lines += ["", "## Transitions", "", "| day | from | to | event | reason |", "|---|---|---|---|---|"]
    lines += [f"| {r['day']} | {r['from']} | {r['to']} | {r['event']} | {r['reason']} |" for r in report.stages]
    lines += ["", "## Gates per session", "",
              "Promotion gates must all pass after a stage's minimum sessions; rollback rules are checked every "
              "session. Values are measured on the candidate's own book (`drill_sessions.csv` has every row).", "",
              "| day | stage | event | tracking bp | slippage bp | drawdown | VaR p | fill rate |",
              "|---|---|---|---|---|---|---|---|"]

    def value(session: SessionRecord, name: str) -> str:
        gate = next((g for g in session.gates if g.name == name and g.kind == "rollback"), None)
        if gate is None or gate.value is None:
            return "–"
        mark = " ❌" if gate.passed is False else ""
        return f"{gate.value:.4g}{mark}"

    for s in ledger.sessions:
        lines.append(f"| {s.day} | {s.stage} | {s.event} | {value(s, 'tracking_bp')} | "
                     f"{value(s, 'slippage_bp')} | {value(s, 'drawdown')} | {value(s, 'var_p_value')} | "
                     f"{value(s, 'fill_rate')} |")
    lines += ["", "## Rollback", ""]
    if report.trip is None:
        lines.append("No rollback rule tripped.")
    else:
        lines.append(f"Tripped on {report.trip.day}: {report.trip.reason}")
        cost = report.rollback_cost
        lines.append(f"Cost of moving the capital back: {cost['fees']:,.2f} CNY fees and {cost['slippage']:,.2f} CNY "
                     f"slippage over {int(cost['sessions'])} session(s) and {int(cost['orders'])} order(s).")
    if ledger.alias_log:
        lines += ["", "## Alias moves (rehearsed: a drill leaves the version registry untouched)", "",
                  "| alias | version | why |", "|---|---|---|"]
        lines += [f"| {m.alias} | {m.version or 'retired'} | {m.why} |" for m in ledger.alias_log]
    lines += ["", f"Books reconciled with the broker at every close: {'yes' if report.reconciled else 'NO'}.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
