"""The risk app's state without vnpy: the account ladder, each strategy's rung, the history, the audit rows,
the denials, each scope's close equities, exception verdict and fail-safe state, and the raised flags,
persisted atomically as one JSON file.

:class:`RiskStateFile` is what the engine mutates on the event thread and what ``run.py risk status`` /
``risk reset`` read and write with no MainEngine running. The ladder itself is :mod:`vnpy_rotation.risk.ladder`
(stepped here, never re-implemented).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args

import numpy as np

from ...allocation import AllocationDecision
from ...errors import InputRejected, Problem
from ...live.state_file import read_json, write_atomic
from ...risk.config import RiskConfig
from ...risk.events import (
    ACCOUNT,
    RISK_STATE_FILE,
    RiskAlert,
    RiskDenial,
    RiskStateChange,
    StrategyRiskUpdate,
    order_denial,
)
from ...risk.ladder import (
    ACTIVE,
    DAY_RETURN,
    HALTED,
    LADDER_STATE,
    P_FLATTEN,
    P_MEASURE,
    RUNGS,
    S_LAST,
    S_PEAK,
    S_RUNG,
    S_TRIGGER,
    ladder_params,
    ladders_step,
    new_state,
    reset,
)
from ...risk.response import Flag, Observations
from . import failsafe

STATE_FILENAME = RISK_STATE_FILE
STATE_VERSION = 1
DENIAL_LOG = "risk_denials.jsonl"  # every denial, one JSON object per line, appended as it happens
FLAG_NAMES: tuple[str, ...] = get_args(Flag)  # the fail-safe rows' flags
MAX_ALLOCATIONS = 100  # allocation decisions kept (each re-allocation)
MAX_DENIALS = 500  # the newest denials (and alerts) kept in the file (the log keeps them all)


@dataclass(frozen=True)
class Gate:
    """What an order of one scope meets: the rung and whether a HALTED rung flattens (else it freezes)."""

    rung: str = "ACTIVE"
    flatten: bool = True


class RiskStateFile:
    """The risk app's persisted state in ``folder / risk_state.json``.

    ``config`` is the account's :class:`RiskConfig` (its ladder and daily loss limit); ``None`` keeps the
    one stored in the file (or the default, off, when there is none). ``read_only``: a reader beside the
    running engine (the dashboard) never cuts a torn last denial line, which may be a write in progress.
    """

    def __init__(self, folder: Path, config: RiskConfig | None = None, *, read_only: bool = False) -> None:
        self.path = Path(folder) / STATE_FILENAME
        self.read_only = read_only
        self.lock = threading.RLock()
        raw = read_json(self.path, None) or {}
        self.gates: dict[str, Gate] = {}
        try:
            self._load(raw, config)
            self._refresh_gates()
            self.rows()  # every stored row readable (verdicts, strategies, equity), or the file is refused
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # ValidationError is a ValueError
            raise InputRejected(Problem(str(self.path), None, f"damaged risk state ({type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0]}); restore it from a backup or move it "
                                        "away to start afresh")) from None

    def _load(self, raw: dict[str, Any], config: RiskConfig | None) -> None:
        stored = RiskConfig.model_validate(raw["config"]) if raw.get("config") else None
        self.config = config or stored or RiskConfig()
        self.params = ladder_params([self.config.ladder, self.config.daily_loss])
        account = raw.get("account") or {}
        self.state = new_state(len(self.params))
        saved = np.array(account.get("state") or [], dtype=float).reshape(-1, LADDER_STATE)
        same = stored is None or (stored.ladder, stored.daily_loss) == (self.config.ladder, self.config.daily_loss)
        if saved.shape == self.state.shape and same:  # (the limits or drift sections may change freely)
            self.state[:] = saved
        elif len(saved):  # the ladders were reconfigured: keep the worst rung and the peak, never relax them
            self.state[:, S_RUNG] = saved[:, S_RUNG].max()
            self.state[:, S_PEAK] = saved[:, S_PEAK].max()
            self.state[:, S_LAST] = saved[-1, S_LAST]
        self.session: int = int(account.get("session", 0))
        self.last_day: str | None = account.get("last_day")
        self.since: str | None = account.get("since")
        self.reason: str = account.get("reason", "")
        self.equity: float | None = account.get("equity")
        self.strategies: dict[str, dict[str, Any]] = dict(raw.get("strategies") or {})
        for entry in self.strategies.values():
            StrategyRiskUpdate.from_json(entry)  # every field there, the rung one of RUNGS
        self.history: list[dict[str, Any]] = list(raw.get("history") or [])
        self.audit: list[dict[str, Any]] = list(raw.get("audit") or [])
        self.denials: list[dict[str, Any]] = list(raw.get("denials") or [])
        self.denial_log = self.path.with_name(DENIAL_LOG)
        logged = _read_lines(self.denial_log, repair=not self.read_only)
        if logged:  # newer than the snapshot: denials are appended there as they happen
            self.denials = logged[-MAX_DENIALS:]
        # raised fail-safe flags by "<scope>.<flag>" (an older file's keys are the bare flag names)
        self.flags: dict[str, dict[str, Any]] = {}
        for key, value in (raw.get("flags") or {}).items():
            entry = {"flag": value.get("flag", key), **value}
            self.flags[flag_key(entry["scope"], entry["flag"])] = entry
        self.alerts: list[dict[str, Any]] = list(raw.get("alerts") or [])
        # per scope: ISO day -> close equity, the latest exception verdict, the fail-safes' response record
        self.equities: dict[str, dict[str, float]] = {
            scope: {str(d): float(e) for d, e in days.items()} for scope, days in (raw.get("equities") or {}).items()}
        self.verdicts: dict[str, dict[str, Any]] = dict(raw.get("verdicts") or {})
        self.responses: dict[str, dict[str, Any]] = dict(raw.get("responses") or {})
        for record in self.responses.values():
            failsafe.check_record(record)
        # the capital allocation in force (an AllocationDecision's JSON) and the earlier decisions, newest last
        self.allocation: dict[str, Any] | None = raw.get("allocation")
        self.allocations: list[dict[str, Any]] = list(raw.get("allocations") or [])
        if self.allocation is not None:
            AllocationDecision.from_json(self.allocation)  # every field there

    # -- the account ladder -------------------------------------------------------------------------
    def account_gate(self) -> Gate:
        return self.gates.get(ACCOUNT, Gate())

    def account_peak(self) -> float | None:
        drawdown = [k for k in range(len(self.params)) if self.params[k, P_MEASURE] != DAY_RETURN]
        peaks = [float(self.state[k, S_PEAK]) for k in drawdown if self.state[k, S_PEAK] > 0]
        return max(peaks) if peaks else None

    def evaluate(self, day: date, equity: float) -> list[RiskStateChange]:
        """One session close of the account ladder at ``equity``; once per day (a repeated or an earlier day
        changes nothing and returns ``[]``). Returns the rung changes, already in the history."""
        with self.lock:
            iso = day.isoformat()
            if self.last_day is not None and iso <= self.last_day:
                return []
            before = self.account_gate().rung
            rows = self.state[:, S_RUNG].copy()
            self.session += 1
            self.last_day, self.equity = iso, float(equity)
            if len(self.params):
                ladders_step(self.session, float(equity), self.params, self.state)
            self._refresh_gates()
            after = self.account_gate().rung
            changes: list[RiskStateChange] = []
            moved = [self._ladder_note(k, int(rows[k])) for k in range(len(self.params))
                     if int(self.state[k, S_RUNG]) != int(rows[k])]
            if moved and before != after:
                self.since, self.reason = iso, "; ".join(moved)
                changes.append(self._record(RiskStateChange(ACCOUNT, day, before, after, self.reason, "ladder")))
            elif moved:  # a second ladder moved beneath the binding one: its reason still counts
                self.reason = "; ".join(moved)
            return changes

    def _ladder_note(self, k: int, before: int) -> str:
        label = "daily loss" if self.params[k, P_MEASURE] == DAY_RETURN else "drawdown"
        after = int(self.state[k, S_RUNG])
        return f"{label} {float(self.state[k, S_TRIGGER]):+.2%}: {RUNGS[before]} -> {RUNGS[after]}"

    # -- strategies ---------------------------------------------------------------------------------
    def update_strategy(self, update: StrategyRiskUpdate) -> RiskStateChange | None:
        """A strategy's rung at its close, as the rotation app reports it; the change, if any."""
        if update.strategy == ACCOUNT:
            raise ValueError(f"a strategy may not be named {ACCOUNT!r}")
        with self.lock:
            old = self.strategies.get(update.strategy)
            before = old["rung"] if old else "ACTIVE"
            since = old["since"] if old and before == update.rung else update.day.isoformat()
            self.strategies[update.strategy] = {**update.to_json(), "since": since}
            self._refresh_gates()
            if before == update.rung:
                return None
            reason = "; ".join(update.reasons) or f"{update.strategy}'s ladder"
            return self._record(RiskStateChange(update.strategy, update.day, before, update.rung, reason,
                                                "strategy"))

    # -- manual reset ---------------------------------------------------------------------------------
    def reset(self, scope: str, reason: str, now: datetime, who: str = "") -> RiskStateChange:
        """Return ``scope`` (``"account"`` or a strategy name) to ACTIVE. Needs a reason; writes an audit row
        and a history row (the history is only ever appended to)."""
        reason = reason.strip()
        if not reason:
            raise InputRejected(Problem("--reason", None, "a manual reset needs a non-empty reason"))
        with self.lock:
            day = date.fromisoformat(self.last_day) if self.last_day else now.date()
            if scope == ACCOUNT:
                before = self._refuse_active(scope, self.account_gate().rung)
                equity = self.equity if self.equity is not None else 0.0  # 0: the next close sets the peak
                for k in range(len(self.params)):
                    if int(self.state[k, S_RUNG]) != ACTIVE:
                        reset(self.state, k, self.session, equity)
                self.since, self.reason = day.isoformat(), f"manual reset: {reason}"
            elif scope in self.strategies:
                before = self._refuse_active(scope, self.strategies[scope]["rung"])
                self.strategies[scope] = {**self.strategies[scope], "rung": "ACTIVE", "since": day.isoformat(),
                                          "reasons": [f"manual reset: {reason}"]}
            else:
                known = ", ".join([ACCOUNT, *sorted(self.strategies)])
                raise InputRejected(Problem("--strategy", None, f"no strategy named {scope!r} in {self.path}; "
                                            f"choose from {known}"))
            self._refresh_gates()
            self.audit.append({"time": now.isoformat(timespec="seconds"), "scope": scope, "before": before,
                               "after": "ACTIVE", "reason": reason, "who": who})
            return self._record(RiskStateChange(scope, day, before, "ACTIVE", f"manual reset: {reason}", "reset"))

    @staticmethod
    def _refuse_active(scope: str, rung: str) -> str:
        if rung == "ACTIVE":
            raise InputRejected(Problem("--strategy", None, f"{scope} is ACTIVE already: nothing to reset"))
        return rung

    # -- orders ---------------------------------------------------------------------------------------
    def check(self, strategy: str, buy: bool) -> tuple[str, str] | None:
        """``(rung, reason)`` when an order of ``strategy`` (``""``: none) must be refused, else None.
        The account ladder binds every order; a known strategy's own rung binds its orders too."""
        scopes = [(ACCOUNT, self.gates.get(ACCOUNT, Gate()))]
        own = self.gates.get(strategy) if strategy else None
        if own is not None:
            scopes.append((strategy, own))
        denied = [(scope, gate.rung, why) for scope, gate in scopes
                  if (why := order_denial(gate.rung, gate.flatten, buy)) is not None]
        if not denied:
            return None
        rung = max((r for _, r, _ in denied), key=RUNGS.index)
        return rung, "; ".join(f"{scope} {why}" for scope, _, why in denied)

    def record_denial(self, denial: RiskDenial) -> None:
        """Keep ``denial`` and append it to the denial log: one line, no rewrite of the whole state (a
        refused order is answered in microseconds, not after an fsync of the state file)."""
        row = denial.to_json()
        with self.lock:
            self.denials.append(row)
            del self.denials[:-MAX_DENIALS]
            self.denial_log.parent.mkdir(parents=True, exist_ok=True)
            with self.denial_log.open("a", encoding="utf-8") as log:
                log.write(json.dumps(row, ensure_ascii=False) + "\n")

    # -- alerts and flags (monitors raise alerts, fail-safes flags; the canary stage acts on the flags) --
    def record_alert(self, alert: RiskAlert) -> None:
        with self.lock:
            self.alerts.append(alert.to_json())
            del self.alerts[:-MAX_DENIALS]

    def raise_flag(self, name: str, scope: str, day: date, reason: str) -> None:
        with self.lock:
            self.flags[flag_key(scope, name)] = {"flag": name, "scope": scope, "day": day.isoformat(),
                                                 "reason": reason}

    def freezes(self, strategy: str) -> list[tuple[str, str]]:
        """The raised ``release_freeze`` flags that hold ``strategy``'s releases (its own, the account's or every
        scope's), as (scope, reason)."""
        return [(f["scope"], f"{f.get('reason', '')} (since {f.get('day', '?')})") for f in self.flags.values()
                if f.get("flag") == "release_freeze" and f.get("scope") in (strategy, ACCOUNT, "*")]

    def clear_flag(self, name: str, scope: str, reason: str, now: datetime, who: str = "") -> dict[str, Any]:
        """Clear the raised flag ``name`` of ``scope`` (an operator's decision: needs a reason, audited). The
        fail-safe's count starts again, so a new episode needs its full run of sessions to raise it anew.
        Returns the cleared flag's entry."""
        reason = reason.strip()
        if not reason:
            raise InputRejected(Problem("--reason", None, "clearing a flag needs a non-empty reason"))
        with self.lock:
            entry = self.flags.get(flag_key(scope, name)) or self.flags.get(name)
            if entry is None or entry.get("scope") != scope:
                raised = ", ".join(f"{f['flag']} ({f['scope']})" for f in self.flags.values()) or "none"
                raise InputRejected(Problem("--flag", None, f"{name} is not raised on {scope}; raised: {raised}"))
            record = self.responses.get(scope)
            if record is not None and name in FLAG_NAMES:
                try:
                    self.responses[scope] = failsafe.clear(record, name, reason, now.date())  # type: ignore[arg-type]
                except ValueError:  # raised by hand (raise_alert), not by the scope's fail-safe rows
                    pass
            self.flags = {k: v for k, v in self.flags.items() if v is not entry}
            self.audit.append({"time": now.isoformat(timespec="seconds"), "scope": scope, "before": name,
                               "after": "cleared", "reason": reason, "who": who})
            return entry

    # -- the exception verdict and the fail-safes of a scope at its close -----------------------------
    def close_scope(self, scope: str, day: date, equity: float, rung: str) -> tuple[
            list[RiskAlert], list[tuple[RiskAlert, Flag]]]:
        """``scope``'s close: keep its equity, judge its exception verdict, step its fail-safes with the major
        thresholds it breaches (HALTED, a red zone). Returns the alerts (a zone change) and the flags raised,
        each with its alert; the caller records and publishes them."""
        with self.lock:
            self.equities[scope] = failsafe.append_equity(self.equities.get(scope, {}), day, equity)
            old = self.verdicts.get(scope)
            verdict = failsafe.verdict_of(self.equities[scope])
            self.verdicts[scope] = verdict
            alerts = []
            if verdict["zone"] is not None and verdict["zone"] != (old or {}).get("zone"):
                was = (old or {}).get("zone") or "none"
                alerts.append(RiskAlert("var", scope, day, f"exception test zone {was} -> "
                                                           f"{failsafe.zone_label(verdict)}"))
            major = failsafe.major_reasons(rung, verdict)
            return alerts, self.observe(scope, day, Observations(major=major))

    def observe(self, scope: str, day: date, observations: Observations) -> list[tuple[RiskAlert, Flag]]:
        """Add ``observations`` to ``scope``'s session ``day`` and step its fail-safes; the flags raised, each
        with its alert (none when ``day`` is before the session last stepped)."""
        with self.lock:
            stepped = failsafe.observe(self.responses.get(scope), day, observations)
            if stepped is None:
                return []
            self.responses[scope], raised = stepped
            return [(RiskAlert("failsafe", scope, day, f"{f.flag}: {f.reason}"), f.flag) for f in raised]

    # -- capital allocation ---------------------------------------------------------------------------
    def allocation_decision(self) -> AllocationDecision | None:
        """The allocation in force (None: none decided yet, nothing is capped)."""
        with self.lock:
            return None if self.allocation is None else AllocationDecision.from_json(self.allocation)

    def set_allocation(self, decision: AllocationDecision, changed: bool) -> None:
        """Keep ``decision`` as the allocation in force; a ``changed`` one also joins the decisions' history."""
        with self.lock:
            self.allocation = decision.to_json()
            if changed:
                self.allocations = (self.allocations + [self.allocation])[-MAX_ALLOCATIONS:]

    # -- persistence and views ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {"version": STATE_VERSION, "config": self.config.model_dump(mode="json"),
                    "account": {"state": self.state.tolist(), "session": self.session, "last_day": self.last_day,
                                "since": self.since, "reason": self.reason, "equity": self.equity},
                    "strategies": self.strategies, "history": self.history, "audit": self.audit,
                    "denials": self.denials, "alerts": self.alerts, "flags": self.flags,
                    "equities": self.equities, "verdicts": self.verdicts, "responses": self.responses,
                    "allocation": self.allocation, "allocations": self.allocations}

    def save(self) -> None:
        with self.lock:  # two threads saving: the later state must be the one left on disk
            write_atomic(self.path, self.to_json())

    def rows(self) -> list[dict[str, Any]]:
        """One row per scope (the account first): rung, since, peak, equity, drawdown, reasons, flags, the
        latest exception verdict (None before the first close) and the response ladder's stage."""
        with self.lock:
            peak, equity = self.account_peak(), self.equity
            rows = [{"scope": ACCOUNT, "rung": self.account_gate().rung, "since": self.since, "peak": peak,
                     "equity": equity, "drawdown": _drawdown(equity, peak),
                     "reasons": [self.reason] if self.reason else [], "flags": self._flags_of(ACCOUNT),
                     **self._watch_of(ACCOUNT)}]
            for name in sorted(self.strategies):
                s = self.strategies[name]
                rows.append({"scope": name, "rung": s["rung"], "since": s["since"], "peak": s["peak"],
                             "equity": s["equity"], "drawdown": _drawdown(s["equity"], s["peak"]),
                             "reasons": list(s["reasons"]), "flags": self._flags_of(name), **self._watch_of(name)})
            return rows

    def _flags_of(self, scope: str) -> list[str]:
        return sorted(flag["flag"] for flag in self.flags.values() if flag.get("scope") in (scope, "*"))

    def _watch_of(self, scope: str) -> dict[str, Any]:
        record = self.responses.get(scope)
        return {"verdict": self.verdicts.get(scope), "zone": failsafe.zone_label(self.verdicts.get(scope)),
                "stage": record["state"]["stage"] if record else "normal"}

    def _refresh_gates(self) -> None:
        """The rung each scope's orders meet, kept ready for the order path (a dict lookup per order)."""
        halted = [k for k in range(len(self.params)) if int(self.state[k, S_RUNG]) == HALTED]
        account = Gate(RUNGS[int(self.state[:, S_RUNG].max())] if len(self.params) else "ACTIVE",
                       all(self.params[k, P_FLATTEN] != 0 for k in halted))
        gates = {ACCOUNT: account}
        for name, s in self.strategies.items():
            gates[name] = Gate(s["rung"], bool(s.get("flatten", True)))
        self.gates = gates

    def _record(self, change: RiskStateChange) -> RiskStateChange:
        self.history.append(change.to_json())
        return change


def flag_key(scope: str, name: str) -> str:
    """A raised flag's key in the state file: one per scope and flag."""
    return f"{scope}.{name}"


def _drawdown(equity: float | None, peak: float | None) -> float | None:
    if equity is None or peak is None or not peak > 0:
        return None
    return equity / peak - 1.0


def _read_lines(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` (none when it does not exist). A torn last line (a crash mid-write) is
    dropped -- with ``repair``, cut from the file too, so the next line appended starts cleanly; any other
    damaged line is refused naming the file and line."""
    if not path.exists():
        return []
    rows = []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                if repair:
                    with path.open("r+", encoding="utf-8") as log:
                        log.truncate(len(text[: text.rfind("\n") + 1].encode("utf-8")))
                break
            raise InputRejected(Problem(str(path), number, f"damaged denial log: {exc}")) from None
    return rows
