"""Strategy versions: immutable records of what would go live, with their evidence, and aliases moved over them.

A version is created from a strategy name and its config YAML by running the project's own backtest over the
research window (:func:`vnpy_rotation.backtest.runner.run_backtest`: metrics, look-ahead and identity checks)
and, optionally, attaching a walk-forward run's ``summary.json``. Its id is the first 12 hex digits of the
SHA-256 of its canonical content (strategy, validated settings, backtest config, release thresholds, file
hashes, window, bar signature, code commit, walk-forward summary), so the same content always has the same id.

Aliases (``champion``, ``candidate``, ``last_stable``, any ``[a-z_]+`` name) point at versions of their own
strategy; every move is a new audit row (who, why, when, the previous version), never an edit.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from peewee import IntegrityError

from ..backtest.config import BacktestConfig
from ..backtest.metrics import daily_returns
from ..backtest.outputs import _json_safe
from ..backtest.runner import BacktestRun, RunSpec, read_sections, run_backtest
from ..canary.release import GateResult, ReleaseEvidence, ReleaseGates, check_release
from ..config import validate_section
from ..data.market_data import MarketData
from ..errors import InputRejected, Problem
from ..live.state_file import read_json
from ..protocol import TargetStrategy
from ..risk.stops import RiskRules, configured_ladders
from .version_store import VersionStore

ID_LENGTH = 12
MIN_PREFIX = 4
ALIAS_NAME = re.compile(r"[a-z_]+")
T = TypeVar("T")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout (or site-packages) holding vnpy_rotation


@dataclass(frozen=True)
class ConfigFile:
    """A file the version's config refers to (e.g. the pools file), by the settings field naming it."""

    field: str
    path: str
    sha256: str
    text: str


@dataclass(frozen=True)
class CheckOutcome:
    kind: str  # lookahead | identity
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Version:
    """One immutable strategy version (a row of ``rotation_version``)."""

    id: str
    strategy: str
    strategy_class: str
    content_hash: str
    settings: dict[str, Any]  # the validated strategy settings
    settings_hash: str
    backtest: dict[str, Any]  # the validated backtest: section (costs, rules, risk)
    backtest_hash: str
    release: dict[str, Any]  # the validated release: section (defaults when absent)
    risk_rules: dict[str, Any] | None  # the strategy's own risk rules (stops, its ladder), None when it has none
    config_path: str
    config_text: str
    config_sha256: str
    files: tuple[ConfigFile, ...]
    start: date
    end: date
    bars: dict[str, tuple[int, str]]  # vt_symbol → (rows with a bar in the window, last day with one)
    bars_hash: str
    code_commit: str
    code_diff_hash: str
    metrics: dict[str, Any]
    checks: tuple[CheckOutcome, ...]
    walkforward: dict[str, Any] | None  # the walk-forward evidence (summary, holdout metrics, source)
    equity_dates: tuple[str, ...]
    equity_values: tuple[float, ...]
    created_at: str
    created_by: str
    note: str

    def backtest_config(self) -> BacktestConfig:
        return validate_section(BacktestConfig, self.backtest, f"version {self.id}: backtest")

    def release_gates(self) -> ReleaseGates:
        return validate_section(ReleaseGates, self.release, f"version {self.id}: release")

    def equity(self) -> pd.Series:
        """The backtest's daily close equity over the version's window (CNY), indexed by date."""
        return pd.Series(self.equity_values, index=pd.DatetimeIndex(self.equity_dates, name="date"),
                         name="equity", dtype=float)

    def returns(self) -> pd.Series:
        """Daily simple returns of :meth:`equity`, the first day's measured from the initial capital."""
        equity = self.equity()
        capital = float(self.backtest.get("capital", equity.iloc[0] if len(equity) else 1.0))
        start = pd.Series([capital], index=pd.DatetimeIndex([equity.index[0] - pd.Timedelta(days=1)]))
        return daily_returns(pd.concat([start, equity])) if len(equity) else equity

    @property
    def lookahead_ok(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "lookahead")

    @property
    def identities_ok(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "identity")


@dataclass(frozen=True)
class AliasMove:
    """One audit row: ``alias`` of ``strategy`` moved from ``previous_id`` to ``version_id`` (None: retired)."""

    seq: int
    strategy: str
    alias: str
    version_id: str | None
    previous_id: str | None
    who: str
    why: str
    at: str


@dataclass(frozen=True)
class FieldDiff:
    field: str
    a: Any
    b: Any


def os_user() -> str:
    """Who runs this process (the OS login name), for ``created_by`` and alias moves."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "unknown"


# -- hashing and identity ----------------------------------------------------------------------------------
def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the same content always gives the same text (and hash)."""
    return json.dumps(_json_safe(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def code_identity(root: Path = PACKAGE_ROOT) -> tuple[str, str]:
    """(commit, hash of uncommitted changes) of the checkout holding the package.

    ``<sha>+dirty`` when ``git status --porcelain`` lists anything; the hash covers ``git diff HEAD`` and the
    untracked files' names, so two different dirty trees give two versions. Outside git: the installed
    package's version and no hash.
    """
    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None

    head = git("rev-parse", "--show-toplevel", "HEAD")
    lines = head.stdout.split() if head is not None and head.returncode == 0 else []
    # Installed into a virtualenv inside some other repository: that repository's commit is not the package's.
    if len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
        try:
            return f"package {metadata.version('vnpy_rotation')}", ""
        except metadata.PackageNotFoundError:
            from .. import __version__

            return f"package {__version__}", ""
    commit = lines[1]
    status = git("status", "--porcelain")
    if status is None or not status.stdout.strip():
        return commit, ""
    diff = git("diff", "HEAD")
    return commit + "+dirty", sha256(status.stdout + (diff.stdout if diff else ""))[:16]


def bars_signature(market: MarketData) -> tuple[dict[str, tuple[int, str]], str]:
    """Per symbol: the number of days with a bar in the window and the last such day; plus a hash of those
    and of every close price (a revised bar changes it). One pass over the arrays: cheap."""
    has_bar = np.isfinite(market.close)
    rows = has_bar.sum(axis=0)
    last = len(market.days) - 1 - has_bar[::-1].argmax(axis=0)
    per_symbol = {s: (int(n), str(market.days[i].date()) if n else "")
                  for s, n, i in zip(market.symbols, rows, last)}
    digest = sha256(canonical_json(per_symbol).encode("utf-8") + np.nan_to_num(market.close, nan=-1.0).tobytes())
    return per_symbol, digest[:16]


def referenced_files(strategy: TargetStrategy) -> tuple[ConfigFile, ...]:
    """The files ``strategy``'s validated settings name (``*_file`` fields; a pooled strategy's default pools
    file)."""
    from ..rotation.pools import pools_path

    settings = strategy.settings.model_dump(mode="json")
    named = {k: v for k, v in settings.items() if k.endswith("_file")}
    if hasattr(strategy, "pools_config"):  # the pools file is read even when the setting is left empty
        named.setdefault("pools_file", None)
    files = []
    for field, value in sorted(named.items()):
        if value is None and field != "pools_file":
            continue
        path = pools_path(value) if field == "pools_file" else Path(value)
        text = path.read_text(encoding="utf-8")
        files.append(ConfigFile(field, str(path), sha256(path.read_bytes()), text))
    return tuple(files)


# -- walk-forward evidence ----------------------------------------------------------------------------------
def read_walkforward(folder: Path, strategy: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """A walk-forward run's summary (and holdout metrics) from ``folder``; refused when it is not one, when it
    was run for another strategy, or when the parameters its holdout was run with differ from ``settings``
    (the version's validated settings): its evidence would be about another parametrisation."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputRejected(Problem(str(path), None, "not found: --from-walkforward takes the --out folder of "
                                    "run.py walkforward"))
    summary = read_json(path)
    if not isinstance(summary, dict) or "strategy" not in summary:
        raise InputRejected(Problem(str(path), None, "strategy: missing (not a walk-forward summary)"))
    if summary["strategy"] != strategy:
        raise InputRejected(Problem(str(path), None, f"strategy: {summary['strategy']!r} differs from the "
                                    f"version's strategy {strategy!r}"))
    chosen = summary.get("holdout_params") or {}
    differing = [f"holdout_params.{k}: {v!r} differs from the version's setting {settings.get(k)!r}"
                 for k, v in sorted(chosen.items()) if settings is not None and settings.get(k) != v]
    if differing:
        raise InputRejected([Problem(str(path), None, reason + " (put the walk-forward's choice in the config's "
                                     "strategy: section)") for reason in differing])
    holdout = read_json(Path(folder) / "holdout.json", None)
    return {"folder": str(Path(folder)), "summary_sha256": sha256(path.read_bytes()), "summary": summary,
            "holdout_metrics": holdout.get("metrics") if isinstance(holdout, dict) else None}


# -- creation -------------------------------------------------------------------------------------------------
def _window_day(value: pd.Timestamp) -> date:
    return date.fromisoformat(pd.Timestamp(value).strftime("%Y-%m-%d"))


def build_version(strategy: str, config_file: Path, start: date | None = None, end: date | None = None, *,
                  walkforward_dir: Path | None = None, note: str = "", who: str | None = None,
                  now: datetime | None = None) -> Version:
    """The version of ``strategy`` configured by ``config_file``, backtested over ``start``…``end`` (default:
    the stored bars): validates everything and runs the backtest, writes nothing."""
    return build_version_run(strategy, config_file, start, end, walkforward_dir=walkforward_dir, note=note, who=who,
                             now=now)[0]


def build_version_run(strategy: str, config_file: Path, start: date | None = None, end: date | None = None, *,
                      walkforward_dir: Path | None = None, note: str = "", who: str | None = None,
                      now: datetime | None = None) -> tuple[Version, BacktestRun]:
    """:func:`build_version` and the backtest run it was made from (its fills are a regression baseline)."""
    from ..strategies import create_strategy

    raw, source, config, benchmark = read_sections(config_file, None)
    gates = validate_section(ReleaseGates, raw.get("release"), f"{source}: release")
    spec = RunSpec(strategy, dict(raw.get("strategy") or {}), config, benchmark, start, end, source)
    # Validated before the backtest runs, so a mistake is refused in a moment.
    settings = create_strategy(strategy, spec.strategy_settings, f"{source}: strategy").settings.model_dump(mode="json")
    walkforward = read_walkforward(walkforward_dir, strategy, settings) if walkforward_dir is not None else None
    config_text = Path(config_file).read_text(encoding="utf-8")
    config_sha256 = sha256(Path(config_file).read_bytes())  # of the file's bytes, as sha256sum prints it
    run = run_backtest(spec)
    backtest = config.model_dump(mode="json")
    release = gates.model_dump(mode="json")
    rules = run.plan.risk.model_dump(mode="json") if run.plan.risk is not None else None
    files = referenced_files(run.strategy)
    bars, bars_hash = bars_signature(run.market)
    commit, diff_hash = code_identity()
    first, last = _window_day(run.market.days[0]), _window_day(run.market.days[-1])
    content = {"strategy": strategy, "strategy_class": type(run.strategy).__name__, "settings": settings,
               "backtest": backtest, "release": release, "risk_rules": rules,
               "config_sha256": config_sha256, "files": [[f.field, f.sha256] for f in files],
               "start": first.isoformat(), "end": last.isoformat(), "bars_hash": bars_hash,
               "code_commit": commit, "code_diff_hash": diff_hash,
               "walkforward": walkforward["summary_sha256"] if walkforward else None}
    content_hash = sha256(canonical_json(content))
    checks = tuple([CheckOutcome("lookahead", f"look-ahead after {c.cut.date()}", c.ok, c.detail) for c in run.lookahead]
                   + [CheckOutcome("identity", c.name, c.ok, c.detail) for c in run.identities])
    equity = run.result.equity["equity"]
    moment = (now or datetime.now()).astimezone()
    version = Version(
        id=content_hash[:ID_LENGTH], strategy=strategy, strategy_class=type(run.strategy).__name__,
        content_hash=content_hash, settings=settings, settings_hash=sha256(canonical_json(settings)),
        backtest=backtest, backtest_hash=sha256(canonical_json(backtest)), release=release, risk_rules=rules,
        config_path=str(config_file), config_text=config_text, config_sha256=config_sha256, files=files,
        start=first, end=last, bars=bars, bars_hash=bars_hash, code_commit=commit, code_diff_hash=diff_hash,
        metrics=json.loads(canonical_json(run.metrics)), checks=checks, walkforward=walkforward,
        equity_dates=tuple(str(d.date()) for d in pd.DatetimeIndex(equity.index)),
        equity_values=tuple(float(v) for v in np.round(equity.to_numpy(dtype=float), 4)),
        created_at=moment.isoformat(timespec="seconds"), created_by=who or os_user(), note=note)
    return version, run


def _to_row(v: Version) -> dict[str, Any]:
    return {"id": v.id, "strategy": v.strategy, "strategy_class": v.strategy_class, "content_hash": v.content_hash,
            "settings_json": canonical_json(v.settings), "settings_hash": v.settings_hash,
            "backtest_json": canonical_json(v.backtest), "backtest_hash": v.backtest_hash,
            "release_json": canonical_json(v.release), "risk_json": canonical_json(v.risk_rules),
            "config_path": v.config_path, "config_text": v.config_text, "config_sha256": v.config_sha256,
            "files_json": canonical_json([f.__dict__ for f in v.files]), "start": v.start.isoformat(),
            "end": v.end.isoformat(), "bars_json": canonical_json(v.bars), "bars_hash": v.bars_hash,
            "code_commit": v.code_commit, "code_diff_hash": v.code_diff_hash,
            "metrics_json": canonical_json(v.metrics), "checks_json": canonical_json([c.__dict__ for c in v.checks]),
            "walkforward_json": None if v.walkforward is None else canonical_json(v.walkforward),
            "equity_json": canonical_json({"dates": v.equity_dates, "equity": v.equity_values}),
            "created_at": v.created_at, "created_by": v.created_by, "note": v.note}


def _from_row(row: dict[str, Any]) -> Version:
    equity = json.loads(row["equity_json"])
    return Version(
        id=row["id"], strategy=row["strategy"], strategy_class=row["strategy_class"], content_hash=row["content_hash"],
        settings=json.loads(row["settings_json"]), settings_hash=row["settings_hash"],
        backtest=json.loads(row["backtest_json"]), backtest_hash=row["backtest_hash"],
        release=json.loads(row["release_json"]), risk_rules=json.loads(row["risk_json"]),
        config_path=row["config_path"], config_text=row["config_text"], config_sha256=row["config_sha256"],
        files=tuple(ConfigFile(**f) for f in json.loads(row["files_json"])),
        start=date.fromisoformat(row["start"]), end=date.fromisoformat(row["end"]),
        bars={k: (int(v[0]), str(v[1])) for k, v in json.loads(row["bars_json"]).items()}, bars_hash=row["bars_hash"],
        code_commit=row["code_commit"], code_diff_hash=row["code_diff_hash"],
        metrics=json.loads(row["metrics_json"]), checks=tuple(CheckOutcome(**c) for c in json.loads(row["checks_json"])),
        walkforward=None if row["walkforward_json"] is None else json.loads(row["walkforward_json"]),
        equity_dates=tuple(equity["dates"]), equity_values=tuple(float(x) for x in equity["equity"]),
        created_at=row["created_at"], created_by=row["created_by"], note=row["note"])


class VersionRegistry:
    """Versions and aliases in one database (default: vnpy's, beside the bars)."""

    def __init__(self, store: VersionStore | None = None) -> None:
        self.store = store or VersionStore()

    # -- versions --
    def save(self, version: Version) -> tuple[Version, bool]:
        """Insert ``version``; when the same content is stored already, the stored one and False."""
        try:
            with self.store.transaction():
                if self.store.version(version.id) is None:
                    self.store.insert_version(_to_row(version))
                    return version, True
        except IntegrityError:  # another process stored the same id in between
            pass
        existing = self.get(version.id)
        if existing.content_hash != version.content_hash:  # 48 bits collided: never overwrite
            raise InputRejected(Problem("version", None, f"id {version.id} is taken by other content"))
        return existing, False

    def get(self, version_id: str) -> Version:
        row = self.store.version(version_id)
        if row is None:
            raise InputRejected(Problem("version", None, f"unknown version {version_id!r}"))
        return _from_row(row)

    def versions(self, strategy: str | None = None) -> list[Version]:
        return [_from_row(r) for r in self.store.versions(strategy)]

    def resolve(self, ref: str) -> str:
        """The version id ``ref`` names: an id, a unique id prefix (≥ 4 characters) or ``STRATEGY:alias``."""
        ref = ref.strip()
        if ":" in ref:
            strategy, _, alias = ref.partition(":")
            current = self.aliases(strategy)
            if alias not in current:
                known = ", ".join(f"{strategy}:{a}" for a in sorted(current)) or "none"
                raise InputRejected(Problem("version", None, f"{ref}: no such alias (set: {known})"))
            return current[alias]
        if len(ref) < MIN_PREFIX:
            raise InputRejected(Problem("version", None, f"{ref!r}: give at least {MIN_PREFIX} characters of an "
                                        "id, or STRATEGY:alias"))
        ids = self.store.ids_starting(ref.lower())
        if not ids:
            raise InputRejected(Problem("version", None, f"unknown version {ref!r} (run.py version list)"))
        if len(ids) > 1:
            raise InputRejected(Problem("version", None, f"{ref!r} is ambiguous: {', '.join(ids)}"))
        return ids[0]

    def load(self, ref: str) -> Version:
        return self.get(self.resolve(ref))

    # -- aliases --
    def move_alias(self, strategy: str, alias: str, version_id: str | None, who: str, why: str,
                   now: datetime) -> AliasMove:
        """Point ``alias`` of ``strategy`` at ``version_id`` (None retires it): one new audit row.

        Moving an alias where it already points writes nothing and returns its current row (a retried move
        after a crash is harmless). The version must be one of ``strategy``'s.
        """
        if not ALIAS_NAME.fullmatch(alias):
            raise InputRejected(Problem("alias", None, f"{alias!r}: an alias is lower-case letters and _"))
        if not why.strip():
            raise InputRejected(Problem("--why", None, "an alias move needs a reason"))
        if not who.strip():
            raise InputRejected(Problem("--who", None, "an alias move needs who made it"))
        if version_id is not None:
            version = self.get(version_id)
            if version.strategy != strategy:
                raise InputRejected(Problem("alias", None, f"version {version_id} is a {version.strategy} version; "
                                            f"it cannot be {strategy}:{alias}"))
        with self.store.transaction():
            latest = self.store.latest_alias(strategy, alias)
            previous = latest["version"] if latest else None
            if previous == version_id:
                if latest is None:
                    raise InputRejected(Problem("alias", None, f"{strategy}:{alias} is not set: nothing to retire"))
                return _move(latest)
            row = {"strategy": strategy, "name": alias, "version": version_id, "previous": previous,
                   "who": who.strip(), "why": why.strip(), "at": now.astimezone().isoformat(timespec="seconds")}
            seq = self.store.insert_alias(row)
        return _move({**row, "seq": seq})

    def aliases(self, strategy: str) -> dict[str, str]:
        """alias → version id of ``strategy``'s aliases that point at a version (retired ones left out)."""
        current: dict[str, str | None] = {}
        for row in self.store.alias_rows(strategy):
            current[row["name"]] = row["version"]
        return {alias: vid for alias, vid in sorted(current.items()) if vid is not None}

    def alias_history(self, strategy: str) -> list[AliasMove]:
        """Every alias move of ``strategy``, oldest first."""
        return [_move(r) for r in self.store.alias_rows(strategy)]


def _move(row: dict[str, Any]) -> AliasMove:
    return AliasMove(int(row["seq"]), row["strategy"], row["name"], row["version"], row["previous"], row["who"],
                     row["why"], row["at"])


def load_version(ref: str, registry: VersionRegistry | None = None) -> Version:
    """The version ``ref`` names (id, unique prefix or ``STRATEGY:alias``) from the project's database."""
    return (registry or VersionRegistry()).load(ref)


def move_alias(strategy: str, alias: str, version_id: str | None, who: str, why: str, now: datetime,
               registry: VersionRegistry | None = None) -> AliasMove:
    """:meth:`VersionRegistry.move_alias` on the project's database."""
    return (registry or VersionRegistry()).move_alias(strategy, alias, version_id, who, why, now)


# -- diff -----------------------------------------------------------------------------------------------------
DIFF_METRICS = ("total_return", "annual_return", "annual_volatility", "sharpe", "max_drawdown", "calmar",
                "monthly_win_rate", "turnover", "total_cost", "trade_count")


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: value}


def _facts(v: Version) -> dict[str, Any]:
    wf = (v.walkforward or {}).get("summary") or {}
    facts = {"strategy": v.strategy, "strategy_class": v.strategy_class, "window.start": v.start.isoformat(),
             "window.end": v.end.isoformat(), "code_commit": v.code_commit, "code_diff_hash": v.code_diff_hash,
             "config_sha256": v.config_sha256, "bars_hash": v.bars_hash,
             **{f"files.{f.field}": f"{f.path} ({f.sha256[:12]})" for f in v.files},
             **_flatten("settings", v.settings), **_flatten("backtest", v.backtest),
             **_flatten("release", v.release), **_flatten("risk_rules", v.risk_rules or {}),
             **{f"metrics.{k}": v.metrics.get(k) for k in DIFF_METRICS},
             "checks.lookahead_ok": v.lookahead_ok, "checks.identities_ok": v.identities_ok,
             "walkforward.overfit_flagged": (wf.get("overfit") or {}).get("flagged"),
             "walkforward.deflated_sharpe": (wf.get("deflated_sharpe") or {}).get("dsr")}
    return facts


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def diff_versions(a: Version, b: Version) -> list[FieldDiff]:
    """Every field whose value differs between ``a`` and ``b`` (settings, config, window, commit, metrics ...)."""
    fa, fb = _facts(a), _facts(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [FieldDiff(k, fa.get(k), fb.get(k)) for k in keys if not _same(fa.get(k), fb.get(k))]


# -- release check --------------------------------------------------------------------------------------------
def evidence_of(v: Version) -> ReleaseEvidence:
    wf = (v.walkforward or {}).get("summary") or {}
    return ReleaseEvidence(sharpe=v.metrics.get("sharpe"), max_drawdown=v.metrics.get("max_drawdown"),
                           lookahead_ok=v.lookahead_ok if any(c.kind == "lookahead" for c in v.checks) else None,
                           identities_ok=v.identities_ok if any(c.kind == "identity" for c in v.checks) else None,
                           walkforward=v.walkforward is not None,
                           overfit_flagged=(wf.get("overfit") or {}).get("flagged"),
                           deflated_sharpe=(wf.get("deflated_sharpe") or {}).get("dsr"),
                           failed_lookahead=tuple(c.name for c in v.checks if c.kind == "lookahead" and not c.ok),
                           failed_identities=tuple(c.name for c in v.checks if c.kind == "identity" and not c.ok))


def check_version(v: Version, freeze: Sequence[tuple[str, str]]) -> tuple[GateResult, ...]:
    """The pre-release gates of ``v`` under today's code: its stored settings and config validated again,
    its risk thresholds, its evidence and the active release freezes (scope, reason)."""
    from ..strategies import STRATEGIES, create_strategy

    problems: list[str] = []

    def valid(validate: Callable[[], T], default: T) -> T:
        try:
            return validate()
        except InputRejected as exc:
            problems.extend(str(p) for p in exc.problems)
            return default

    valid(lambda: create_strategy(v.strategy, v.settings, f"version {v.id}: strategy"), None)
    config = valid(lambda: v.backtest_config(), None)
    rules = valid(lambda: None if v.risk_rules is None else
                  validate_section(RiskRules, v.risk_rules, f"version {v.id}: risk rules"), None)
    gates = valid(v.release_gates, ReleaseGates())
    for f in v.files:  # the live stack reads these files: changed, they are not what the evidence is about
        path = Path(f.path)
        if not path.is_file():
            problems.append(f"{f.path}: {f.field} is gone (the version was created with it)")
        elif sha256(path.read_bytes()) != f.sha256:
            problems.append(f"{f.path}: {f.field} changed since the version was created (create a new version)")
    cls = STRATEGIES.get(v.strategy)
    if cls is not None and cls.__name__ != v.strategy_class:
        problems.append(f"version {v.id}: strategy class {v.strategy_class} is now {cls.__name__}")
    ladders = [name for name, _ in configured_ladders(rules, config.risk)] if config is not None else []
    stops = [k for k in ("stock_stop", "portfolio_stop", "drawdown_halve")
             if rules is not None and getattr(rules, k) is not None]
    detail = ", ".join([f"{name} ladder" for name in ladders] + stops)
    return check_release(evidence_of(v), not problems, bool(ladders or stops), tuple(freeze), gates,
                         config_problems=tuple(problems), risk_detail=detail)
