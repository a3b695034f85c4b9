"""``run.py experiments list|show|compare``: the experiment registry (every backtest, walk-forward, replay, drill).

This module adds its parsers without importing vnpy (``run.py`` builds its parser before ``--home`` is settled);
the handlers import the registry (and so vnpy's database) when they run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from ..ops.experiment_store import KINDS
from .version_cmd import _fmt, _table

LIST_METRICS = ("sharpe", "annual_return", "max_drawdown")


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    """``experiments`` (list, show, compare) under ``commands``."""
    experiments = commands.add_parser("experiments", parents=[home],
                                      help="the recorded runs (backtest, walkforward, replay, drill ...): list, "
                                           "show, compare")
    actions = experiments.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[home], help="recorded experiments, newest last")
    listing.add_argument("--kind", choices=KINDS, help="only this kind")
    listing.add_argument("--strategy", help="only this strategy's experiments")
    listing.add_argument("--since", type=parse_date, help="only those started on or after this day (UTC)")
    listing.add_argument("--limit", type=int, default=20, help="the last N (default 20; 0: all)")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler="vnpy_rotation.cli.experiments_cmd:list_experiments")
    show = actions.add_parser("show", parents=[home], help="an experiment's inputs, results and linked versions")
    show.add_argument("id", metavar="ID", help="an experiment id or a unique prefix (8+ characters)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler="vnpy_rotation.cli.experiments_cmd:show")
    compare = actions.add_parser("compare", parents=[home],
                                 help="the inputs that differ between two experiments and their metrics side by side")
    compare.add_argument("a", metavar="A")
    compare.add_argument("b", metavar="B")
    compare.add_argument("--json", action="store_true", help="print one JSON object {inputs, metrics}")
    compare.set_defaults(handler="vnpy_rotation.cli.experiments_cmd:compare")


def _registry() -> Any:
    from ..ops.experiments import ExperimentRegistry

    return ExperimentRegistry()


def _document(e: Any, versions: list[tuple[str, str]]) -> dict[str, Any]:
    doc = asdict(e)
    doc["versions"] = [{"id": v, "relation": r} for v, r in versions]
    return doc


def _brief(value: Any) -> str:
    """A long section (the backtest: section) as its size and hash: ``--json`` shows it whole."""
    text = _fmt(value)
    if len(text) <= 240:
        return text
    from ..ops.versions import canonical_json, sha256

    return f"{len(value)} fields, hash {sha256(canonical_json(value))[:12]} (--json shows them)"


def list_experiments(args: argparse.Namespace) -> int:
    from ..errors import InputRejected, Problem

    if args.limit < 0:
        raise InputRejected(Problem("--limit", None, f"{args.limit}: must be 0 (all) or more"))
    found = _registry().list(kind=args.kind, strategy=args.strategy, since=args.since)
    shown = found[-args.limit:] if args.limit else found
    if args.json:
        print(json.dumps([_document(e, []) for e in shown], ensure_ascii=False))
        return 0
    if not shown:
        print("no experiments recorded" + "".join(f" {k} {v}" for k, v in (("of kind", args.kind),
                                                                        ("for", args.strategy)) if v))
        return 0
    rows = [("id", "kind", "strategy", "status", "window", "data", *LIST_METRICS, "output")]
    for e in shown:
        i = e.inputs
        rows.append((e.id, e.kind, i.strategy, e.status, f"{i.start}…{i.end}" if i.start else "-",
                     i.bars_hash or "-", *(_fmt(e.metrics.get(k)) for k in LIST_METRICS), e.out_dir or "-"))
    _table(rows)
    if len(found) > len(shown):
        print(f"({len(found) - len(shown)} older not shown: --limit 0 lists all)")
    return 0


def show(args: argparse.Namespace) -> int:
    registry = _registry()
    e = registry.get(args.id)
    versions = registry.versions_of(e.id)
    if args.json:
        print(json.dumps(_document(e, versions), ensure_ascii=False))
        return 0
    i = e.inputs
    print(f"experiment {e.id}  ({e.kind}, {i.strategy})  status {e.status}"
          + (f", exit code {e.exit_code}" if e.exit_code else ""))
    if e.error:
        print(f"  error: {e.error}")
    print(f"  started {e.started_at}, finished {e.finished_at} ({e.duration_s:.1f} s) by {e.who}")
    print(f"  command: {e.command}")
    print(f"  code {i.code_commit or '-'}{'  (changes ' + i.code_diff_hash + ')' if i.code_diff_hash else ''}")
    print(f"  window {i.start or '-'} … {i.end or '-'}; bars of {i.bars_symbols} symbols, signature "
          f"{i.bars_hash or '-'}")
    print(f"  config {i.config_path or '-'}" + (f" (sha256 {i.config_sha256[:16]})" if i.config_sha256 else ""))
    print(f"  settings (hash {i.settings_hash[:12]}): {_fmt(i.settings)}")
    for key, value in i.extra.items():
        print(f"  {key}: {_brief(value)}")
    print("  metrics: " + (", ".join(f"{k} {_fmt(v)}" for k, v in e.metrics.items()) or "-"))
    for key, value in e.results.items():
        print(f"  {key}: {_fmt(value)}")
    print(f"  output: {e.out_dir or '-'}")
    print("  versions: " + (", ".join(f"{v} ({r})" for v, r in versions) or "none linked"))
    return 0


def compare(args: argparse.Namespace) -> int:
    from ..ops.experiments import compare as compare_experiments

    registry = _registry()
    a, b = registry.get(args.a), registry.get(args.b)
    inputs, metrics = compare_experiments(a, b)
    if args.json:
        print(json.dumps({"a": a.id, "b": b.id, "inputs": [asdict(d) for d in inputs],
                          "metrics": [asdict(m) for m in metrics]}, ensure_ascii=False, default=str))
        return 0
    print(f"{a.id} → {b.id}: {len(inputs)} inputs differ")
    for d in inputs:
        print(f"  {d.field}: {_fmt(d.a)} → {_fmt(d.b)}")
    if metrics:
        rows = [("metric", a.id, b.id, "difference")]
        rows += [(m.name, _fmt(m.a), _fmt(m.b), "-" if m.difference is None else f"{m.difference:+.4f}")
                 for m in metrics]
        _table(rows)
    return 0
