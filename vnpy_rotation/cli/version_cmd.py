"""``run.py version ...`` and ``run.py release check``: strategy versions, their aliases and the pre-release gates.

This module adds its parsers without importing vnpy (``run.py`` builds its parser before ``--home`` is settled);
the handlers import the registry (and so vnpy's database) when they run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

KPIS = ("annual_return", "sharpe", "max_drawdown", "calmar", "total_return", "annual_volatility", "trade_count",
        "total_cost")


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    """``version`` (create, list, show, diff, alias, history) and ``release`` (check) under ``commands``."""
    version = commands.add_parser("version", parents=[home],
                                  help="immutable strategy versions with their evidence, and aliases moved over them")
    actions = version.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[home], help="backtest a strategy's config and store it as a version")
    create.add_argument("--strategy", required=True, help="built-in strategy name, e.g. etf_rotation")
    create.add_argument("--config", type=Path, required=True,
                        help="YAML with sections strategy:, backtest:, benchmark:, release:")
    create.add_argument("--from-walkforward", type=Path, metavar="DIR",
                        help="attach a walk-forward run's summary (the --out folder of run.py walkforward)")
    create.add_argument("--start", type=parse_date, help="first trading day of the research window")
    create.add_argument("--end", type=parse_date, help="last trading day of the research window")
    create.add_argument("--note", default="", help="a note kept with the version")
    create.set_defaults(handler="vnpy_rotation.cli.version_cmd:create")
    listing = actions.add_parser("list", parents=[home], help="the stored versions and the aliases pointing at them")
    listing.add_argument("--strategy", help="only this strategy's versions")
    listing.add_argument("--json", action="store_true", help="print one JSON array instead of a table")
    listing.set_defaults(handler="vnpy_rotation.cli.version_cmd:list_versions")
    show = actions.add_parser("show", parents=[home], help="everything a version holds, its evidence included")
    show.add_argument("ref", metavar="REF", help="an id, a unique id prefix (4+ characters) or STRATEGY:alias")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler="vnpy_rotation.cli.version_cmd:show")
    diff = actions.add_parser("diff", parents=[home], help="what differs between two versions, field by field")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--json", action="store_true", help="print one JSON array of {field, a, b}")
    diff.set_defaults(handler="vnpy_rotation.cli.version_cmd:diff")
    alias = actions.add_parser("alias", parents=[home],
                               help="point an alias at a version (REF ALIAS), or retire it (--strategy NAME ALIAS "
                                    "--retire); every move is an audit row")
    alias.add_argument("names", nargs="+", metavar="REF ALIAS", help="REF ALIAS, or ALIAS with --retire")
    alias.add_argument("--strategy", help="the strategy whose alias is retired (with --retire)")
    alias.add_argument("--retire", action="store_true", help="the alias points nowhere from now on")
    alias.add_argument("--why", required=True, help="why (kept in the audit row)")
    alias.add_argument("--who", help="who moves it (default: the OS user)")
    alias.set_defaults(handler="vnpy_rotation.cli.version_cmd:alias")
    history = actions.add_parser("history", parents=[home], help="a strategy's alias moves, oldest first")
    history.add_argument("--strategy", required=True)
    history.add_argument("--json", action="store_true", help="print one JSON array")
    history.set_defaults(handler="vnpy_rotation.cli.version_cmd:history")

    release = commands.add_parser("release", parents=[home], help="pre-release checks of a strategy version")
    release_actions = release.add_subparsers(dest="action", required=True)
    check = release_actions.add_parser("check", parents=[home],
                                       help="every gate with its value and threshold; exit 1 when one fails")
    check.add_argument("ref", metavar="REF", help="an id, a unique id prefix or STRATEGY:alias")
    check.add_argument("--state", type=Path,
                       help="folder holding the risk app's risk_state.json (default: HOME/.vntrader/rotation_risk)")
    check.add_argument("--json", action="store_true", help="print one JSON array of the gates")
    check.set_defaults(handler="vnpy_rotation.cli.version_cmd:release_check")


def _registry() -> Any:
    from ..ops.versions import VersionRegistry

    return VersionRegistry()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


def _aliases_by_version(registry: Any, strategies: set[str]) -> dict[str, list[str]]:
    pointing: dict[str, list[str]] = {}
    for strategy in sorted(strategies):
        for name, vid in registry.aliases(strategy).items():
            pointing.setdefault(vid, []).append(name)
    return pointing


def _summary(v: Any) -> dict[str, Any]:
    return {"id": v.id, "strategy": v.strategy, "created_at": v.created_at, "created_by": v.created_by,
            "window": [v.start.isoformat(), v.end.isoformat()], "code_commit": v.code_commit,
            "note": v.note, **{k: v.metrics.get(k) for k in ("sharpe", "annual_return", "max_drawdown")},
            "lookahead_ok": v.lookahead_ok, "identities_ok": v.identities_ok,
            "walkforward": v.walkforward is not None}


def create(args: argparse.Namespace) -> int:
    from ..ops.experiments import link_evidence, track
    from ..ops.regress import save_with_baseline
    from ..ops.versions import build_version_run

    with track("backtest") as experiment:  # the version's evidence: its backtest is an experiment
        version, run = build_version_run(args.strategy, args.config, args.start, args.end,
                                         walkforward_dir=args.from_walkforward, note=args.note)
        experiment.version_done(version, run)
        saved, new = save_with_baseline(_registry(), version, run, open_end=args.end is None)
    links = link_evidence(saved, experiment)
    print(saved.id)
    print(f"{'created' if new else 'exists already (same content)'}: {saved.strategy} version {saved.id}, "
          f"window {saved.start} … {saved.end}, commit {saved.code_commit}")
    print("  " + ", ".join(f"{k} {_fmt(saved.metrics.get(k))}" for k in ("sharpe", "annual_return", "max_drawdown")))
    print(f"  look-ahead {'ok' if saved.lookahead_ok else 'FAILED'}, identities "
          f"{'ok' if saved.identities_ok else 'FAILED'}, walk-forward "
          f"{'attached' if saved.walkforward else 'not attached'}")
    print("  evidence: " + (", ".join(f"{relation} {eid}" for eid, relation in links) or "no experiment linked"))
    return 0


def list_versions(args: argparse.Namespace) -> int:
    registry = _registry()
    versions = registry.versions(args.strategy)
    pointing = _aliases_by_version(registry, {v.strategy for v in versions})
    if args.json:
        print(json.dumps([{**_summary(v), "aliases": pointing.get(v.id, [])} for v in versions], ensure_ascii=False))
        return 0
    if not versions:
        print("no versions stored" + (f" for {args.strategy}" if args.strategy else ""))
        return 0
    rows = [("id", "strategy", "created", "window", "sharpe", "max_dd", "commit", "aliases", "note")]
    for v in versions:
        rows.append((v.id, v.strategy, v.created_at, f"{v.start}…{v.end}", _fmt(v.metrics.get("sharpe")),
                     _fmt(v.metrics.get("max_drawdown")), v.code_commit[:12] + ("+dirty" if "+dirty" in v.code_commit
                                                                                 else ""),
                     ",".join(pointing.get(v.id, [])) or "-", v.note or "-"))
    _table(rows)
    return 0


def _document(v: Any, aliases: list[str]) -> dict[str, Any]:
    from dataclasses import asdict

    from ..ops.versions import canonical_json

    doc: dict[str, Any] = json.loads(canonical_json(asdict(v)))
    doc.pop("equity_dates"), doc.pop("equity_values")
    doc["equity"] = {"days": len(v.equity_dates), "first": v.equity_dates[0] if v.equity_dates else None,
                     "last": v.equity_dates[-1] if v.equity_dates else None,
                     "final": v.equity_values[-1] if v.equity_values else None}
    doc["aliases"] = aliases
    return doc


def show(args: argparse.Namespace) -> int:
    registry = _registry()
    v = registry.load(args.ref)
    aliases = [name for name, vid in registry.aliases(v.strategy).items() if vid == v.id]
    from ..ops.experiments import ExperimentRegistry

    evidence = ExperimentRegistry().links_of_version(v.id)
    if args.json:
        print(json.dumps({**_document(v, aliases), "experiments": [{"id": e, "relation": r} for e, r in evidence]},
                         ensure_ascii=False))
        return 0
    print(f"version {v.id}  ({v.strategy}, {v.strategy_class})  aliases: {', '.join(aliases) or '-'}")
    print(f"  created {v.created_at} by {v.created_by}; note: {v.note or '-'}")
    print(f"  code {v.code_commit}{'  (changes ' + v.code_diff_hash + ')' if v.code_diff_hash else ''}")
    print(f"  window {v.start} … {v.end}; bars of {len(v.bars)} symbols, signature {v.bars_hash}")
    print(f"  config {v.config_path} (sha256 {v.config_sha256[:16]})")
    for f in v.files:
        print(f"  file {f.field}: {f.path} (sha256 {f.sha256[:16]})")
    print(f"  settings (hash {v.settings_hash[:12]}): {_fmt(v.settings)}")
    print(f"  backtest (hash {v.backtest_hash[:12]}): {_fmt(v.backtest)}")
    print(f"  risk rules: {_fmt(v.risk_rules)}")
    print(f"  release gates: {_fmt(v.release)}")
    print("  metrics: " + ", ".join(f"{k} {_fmt(v.metrics.get(k))}" for k in KPIS))
    for c in v.checks:
        print(f"  check {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    if v.walkforward:
        s = v.walkforward["summary"]
        print(f"  walk-forward {v.walkforward['folder']}: holdout {_fmt(s.get('holdout'))}, overfit "
              f"{_fmt((s.get('overfit') or {}).get('flagged'))}, deflated Sharpe "
              f"{_fmt((s.get('deflated_sharpe') or {}).get('dsr'))}, holdout params {_fmt(s.get('holdout_params'))}")
        print(f"  walk-forward holdout metrics: {_fmt(v.walkforward.get('holdout_metrics'))}")
    else:
        print("  walk-forward: not attached")
    print(f"  daily equity: {len(v.equity_dates)} days, final {_fmt(v.equity_values[-1] if v.equity_values else None)}")
    print("  experiments: " + (", ".join(f"{e} ({r})" for e, r in evidence) or "none linked"))
    return 0


def diff(args: argparse.Namespace) -> int:
    from ..ops.versions import diff_versions

    registry = _registry()
    a, b = registry.load(args.a), registry.load(args.b)
    changes = diff_versions(a, b)
    if args.json:
        print(json.dumps([{"field": d.field, "a": d.a, "b": d.b} for d in changes], ensure_ascii=False, default=str))
        return 0
    print(f"{a.id} → {b.id}: {len(changes)} fields differ")
    for d in changes:
        print(f"  {d.field}: {_fmt(d.a)} → {_fmt(d.b)}")
    return 0


def alias(args: argparse.Namespace) -> int:
    from ..errors import InputRejected, Problem
    from ..ops.versions import os_user

    registry = _registry()
    who = args.who or os_user()
    if args.retire:
        if len(args.names) != 1 or not args.strategy:
            raise InputRejected(Problem("version alias", None, "--retire takes --strategy NAME and one ALIAS"))
        strategy, name, target = args.strategy, args.names[0], None
    else:
        if len(args.names) != 2:
            raise InputRejected(Problem("version alias", None, "give REF ALIAS (or --strategy NAME ALIAS --retire)"))
        target = registry.resolve(args.names[0])
        strategy = args.strategy or registry.get(target).strategy
        name = args.names[1]
    move = registry.move_alias(strategy, name, target, who, args.why, datetime.now())
    print(f"{move.strategy}:{move.alias} {move.previous_id or '-'} → {move.version_id or 'retired'} "
          f"({move.why}; {move.who}, {move.at})")
    return 0


def history(args: argparse.Namespace) -> int:
    moves = _registry().alias_history(args.strategy)
    if args.json:
        print(json.dumps([m.__dict__ for m in moves], ensure_ascii=False))
        return 0
    if not moves:
        print(f"no alias moves for {args.strategy}")
        return 0
    rows = [("#", "when", "alias", "from", "to", "who", "why")]
    rows += [(str(m.seq), m.at, m.alias, m.previous_id or "-", m.version_id or "retired", m.who, m.why) for m in moves]
    _table(rows)
    return 0


def active_freezes(strategy: str, state: Path | None) -> list[tuple[str, str]]:
    """The raised ``release_freeze`` flags on ``strategy``, the account or every scope, as (scope, reason)."""
    from vnpy.trader.utility import TEMP_DIR  # settled by run.py --home

    from ..apps.risk.engine import STATE_FOLDER
    from ..apps.risk.state_file import STATE_FILENAME, RiskStateFile

    folder = state or Path(TEMP_DIR) / STATE_FOLDER
    if not (folder / STATE_FILENAME).is_file():
        return []  # the risk app has not run in this home: nothing froze releases
    return RiskStateFile(folder).freezes(strategy)


def release_check(args: argparse.Namespace) -> int:
    from ..canary.release import failing
    from ..ops.versions import check_version

    v = _registry().load(args.ref)
    results = check_version(v, active_freezes(v.strategy, args.state))
    failed = failing(results)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], ensure_ascii=False, default=str))
    else:
        print(f"release check of {v.strategy} version {v.id} ({date.today()})")
        _table([("gate", "value", "threshold", "result", "reason")] +
               [(r.name, _fmt(r.value), _fmt(r.threshold), "PASS" if r.passed else "FAIL", r.reason) for r in results])
        if failed:
            print(f"REFUSED: {len(failed)} gate(s) failed: " + "; ".join(f"{r.name} ({r.reason})" for r in failed))
        else:
            print(f"all {len(results)} gates pass: {v.id} may enter a canary")
    return 1 if failed else 0
