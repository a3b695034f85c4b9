"""What a canary shows and what a human sends it: the view of a ledger (the GUI, ``run.py canary status``,
the drill report) and the command file a person's event waits in until the engine's next close."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ...canary import machine as release
from ...errors import InputRejected, Problem
from ...live.canary_stage import CanaryLedger
from ...live.plan import OrderPlan

COMMAND_SUFFIX = ".canary_command.json"
HUMAN_EVENTS = ("approve", "reject", "manual_rollback")


@dataclass(frozen=True)
class CanaryCommand:
    """A human's event for a strategy's canary (``to``: rollback to that version instead of the champion)."""

    event: str
    reason: str
    who: str
    to: str = ""
    at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="microseconds"))

    @property
    def key(self) -> str:
        """Identifies the command (the canary records which it applied, so a retried close skips it)."""
        return f"{self.at}|{self.event}|{self.who}"

    def to_json(self) -> dict[str, str]:
        return {"event": self.event, "reason": self.reason, "who": self.who, "to": self.to, "at": self.at}


def command_path(state_folder: Path, strategy: str) -> Path:
    return Path(state_folder) / f"{strategy}{COMMAND_SUFFIX}"


def with_holdings(plan: OrderPlan, holdings: dict[str, float]) -> OrderPlan:
    """A weight plan with a zero row for every held symbol it does not name (a holding the other version
    left: after a canary it is sold, not kept outside every target)."""
    missing = [s for s, v in holdings.items() if v and s not in plan.symbols]
    if not missing or not plan.weighted:
        return plan
    return replace(plan, symbols=list(plan.symbols) + missing, target=list(plan.target) + [0.0] * len(missing))


def canary_view(ledger: CanaryLedger) -> dict[str, Any]:
    """What the GUI and ``canary status`` show of a canary: versions, stage, share, the last session's gates,
    the transitions and both books' equity."""
    stages = ledger.config.stages
    state = ledger.machine
    last = ledger.sessions[-1].to_json() if ledger.sessions else None
    return {"strategy": ledger.strategy, "champion": ledger.champion, "candidate": ledger.candidate,
            "status": state.status.value, "stage": stages[state.stage].name, "stage_index": state.stage,
            "stages": [{"name": s.name, "share": s.share, "min_sessions": s.min_sessions} for s in stages],
            "sessions_in_stage": state.sessions, "share": release.share(state, stages),
            "approval": ledger.config.approval, "started": ledger.started,
            "last_session": last, "gates": [] if last is None else last["gates"],
            "history": [{"day": t.day.isoformat(), "event": t.event.value, "reason": t.reason,
                         "from": f"{t.from_status.value}/{stages[t.from_stage].name}",
                         "to": f"{t.to_status.value}/{stages[t.to_stage].name}"} for t in state.history
                        if t.from_status is not t.to_status or t.from_stage != t.to_stage],
            "books": {role: {"version": b.version, "paper": b.paper, "cash": b.cash, "holdings": b.holdings(),
                             "equity": b.equity[-1][1] if b.equity else None, "fees": dict(b.fees)}
                      for role, b in ledger.books.items()}}


def read_ledger(folder: Path, strategy: str, raw: Any) -> CanaryLedger:
    """The canary ledger stored in a strategy's state; a damaged one names the file and the field."""
    try:
        return CanaryLedger.from_json(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputRejected(Problem(str(Path(folder) / f"{strategy}.json"), None,
                                    f"canary: damaged or from another version ({type(exc).__name__}: {exc})")) from None
