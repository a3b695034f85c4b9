"""CanaryEngine: the canary app's control plane over the version registry and the rotation engine's canaries.

It runs nothing itself. The versions and their aliases are the registry's (:mod:`vnpy_rotation.ops.versions`);
a running canary is the rotation engine's (its ledger in the strategy's persisted state, stepped at each close
by :class:`~vnpy_rotation.apps.rotation.canary.CanaryDriver`): the two versions must be netted into the one
order plan of that engine, so the release cannot live anywhere else. This engine reads both into one typed
:class:`CanarySnapshot`, published as :data:`EVENT_CANARY_VIEW` whenever a strategy's canary or version moves,
and sends the human events (approve, reject, manual rollback) through the driver's own checks: a command the
release table refuses raises at once and nothing is written.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from vnpy.event import Event, EventEngine
from vnpy.trader.engine import BaseEngine, MainEngine

from ...canary.release import GateResult
from ...errors import InputRejected, Problem
from ...live.state_file import read_json
from ..rotation.canary_records import CanaryCommand, command_path
from ..rotation.engine import APP_NAME as ROTATION_APP
from ..rotation.engine import EVENT_ROTATION_STRATEGY

if TYPE_CHECKING:
    from ...ops.versions import VersionRegistry
    from ..rotation.engine import RotationEngine, StrategyInstance

APP_NAME = "RotationCanary"
EVENT_CANARY_VIEW = "eRotationCanaryView"
EVENT_CANARY_LOG = "eRotationCanaryLog"
EVENT_CANARY_REFRESH = "eRotationCanaryRefresh"  # a request for a new view, served on the event thread
RISK_APP = "RotationRisk"  # the risk app's engine: its release_freeze flags hold a release check


@dataclass(frozen=True)
class VersionRow:
    """A stored version as the versions table shows it."""

    id: str
    strategy: str
    created: str
    sharpe: float | None
    max_drawdown: float | None
    aliases: tuple[str, ...]  # the aliases of its strategy pointing at it
    note: str


@dataclass(frozen=True)
class AliasRow:
    """One alias move of the registry's audit rows."""

    at: str
    strategy: str
    alias: str
    previous: str | None
    version: str | None  # None: retired
    who: str
    why: str


@dataclass(frozen=True)
class StageRow:
    name: str
    share: float
    min_sessions: int
    state: str  # done | current | next; the current one is "rolling back" / "rolled back" during a rollback


@dataclass(frozen=True)
class GateRow:
    name: str
    kind: str  # promote | rollback | report
    value: float | None
    threshold: float | None
    result: str  # passed | failed | not evaluated | reported
    note: str


@dataclass(frozen=True)
class TransitionRow:
    day: str
    event: str
    source: str  # status/stage before
    target: str  # status/stage after
    reason: str


@dataclass(frozen=True)
class BookRow:
    role: str  # champion | candidate
    version: str
    paper: bool  # a shadow stage's paper book (no orders)
    equity: float | None
    cash: float
    holdings: int  # symbols held
    fees: float  # commission, stamp duty and transfer fees so far


@dataclass(frozen=True)
class StrategyCanary:
    """One strategy of the rotation engine: the version it runs and its canary (the last one, ended or not)."""

    strategy: str
    version: str  # the version the instance runs ("" when its settings were never registered)
    aliases: dict[str, str]  # alias -> version id
    canary: bool  # a canary was started on it (running or ended)
    running: bool  # that canary is still running
    champion: str = ""
    candidate: str = ""
    status: str = ""
    stage: str = ""
    share: float = 0.0
    sessions_in_stage: int = 0
    approval: str = ""
    started: str = ""
    last_day: str = ""  # the last session the canary closed
    last_event: str = ""
    last_reason: str = ""
    stages: tuple[StageRow, ...] = ()
    gates: tuple[GateRow, ...] = ()
    history: tuple[TransitionRow, ...] = ()
    books: tuple[BookRow, ...] = ()
    pending: CanaryCommand | None = None  # a human's command waiting for the next close


@dataclass(frozen=True)
class CanarySnapshot:
    """What the canary manager shows: every stored version, the rotation engine's strategies, the alias moves."""

    versions: tuple[VersionRow, ...]
    strategies: tuple[StrategyCanary, ...]
    alias_moves: tuple[AliasRow, ...]

    def strategy(self, name: str) -> StrategyCanary | None:
        return next((s for s in self.strategies if s.strategy == name), None)


def gate_result(passed: bool | None, kind: str) -> str:
    if kind == "report":
        return "reported"
    return "not evaluated" if passed is None else "passed" if passed else "failed"


def strategy_canary(name: str, version: str, aliases: dict[str, str], view: dict[str, Any] | None,
                    pending: CanaryCommand | None) -> StrategyCanary:
    """A strategy's row from the rotation engine's ``canary_view`` (None: no canary was ever started)."""
    if view is None:
        return StrategyCanary(name, version, aliases, canary=False, running=False, pending=pending)
    current, status = int(view["stage_index"]), view["status"]
    terminal = status in ("complete", "rolled_back")
    here = {"rolling_back": "rolling back", "rolled_back": "rolled back", "complete": "done"}.get(status, "current")
    stages = tuple(StageRow(s["name"], float(s["share"]), int(s["min_sessions"]),
                            "done" if k < current or status == "complete" else here if k == current else "next")
                   for k, s in enumerate(view["stages"]))
    gates = tuple(GateRow(g["name"], g["kind"], g["value"], g["threshold"], gate_result(g["passed"], g["kind"]),
                          g.get("note", "")) for g in view["gates"])
    history = tuple(TransitionRow(t["day"], t["event"], t["from"], t["to"], t["reason"]) for t in view["history"])
    books = tuple(BookRow(role, b["version"], bool(b["paper"]), b["equity"], float(b["cash"]),
                          sum(1 for v in b["holdings"].values() if v), float(sum(b["fees"].values())))
                  for role, b in view["books"].items())
    last = view.get("last_session") or {}
    return StrategyCanary(
        name, version, aliases, canary=True, running=not terminal, champion=view["champion"],
        candidate=view["candidate"], status=view["status"], stage=view["stage"], share=float(view["share"]),
        sessions_in_stage=int(view["sessions_in_stage"]), approval=view["approval"], started=view["started"],
        last_day=last.get("day", ""), last_event=last.get("event", ""), last_reason=last.get("reason", ""),
        stages=stages, gates=gates, history=history, books=books, pending=pending)


class CanaryEngine(BaseEngine):
    """Versions, aliases and the rotation engine's canaries in one view; the human events of a release."""

    def __init__(self, main_engine: MainEngine, event_engine: EventEngine) -> None:
        super().__init__(main_engine, event_engine, APP_NAME)
        self._registry: VersionRegistry | None = None
        self._seen: dict[str, tuple[Any, ...]] = {}  # strategy -> what its last event said (version, canary state)
        self.snapshot_cache: CanarySnapshot | None = None
        self.event_engine.register(EVENT_ROTATION_STRATEGY, self._process_strategy)
        self.event_engine.register(EVENT_CANARY_REFRESH, self._process_refresh)

    # -- sources --------------------------------------------------------------------------------------------
    @property
    def rotation(self) -> RotationEngine:
        engine = cast("RotationEngine | None", self.main_engine.get_engine(ROTATION_APP))
        if engine is None:
            raise InputRejected(Problem(APP_NAME, None, "the rotation app (RotationStrategy) is not added"))
        return engine

    @property
    def registry(self) -> VersionRegistry:
        """The project's version registry (its database is vnpy's, opened on first use)."""
        if self._registry is None:
            from ...ops.versions import VersionRegistry

            self._registry = VersionRegistry()
        return self._registry

    def _instance(self, strategy: str) -> StrategyInstance:
        instance = self.rotation.instances.get(strategy)
        if instance is None:
            raise InputRejected(Problem("strategy", None, f"no rotation strategy named {strategy!r}"))
        return instance

    def pending(self, strategy: str) -> CanaryCommand | None:
        """The human command waiting for ``strategy``'s next close (the rotation engine takes it there)."""
        folder = self.rotation.state_folder
        raw = read_json(command_path(folder, strategy)) if folder is not None else None
        if not raw:
            return None
        return CanaryCommand(str(raw.get("event", "")), str(raw.get("reason", "")), str(raw.get("who", "")),
                             str(raw.get("to", "")))

    # -- the view -------------------------------------------------------------------------------------------
    def snapshot(self) -> CanarySnapshot:
        """Every stored version with the aliases pointing at it, each rotation strategy with its canary, and the
        alias moves of those strategies (newest first)."""
        rotation = cast("RotationEngine | None", self.main_engine.get_engine(ROTATION_APP))
        instances = dict(rotation.instances) if rotation is not None else {}
        versions = self.registry.versions()
        names = sorted(set(instances) | {v.strategy for v in versions})
        aliases = {name: self.registry.aliases(name) for name in names}
        pointing: dict[str, list[str]] = {}
        for name in names:
            for alias, vid in aliases[name].items():
                pointing.setdefault(vid, []).append(alias)
        rows = tuple(VersionRow(v.id, v.strategy, v.created_at, _number(v.metrics.get("sharpe")),
                                _number(v.metrics.get("max_drawdown")), tuple(pointing.get(v.id, [])), v.note)
                     for v in versions)
        strategies = []
        for name in sorted(instances):
            view = cast("RotationEngine", rotation).snapshot(instances[name])
            strategies.append(strategy_canary(name, view.get("version", ""), aliases[name], view.get("canary"),
                                              self.pending(name)))
        moves = sorted((m for name in names for m in self.registry.alias_history(name)), key=lambda m: -m.seq)
        self.snapshot_cache = CanarySnapshot(rows, tuple(strategies), tuple(
            AliasRow(m.at, m.strategy, m.alias, m.previous_id, m.version_id, m.who, m.why) for m in moves))
        return self.snapshot_cache

    def put_snapshot(self) -> CanarySnapshot:
        snapshot = self.snapshot()
        self.event_engine.put(Event(EVENT_CANARY_VIEW, snapshot))
        return snapshot

    def request_view(self) -> None:
        """Publish a new view soon, built on the event thread: the rotation engine changes a canary's ledger
        there, so a view read from another thread (the GUI's) could catch it half-way through a close."""
        self.event_engine.put(Event(EVENT_CANARY_REFRESH, None))

    def _process_refresh(self, event: Event) -> None:
        self._publish("刷新")

    def _process_strategy(self, event: Event) -> None:
        """A rotation strategy changed: publish a new view when its version or canary moved (an order or a fill
        changes neither; the registry is read only then). Never raises: it runs on vnpy's event thread."""
        data: dict[str, Any] = event.data
        canary = data.get("canary")
        seen = (data.get("version"), None if canary is None else (
            canary["candidate"], canary["status"], canary["stage"], canary["sessions_in_stage"],
            (canary.get("last_session") or {}).get("day")))
        if self._seen.get(data["name"]) == seen:
            return
        self._seen[data["name"]] = seen
        if canary is None and not data.get("version"):
            return  # nothing of a release to show yet (and no reason to open the registry)
        self._publish(data["name"])

    def _publish(self, what: str) -> None:
        try:
            self.put_snapshot()
        except Exception:  # logged, never raised: vnpy's event thread dies on an exception in any handler
            self.write_log(f"金丝雀视图刷新失败 ({what}):\n{traceback.format_exc()}")

    # -- human events ---------------------------------------------------------------------------------------
    def promote(self, strategy: str, reason: str, who: str = "gui") -> CanaryCommand:
        """Approve the promotion the canary awaits (``approve``): applied at the next close. Refused at once
        (:class:`~vnpy_rotation.canary.machine.CanaryEventRefused`) unless the canary awaits approval."""
        return self._command(strategy, CanaryCommand("approve", reason, who))

    def reject(self, strategy: str, reason: str, who: str = "gui") -> CanaryCommand:
        """Decline the promotion the canary awaits (``reject``): the candidate stays in its stage."""
        return self._command(strategy, CanaryCommand("reject", reason, who))

    def rollback(self, strategy: str, reason: str, who: str = "gui") -> CanaryCommand:
        """Roll the running canary back (``manual_rollback``): at the next close the candidate is retired and
        its capital moves back to the champion through the normal order plan."""
        return self._command(strategy, CanaryCommand("manual_rollback", reason, who))

    def _command(self, strategy: str, command: CanaryCommand) -> CanaryCommand:
        if not command.reason.strip():
            raise InputRejected(Problem("reason", None, f"{command.event} needs a reason (it is kept in the history)"))
        if not command.who.strip():
            raise InputRejected(Problem("who", None, f"{command.event} needs who sent it"))
        instance = self._instance(strategy)
        if instance.cycle is None:
            raise InputRejected(Problem(strategy, None, "initialise the strategy first: its canary is in its state"))
        command = CanaryCommand(command.event, command.reason.strip(), command.who.strip(), command.to)
        self.rotation.canary.command(instance, command)  # the release table's check; raises when refused
        self.write_log(f"[{strategy}] 金丝雀指令 {command.event} ({command.who}: {command.reason}), 下一收盘生效")
        self.request_view()
        return command

    # -- the release check ----------------------------------------------------------------------------------
    def check(self, ref: str) -> tuple[str, tuple[GateResult, ...]]:
        """The pre-release gates of version ``ref`` (what ``run.py release check`` prints), with the release
        freezes the risk app in this main engine has raised. Returns the version id and the gates."""
        from ...ops.versions import check_version

        version = self.registry.load(ref)
        risk: Any = self.main_engine.get_engine(RISK_APP)  # the risk app's RiskEngine, when added
        freezes = risk.state_file.freezes(version.strategy) if risk is not None else []
        return version.id, check_version(version, freezes)

    def write_log(self, msg: str) -> None:
        self.main_engine.write_log(msg, APP_NAME)
        self.event_engine.put(Event(EVENT_CANARY_LOG, msg))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


__all__ = ["APP_NAME", "EVENT_CANARY_LOG", "EVENT_CANARY_REFRESH", "EVENT_CANARY_VIEW", "CanaryEngine", "CanarySnapshot"]
