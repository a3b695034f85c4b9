"""The experiment registry: one immutable row per research or rehearsal run, with its inputs and results.

Every ``run.py backtest``, ``walkforward``, ``trade --gateway replay`` and ``canary drill`` records one
experiment (a sweep, or any Python entry point, uses :func:`track` the same way). A row holds the inputs
(strategy, validated settings and their hash, the config file's hash, the data window, the signature of the
bars read, warm-up included — :func:`~vnpy_rotation.ops.baseline.data_signature` — and the code commit) and the results (the
headline metrics; the best row and the number of combinations of a grid; the output folder), with its status:
``ok``, or ``failed`` with the error. Versions link to the experiments that justify them
(:meth:`ExperimentRegistry.for_version`).

Experiment ids are ``EXP-YYYYMMDD-HHMMSS-xxxx``: the run's start in UTC and 4 hex digits of a hash of the run's
start, process and inputs. The id is known when the run starts (the command prints it; the row is written once,
at the end, since rows are never updated), sorts by start time, and needs no counter read from the database, so
two processes starting together cannot take the same number; the primary key refuses the rare collision and a
new suffix is drawn.

Recording never makes a run fail: a database or MLflow error is a warning and the run's exit code stands.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from peewee import IntegrityError

from ..errors import InputRejected, Problem
from .baseline import data_signature
from .experiment_store import ExperimentStore
from .mlflow_sink import send_to_sink
from .versions import FieldDiff, _flatten, canonical_json, code_identity, os_user, referenced_files, sha256

MIN_PREFIX = 8  # "EXP-2026" is not an id: a prefix names at least the day
HEADLINE = ("total_return", "annual_return", "sharpe", "max_drawdown", "calmar", "turnover", "total_cost",
            "trade_count")
EQUITY_HEADLINE = HEADLINE[:5]  # the headline metrics an equity curve alone defines


@dataclass(frozen=True)
class ExperimentInputs:
    """What a run was given and read. Empty strings where a kind of run has no such input."""

    strategy: str
    settings: dict[str, Any] = field(default_factory=dict)  # validated strategy settings (a walk-forward's chosen)
    settings_hash: str = ""
    config_path: str = ""
    config_sha256: str = ""
    start: str = ""  # the first and last trading day of the data window (ISO dates)
    end: str = ""
    bars_hash: str = ""
    bars_symbols: int = 0
    code_commit: str = ""
    code_diff_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # backtest section, grid, options, versions, gateway ...


@dataclass(frozen=True)
class Experiment:
    """One recorded run (a row of ``rotation_experiment``)."""

    id: str
    kind: str
    status: str  # ok | failed
    error: str
    exit_code: int | None
    started_at: str
    finished_at: str
    duration_s: float
    who: str
    command: str
    inputs: ExperimentInputs
    metrics: dict[str, Any]
    results: dict[str, Any]
    out_dir: str

    @property
    def strategy(self) -> str:
        return self.inputs.strategy


# -- inputs ---------------------------------------------------------------------------------------------------
def config_identity(config_file: Path | str | None) -> tuple[str, str]:
    """(path, sha256 of the file's bytes) of a run's config file; ("", "") without one."""
    if not config_file:
        return "", ""
    path = Path(config_file)
    return str(path), sha256(path.read_bytes()) if path.is_file() else ""


def data_identity(read: Any, traded: Any = None) -> dict[str, Any]:
    """The traded window (``traded``, else ``read``) and the signature of every bar a run ``read``, warm-up
    included (:func:`~vnpy_rotation.ops.baseline.data_signature`: each bar's OHLCV, turnover and corporate
    actions), so the same data gives the same signature whichever kind of run read it."""
    symbols, digest = data_signature(read)
    days = pd.DatetimeIndex((read if traded is None else traded).days)
    return {"start": str(days[0].date()) if len(days) else "", "end": str(days[-1].date()) if len(days) else "",
            "bars_hash": digest, "bars_symbols": symbols}


def make_inputs(strategy: str, settings: dict[str, Any] | None = None, config_file: Path | str | None = None,
                market: Any = None, traded: Any = None, code: tuple[str, str] | None = None,
                **extra: Any) -> ExperimentInputs:
    """Inputs of a run of ``strategy``: settings and their hash (as a version hashes them), the config file,
    the signature of the bars it read (``market``, warm-up included) and its traded window (``traded``, else
    ``market``'s), the code commit (``code``: the (commit, diff hash) already looked up for this run, else asked
    of git) and ``extra``."""
    settings = json.loads(canonical_json(settings or {}))
    path, digest = config_identity(config_file)
    commit, diff_hash = code if code is not None else code_identity()
    data = data_identity(market, traded) if market is not None else {}
    return ExperimentInputs(strategy, settings, sha256(canonical_json(settings)), path, digest,
                            code_commit=commit, code_diff_hash=diff_hash, extra=json.loads(canonical_json(extra)),
                            **data)


def files_of(strategy: Any) -> dict[str, dict[str, str]]:
    """Path and SHA-256 of each file ``strategy``'s settings read (the pools file, default or named), by the
    settings field naming it: an edited pools file is a changed input (``experiments compare`` shows it)."""
    return {f.field: {"path": f.path, "sha256": f.sha256} for f in referenced_files(strategy)}


def start_inputs(strategy: str, settings: dict[str, Any], config_file: Path | str | None, start: date | None,
                 end: date | None, source: str = "command line", **extra: Any) -> ExperimentInputs:
    """The inputs known before a run reads a bar: validated settings (a mistake is refused here, as the run
    would), the config and the files it names, the requested window and the commit. A run opens its tracker
    with them, so a run that fails half-way still records what it was given."""
    from ..strategies import create_strategy

    made = create_strategy(strategy, settings, f"{source}: strategy")
    inputs = make_inputs(strategy, made.settings.model_dump(mode="json"), config_file, files=files_of(made), **extra)
    return replace(inputs, start=str(start or ""), end=str(end or ""))


def backtest_inputs(run: Any, config_file: Path | str | None, code: tuple[str, str] | None = None) -> ExperimentInputs:
    """Inputs of a finished :class:`~vnpy_rotation.backtest.runner.BacktestRun` (``code``: see :func:`make_inputs`)."""
    return make_inputs(run.spec.strategy_name, run.strategy.settings.model_dump(mode="json"), config_file,
                       run.market if run.read is None else run.read, run.market, code, files=files_of(run.strategy),
                       backtest=run.spec.config.model_dump(mode="json"), benchmark=list(run.spec.benchmark))


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics (plain numbers; NaN as None) of a metrics dict."""
    out = {k: metrics.get(k) for k in HEADLINE if k in metrics}
    return json.loads(canonical_json(out))


def equity_metrics(summary: pd.DataFrame) -> dict[str, Any]:
    """Headline metrics of a replay's daily summary (``date, equity`` columns), by the definitions a backtest's
    metrics use (:func:`~vnpy_rotation.backtest.metrics.compute_metrics`), so a replay that equals its backtest
    records the same numbers. Returns are measured from the first session's close, as a backtest's are."""
    from ..backtest.metrics import compute_metrics

    if summary.empty:
        return {}
    equity = summary[["equity"]].set_index(pd.DatetimeIndex(pd.to_datetime(summary["date"])))
    # the trade-based ones (turnover, costs, count) need the backtest's trade frame: left out, not zero
    return {k: v for k, v in headline(compute_metrics(equity)).items() if k in EQUITY_HEADLINE}


def best_row(frame: pd.DataFrame, objective: str = "sharpe") -> dict[str, Any]:
    """The grid row with the highest ``objective`` (NaN loses; a tie goes to the first), as plain values."""
    if frame.empty or objective not in frame:
        return {}
    scores = pd.to_numeric(frame[objective], errors="coerce").fillna(-math.inf).to_numpy()
    return json.loads(canonical_json(frame.iloc[int(np.argmax(scores))].to_dict()))


# -- recording ------------------------------------------------------------------------------------------------
def new_id(started: datetime, salt: str) -> str:
    moment = started.astimezone(timezone.utc)
    return f"EXP-{moment:%Y%m%d-%H%M%S}-{sha256(f'{moment.isoformat()}|{os.getpid()}|{salt}')[:4]}"


def command_line() -> str:
    """This process's command line as a user would type it (``run.py backtest ...``)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("run.py"):
        return shlex.join(["run.py", *argv[1:]])
    return shlex.join(argv) if argv else "python"


def _never_fails(method: Callable[..., None]) -> Callable[..., None]:
    """Gathering what to record must not fail the run: a problem is kept in the results and warned about."""
    @functools.wraps(method)
    def guarded(self: Tracker, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            self.results["recording_problem"] = f"{method.__name__}: {type(exc).__name__}: {exc}"
            print(f"warning: experiment {self.id}: {self.results['recording_problem']}", file=sys.stderr)
    return guarded


@dataclass
class Tracker:
    """A run being tracked: fill in its inputs and results; :func:`track` writes the row when it ends."""

    id: str
    kind: str
    started: datetime
    inputs: ExperimentInputs
    metrics: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    out_dir: str = ""
    exit_code: int | None = 0
    recorded: bool = False  # set when the row is written (its id may have been redrawn)

    def set_inputs(self, inputs: ExperimentInputs | None = None, **changes: Any) -> None:
        """Replace the inputs, or some of their fields (``start=``, ``extra=`` ...)."""
        self.inputs = replace(inputs or self.inputs, **changes)

    @_never_fails
    def backtest_done(self, run: Any, config_file: Path | str | None) -> None:
        """Inputs and headline metrics of a finished backtest run (the commit looked up when it started: the
        process runs the code it loaded then, and git is not asked twice)."""
        known = (self.inputs.code_commit, self.inputs.code_diff_hash) if self.inputs.code_commit else None
        self.inputs = backtest_inputs(run, config_file, known)
        self.metrics = headline(run.metrics)
        self.results["checks_failed"] = [getattr(c, "name", "look-ahead") for c in run.identities + run.lookahead
                                         if not c.ok]

    @_never_fails
    def walkforward_done(self, result: Any, config_file: Path | str | None, out: Path | None = None) -> None:
        """Inputs and results of a finished walk-forward: the holdout's metrics as the headline, the chosen
        parameters as the best row, the number of combinations and windows (one experiment, not one per
        combination), and the written summary's hash (how ``version create --from-walkforward`` finds it)."""
        from ..strategies import create_strategy

        spec = result.spec
        name = spec.run.strategy_name
        base = create_strategy(name, spec.run.strategy_settings, "strategy")
        # the row's settings are the ones chosen (the holdout's, else the last window's): what a version would
        # carry; the grid's base settings and the grid itself are inputs too
        chosen_params = result.holdout_params or result.last_params or {}
        chosen = create_strategy(name, {**spec.run.strategy_settings, **chosen_params}, "strategy")
        self.inputs = make_inputs(name, chosen.settings.model_dump(mode="json"), config_file, result.market,
                                  files=files_of(chosen), backtest=spec.run.config.model_dump(mode="json"),
                                  base_settings=base.settings.model_dump(mode="json"),
                                  grid={k: list(v) for k, v in spec.grid.items()},
                                  options=spec.options.model_dump(mode="json", exclude={"grid"}))
        # the walk-forward's span (train, tests, holdout); the signature covers the warm-up read before it too
        self.inputs = replace(self.inputs, start=str(result.span.start), end=str(result.span.end))
        evaluation = result.holdout or (result.windows[-1].test if result.windows else None)
        self.metrics = headline(evaluation.metrics) if evaluation is not None else {}
        summary = Path(out) / "summary.json" if out is not None else None
        self.results.update({
            "combinations": len(spec.combos), "windows": len(result.windows),
            "best": result.holdout_params or result.last_params, "objective": spec.options.objective,
            "overfit_flagged": result.overfit.flagged, "deflated_sharpe": result.deflated.dsr,
            "summary_sha256": sha256(summary.read_bytes()) if summary is not None and summary.is_file() else ""})

    @_never_fails
    def replay_done(self, spec: Any, config_file: Path | str | None, consistency: Any = None,
                    **extra: Any) -> None:
        """Inputs and results of a paper replay (a ``TradeSpec`` run into ``spec.out``): the bars of the
        replayed window (loaded again: a replay has no market of its own), the headline metrics of its daily
        equity, and the consistency with the backtest when it was measured."""
        from ..backtest.loader import market_for
        from ..backtest.runner import clip_to_bars
        from ..strategies import create_strategy

        strategy = create_strategy(spec.strategy, spec.settings, "strategy")
        market = clip_to_bars(market_for(strategy, spec.start, spec.end), spec.start, spec.end).market
        self.inputs = make_inputs(spec.strategy, strategy.settings.model_dump(mode="json"), config_file, market,
                                  market.window(spec.start, None), files=files_of(strategy),
                                  backtest=spec.config.model_dump(mode="json"), **extra)
        summary = Path(spec.out) / "daily_summary.csv"
        if summary.is_file():
            daily = pd.read_csv(summary)
            self.metrics = equity_metrics(daily)
            self.results["sessions"] = int(len(daily))
            if len(daily):  # the sessions it ran: a drill (or an interrupted replay) stops before --end
                self.inputs = replace(self.inputs, start=str(daily["date"].iloc[0]), end=str(daily["date"].iloc[-1]))
        if consistency is not None:
            self.results.update({"consistent": consistency.consistent, "consistency": consistency.headline(),
                                 "differing_fills": int(consistency.daily["differing_fills"].sum())})

    @_never_fails
    def drill_done(self, spec: Any, report: Any) -> None:
        """A canary drill: the replay's inputs and metrics, the candidate and champion versions, the trouble
        injected, and whether a rollback rule tripped (the drill's purpose) at what cost."""
        self.replay_done(spec, None, candidate=spec.canary.candidate, champion=spec.canary.champion,
                         stages=spec.canary.config.model_dump(mode="json"),
                         trouble=None if spec.trouble is None else spec.trouble.model_dump(mode="json"))
        self.results.update({"rolled_back": report.rolled_back, "reconciled": report.reconciled,
                             "tripped_on": None if report.trip is None else str(report.trip.day),
                             "rollback_cost": dict(report.rollback_cost), "report": str(report.folder / "drill.md")})

    @_never_fails
    def version_done(self, version: Any, run: Any = None) -> None:
        """The backtest ``version create`` ran for ``version`` (its inputs and metrics are the version's; the
        data signature is the experiments' one of the ``run``'s bars, as every other kind records it)."""
        self.inputs = version_inputs(version)
        if run is not None:
            read = run.market if run.read is None else run.read
            self.inputs = replace(self.inputs, **{k: v for k, v in data_identity(read).items()
                                                  if k in ("bars_hash", "bars_symbols")})
        self.metrics = headline(version.metrics)
        self.results.update({"version": version.id, "checks_failed": [c.name for c in version.checks if not c.ok]})

    @_never_fails
    def sweep_done(self, frame: pd.DataFrame, objective: str = "sharpe") -> None:
        """Results of a sweep: the best row by ``objective`` (its metrics as the headline) and the count."""
        best = best_row(frame, objective)
        self.metrics = headline(best)
        self.results.update({"combinations": int(len(frame)), "best": best, "objective": objective})


@contextmanager
def track(kind: str, inputs: ExperimentInputs | None = None, *, out: Path | str | None = None,
          command: str | None = None, registry: ExperimentRegistry | None = None,
          output: Callable[[str], None] = print, warn: Callable[[str], None] | None = None,
          now: Callable[[], datetime] | None = None) -> Iterator[Tracker]:
    """Track one run of ``kind``: yields a :class:`Tracker` to fill in; when the block ends, one row is written
    and ``experiment ID`` printed.

    A block that raises records a ``failed`` row with the error and re-raises, except a refused input
    (:class:`~vnpy_rotation.errors.InputRejected`): the run never happened and a refused command writes
    nothing. A failing database (or MLflow sink) is a warning: the run's outcome stands.
    """
    clock = now or (lambda: datetime.now(timezone.utc))
    warn = warn or (lambda text: print(text, file=sys.stderr))
    started = clock()
    first = inputs or ExperimentInputs("")
    tracker = Tracker(new_id(started, canonical_json(first.__dict__)), kind, started, first,
                      out_dir=str(Path(out).absolute()) if out is not None else "")
    status, error = "ok", ""
    try:
        yield tracker
    except InputRejected:
        raise
    except BaseException as exc:
        status, error, tracker.exit_code = "failed", f"{type(exc).__name__}: {exc}"[:4000], None
        _record(tracker, status, error, clock(), command, registry, output, warn)
        raise
    _record(tracker, status, error, clock(), command, registry, output, warn)


def _record(tracker: Tracker, status: str, error: str, finished: datetime, command: str | None,
            registry: ExperimentRegistry | None, output: Callable[[str], None],
            warn: Callable[[str], None]) -> None:
    experiment = Experiment(
        tracker.id, tracker.kind, status, error, tracker.exit_code, _iso(tracker.started), _iso(finished),
        round((finished - tracker.started).total_seconds(), 3), os_user(), command or command_line(),
        tracker.inputs, json.loads(canonical_json(tracker.metrics)), json.loads(canonical_json(tracker.results)),
        tracker.out_dir)
    try:
        experiment = (registry or ExperimentRegistry()).record(experiment)
    except Exception as exc:  # recording must never fail the run it records
        warn(f"warning: experiment {tracker.id} not recorded: {type(exc).__name__}: {exc}")
        return
    tracker.id, tracker.recorded = experiment.id, True
    output(f"experiment {experiment.id}" + ("" if status == "ok" else f" ({status})"))
    sink_problem = send_to_sink(experiment)
    if sink_problem:
        warn(sink_problem)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


# -- the registry ---------------------------------------------------------------------------------------------
def _to_row(e: Experiment) -> dict[str, Any]:
    i = e.inputs
    return {"id": e.id, "kind": e.kind, "strategy": i.strategy, "status": e.status, "error": e.error,
            "exit_code": e.exit_code, "started_at": e.started_at, "finished_at": e.finished_at,
            "duration_s": e.duration_s, "who": e.who, "command": e.command,
            "settings_json": canonical_json(i.settings), "settings_hash": i.settings_hash,
            "config_path": i.config_path, "config_sha256": i.config_sha256, "window_start": i.start,
            "window_end": i.end, "bars_hash": i.bars_hash, "bars_symbols": i.bars_symbols,
            "code_commit": i.code_commit, "code_diff_hash": i.code_diff_hash,
            "inputs_json": canonical_json(i.extra), "metrics_json": canonical_json(e.metrics),
            "results_json": canonical_json(e.results), "out_dir": e.out_dir}


def _from_row(r: dict[str, Any]) -> Experiment:
    inputs = ExperimentInputs(r["strategy"], json.loads(r["settings_json"]), r["settings_hash"], r["config_path"],
                              r["config_sha256"], r["window_start"], r["window_end"], r["bars_hash"],
                              int(r["bars_symbols"]), r["code_commit"], r["code_diff_hash"],
                              json.loads(r["inputs_json"]))
    return Experiment(r["id"], r["kind"], r["status"], r["error"], r["exit_code"], r["started_at"], r["finished_at"],
                      float(r["duration_s"]), r["who"], r["command"], inputs, json.loads(r["metrics_json"]),
                      json.loads(r["results_json"]), r["out_dir"])


class ExperimentRegistry:
    """Experiments and their links to versions, in one database (default: vnpy's, beside the bars)."""

    def __init__(self, store: ExperimentStore | None = None) -> None:
        self.store = store or ExperimentStore()

    def record(self, experiment: Experiment) -> Experiment:
        """Insert ``experiment`` (one row, in one statement: whole or not at all); a taken id draws another."""
        for attempt in range(5):
            try:
                with self.store.db.atomic():
                    self.store.insert(_to_row(experiment))
                return experiment
            except IntegrityError:
                if self.store.get(experiment.id) is None:
                    raise  # not a taken id: something else is wrong
                experiment = replace(experiment, id=new_id(datetime.fromisoformat(experiment.started_at),
                                                           f"{experiment.id}|{attempt}"))
        raise InputRejected(Problem("experiment", None, f"no free id near {experiment.id}"))

    def get(self, experiment_id: str) -> Experiment:
        """The experiment ``experiment_id`` names (an id or a unique prefix of 8+ characters)."""
        return _from_row(self._row(self.resolve(experiment_id)))

    def _row(self, experiment_id: str) -> dict[str, Any]:
        row = self.store.get(experiment_id)
        if row is None:
            raise InputRejected(Problem("experiment", None, f"unknown experiment {experiment_id!r} "
                                        "(run.py experiments list)"))
        return row

    def resolve(self, ref: str) -> str:
        ref = ref.strip()
        if self.store.get(ref) is not None:
            return ref
        ids = self.store.ids_starting(ref.upper()) if len(ref) >= MIN_PREFIX else []
        if len(ids) > 1:
            raise InputRejected(Problem("experiment", None, f"{ref!r} is ambiguous: {', '.join(ids[:5])}"
                                        + (" ..." if len(ids) > 5 else "")))
        if not ids:
            raise InputRejected(Problem("experiment", None, f"unknown experiment {ref!r} (run.py experiments list)"))
        return ids[0]

    def list(self, kind: str | None = None, strategy: str | None = None,
             since: date | datetime | str | None = None) -> builtins.list[Experiment]:
        """Experiments, oldest first; ``since`` a day or a moment (UTC when naive) the run started at or after."""
        if isinstance(since, datetime):
            bound: str | None = _iso(since if since.tzinfo else since.replace(tzinfo=timezone.utc))
        else:
            bound = None if since is None else str(since)
        return [_from_row(r) for r in self.store.rows(kind, strategy, bound)]

    def by_output(self, folder: Path | str, kind: str | None = None) -> builtins.list[Experiment]:
        """The successful experiments that wrote ``folder``, oldest first."""
        rows = self.store.rows(kind, out_dir=str(Path(folder).absolute()))
        return [_from_row(r) for r in rows if r["status"] == "ok"]

    # -- versions --
    def link(self, version_id: str, experiment_id: str, relation: str, now: datetime | None = None) -> None:
        """Record that ``experiment_id`` is evidence of ``version_id`` (a link already there is not repeated)."""
        self._row(experiment_id)
        if any(r["experiment"] == experiment_id for r in self.store.links(version=version_id)):
            return
        self.store.insert_link({"version": version_id, "experiment": experiment_id, "relation": relation,
                                "at": _iso(now or datetime.now(timezone.utc))})

    def for_version(self, version_id: str) -> builtins.list[Experiment]:
        """The experiments linked to ``version_id`` (its backtests and walk-forward runs), oldest link first."""
        ids = [r["experiment"] for r in self.store.links(version=version_id)]
        found = {r["id"]: _from_row(r) for r in self.store.rows(ids=ids)} if ids else {}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def links_of_version(self, version_id: str) -> builtins.list[tuple[str, str]]:
        """(experiment id, relation) of each link of ``version_id``."""
        return [(r["experiment"], r["relation"]) for r in self.store.links(version=version_id)]

    def versions_of(self, experiment_id: str) -> builtins.list[tuple[str, str]]:
        """(version id, relation) of the versions ``experiment_id`` is evidence of."""
        return [(r["version"], r["relation"]) for r in self.store.links(experiment=experiment_id)]


# -- versions' evidence ---------------------------------------------------------------------------------------
def version_inputs(version: Any) -> ExperimentInputs:
    """The inputs of the backtest ``version create`` ran (everything is in the version already)."""
    return ExperimentInputs(version.strategy, dict(version.settings), version.settings_hash, version.config_path,
                            version.config_sha256, version.start.isoformat(), version.end.isoformat(),
                            version.bars_hash, len(version.bars), version.code_commit, version.code_diff_hash,
                            json.loads(canonical_json({"backtest": version.backtest, "release": version.release,
                                                       "for_version": True})))


def walkforward_evidence(version: Any, registry: ExperimentRegistry) -> Experiment | None:
    """The recorded walk-forward run whose summary ``version`` attached (same folder, same summary bytes)."""
    wf = version.walkforward
    if not wf:
        return None
    matches = [e for e in registry.by_output(wf["folder"], "walkforward")
               if e.results.get("summary_sha256") == wf.get("summary_sha256")]
    return matches[-1] if matches else None


def link_evidence(version: Any, backtest: Tracker, registry: ExperimentRegistry | None = None,
                  warn: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """Link ``version`` to the experiment of its backtest and to the recorded walk-forward run it attached;
    returns the (experiment id, relation) pairs linked. A failure is a warning: the version stands."""
    warn = warn or (lambda text: print(text, file=sys.stderr))
    linked: list[tuple[str, str]] = []
    try:
        registry = registry or ExperimentRegistry()
        if backtest.recorded:
            registry.link(version.id, backtest.id, "backtest")
            linked.append((backtest.id, "backtest"))
        if version.walkforward:
            found = walkforward_evidence(version, registry)
            if found is None:
                warn(f"warning: no recorded walk-forward experiment wrote {version.walkforward['folder']} "
                     "(run before the registry, or the folder was rewritten): version linked to its backtest only")
            else:
                registry.link(version.id, found.id, "walkforward")
                linked.append((found.id, "walkforward"))
    except Exception as exc:  # the version is saved already: a missing link is a warning
        warn(f"warning: version {version.id} not linked to its experiments: {type(exc).__name__}: {exc}")
    return linked


# -- comparison -----------------------------------------------------------------------------------------------
def input_facts(e: Experiment) -> dict[str, Any]:
    i = e.inputs
    return {"kind": e.kind, "strategy": i.strategy, "window.start": i.start, "window.end": i.end,
            "bars_hash": i.bars_hash, "bars_symbols": i.bars_symbols, "code_commit": i.code_commit,
            "code_diff_hash": i.code_diff_hash, "config_path": i.config_path, "config_sha256": i.config_sha256,
            "settings_hash": i.settings_hash, **_flatten("settings", i.settings), **_flatten("inputs", i.extra)}


@dataclass(frozen=True)
class MetricRow:
    name: str
    a: Any
    b: Any
    difference: float | None  # b − a when both are numbers


def compare(a: Experiment, b: Experiment) -> tuple[list[FieldDiff], list[MetricRow]]:
    """The inputs that differ between ``a`` and ``b``, and every metric of either side by side."""
    fa, fb = input_facts(a), input_facts(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    inputs = [FieldDiff(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]
    names = list(a.metrics) + [k for k in b.metrics if k not in a.metrics]
    rows = []
    for name in names:
        va, vb = a.metrics.get(name), b.metrics.get(name)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append(MetricRow(name, va, vb, float(vb) - float(va) if numbers else None))
    return inputs, rows
