"""``run.py canary drill|status|approve|reject`` and ``run.py rollback``: a strategy's canary release.

``canary drill`` replays history through the live stack (replay gateway, RotationEngine with the risk app)
with a real promotion ladder, then injects measured trouble through the replay gateway (extra slippage,
partial fills) until a rollback rule trips on the measured values, and writes a report of every stage, every
session's gate values, the rollback and its cost. ``status`` reads a strategy's canary from its state;
``approve``, ``reject`` and ``rollback`` write a command beside the state that the running engine applies at
the next close (checked against the release table when written, so a meaningless one is refused at once).

This module adds its parsers without importing vnpy (``run.py`` builds its parser before ``--home`` is settled).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any, Callable

STATE_HELP = "folder holding the strategy's state (default: HOME/.vntrader/rotation_state; a trade run: OUT/state)"
# The drill's stage table: short stages so a few months of history show the whole ladder.
DRILL_STAGES = (("shadow", 0.0, 3), ("5pct", 0.05, 3), ("20pct", 0.20, 3), ("50pct", 0.50, 3), ("full", 1.0, 3))
DRILL_TROUBLE = {"extra_slippage_bps": 80.0, "fill_ratio": 0.5}  # from the 20 % stage's first session on
DRILL_TOLERANCE_BPS = 150.0  # the orders' limit room, as live (30 bp) but wide enough for the injected slippage


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Callable[[str], date]) -> None:
    canary = commands.add_parser("canary", parents=[home], help="canary releases: the drill, a strategy's stage, "
                                                                "approve or reject a promotion")
    actions = canary.add_subparsers(dest="action", required=True)
    drill = actions.add_parser("drill", parents=[home], help="replay a canary through the live stack, inject "
                                                             "trouble until a rollback rule trips, write the report")
    drill.add_argument("--strategy", required=True, help="built-in strategy name, e.g. etf_rotation")
    drill.add_argument("--candidate", required=True, help="the candidate version (id, prefix or STRATEGY:alias)")
    drill.add_argument("--champion", help="the champion version (default: the strategy's champion alias)")
    drill.add_argument("--start", type=parse_date, required=True, help="first session replayed")
    drill.add_argument("--end", type=parse_date, required=True, help="last session replayed")
    drill.add_argument("--config", type=Path, help="YAML with canary: (stages, gates) and trouble: sections "
                                                   "(default: a short stage table, 80 bp slippage and half fills "
                                                   "from the third stage)")
    drill.add_argument("--out", type=Path, required=True, help="output folder: drill.md, drill_sessions.csv, …")
    drill.add_argument("--fresh", action="store_true", help="start over in --out")
    drill.set_defaults(handler="vnpy_rotation.cli.canary_cmd:drill")
    status = actions.add_parser("status", parents=[home], help="a strategy's canary: stage, gates, history, books")
    status.add_argument("--strategy", required=True)
    status.add_argument("--state", type=Path, help=STATE_HELP)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler="vnpy_rotation.cli.canary_cmd:status")
    for event, text in (("approve", "approve a promotion that waits for approval"),
                        ("reject", "decline a promotion that waits for approval (the candidate stays)")):
        parser = actions.add_parser(event, parents=[home], help=text)
        parser.add_argument("--strategy", required=True)
        parser.add_argument("--reason", required=True, help="why (kept in the release history)")
        parser.add_argument("--state", type=Path, help=STATE_HELP)
        parser.set_defaults(handler=f"vnpy_rotation.cli.canary_cmd:{event}")
    rollback = commands.add_parser("rollback", parents=[home],
                                   help="roll a strategy's canary back to its champion, or move it to a version")
    rollback.add_argument("--strategy", required=True)
    rollback.add_argument("--to", metavar="VERSION", help="move the strategy to this version (no canary running; "
                                                          "default: roll the running canary back)")
    rollback.add_argument("--reason", default="manual rollback", help="why (kept in the history and the audit rows)")
    rollback.add_argument("--state", type=Path, help=STATE_HELP)
    rollback.set_defaults(handler="vnpy_rotation.cli.canary_cmd:rollback")


# -- commands on a state folder ---------------------------------------------------------------------------
def _state(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    from vnpy.trader.utility import get_folder_path  # settled by run.py --home

    from ..errors import InputRejected, Problem
    from ..live.state_file import read_json

    folder = args.state or get_folder_path("rotation_state")
    path = Path(folder) / f"{args.strategy}.json"
    state = read_json(path)
    if state is None:
        raise InputRejected(Problem(str(path), None, f"no state of strategy {args.strategy!r} here (or give --state)"))
    return Path(folder), state


def _ledger(args: argparse.Namespace) -> tuple[Path, Any]:
    from ..errors import InputRejected, Problem

    folder, state = _state(args)
    if state.get("canary") is None:
        raise InputRejected(Problem(args.strategy, None, "no canary has run on this strategy"))
    return folder, read_ledger(folder, args.strategy, state["canary"])


def read_ledger(folder: Path, strategy: str, raw: Any) -> Any:
    """The canary ledger stored in a strategy's state (see :func:`~vnpy_rotation.apps.rotation.canary_records.read_ledger`)."""
    from ..apps.rotation.canary_records import read_ledger as read

    return read(folder, strategy, raw)


def status(args: argparse.Namespace) -> int:
    from ..apps.rotation.canary_records import canary_view

    _, ledger = _ledger(args)
    view = canary_view(ledger)
    if args.json:
        print(json.dumps(view, ensure_ascii=False, default=str))
        return 0
    print(f"{view['strategy']}: candidate {view['candidate']} beside champion {view['champion'] or '-'} "
          f"since {view['started']}")
    print(f"status {view['status']}, stage {view['stage']} ({view['share']:.0%} of the capital), "
          f"{view['sessions_in_stage']} sessions in it, approval {view['approval']}")
    for gate in view["gates"]:
        print("  " + gate_line(gate))
    for row in view["history"]:
        print(f"  {row['day']}  {row['from']} → {row['to']}  ({row['event']}: {row['reason']})")
    return 0


def gate_line(gate: dict[str, Any]) -> str:
    verdict = {True: "ok", False: "FAIL", None: "not evaluated"}[gate["passed"]]
    value = "-" if gate["value"] is None else f"{gate['value']:.4g}"
    threshold = "-" if gate["threshold"] is None else f"{gate['threshold']:.4g}"
    note = f" ({gate['note']})" if gate.get("note") else ""
    return f"{gate['kind']:<8} {gate['name']:<12} {value:>10} vs {threshold:<8} {verdict}{note}"


def _command(args: argparse.Namespace, event: str, to: str = "") -> int:
    from ..apps.rotation.canary_records import CanaryCommand, command_path
    from ..canary import machine
    from ..live.state_file import write_atomic

    folder, ledger = _ledger(args)
    machine.step(ledger.machine, event, date.today(), args.reason, ledger.config.stages)  # refuses a meaningless one
    path = command_path(folder, args.strategy)
    write_atomic(path, CanaryCommand(event, args.reason, "cli", to).to_json())
    print(f"{args.strategy}: {event} written to {path}; the engine applies it at the next close")
    return 0


def approve(args: argparse.Namespace) -> int:
    return _command(args, "approve")


def reject(args: argparse.Namespace) -> int:
    return _command(args, "reject")


def rollback(args: argparse.Namespace) -> int:
    """A running canary: its candidate's capital back to the champion. None running (or ``--to``): the
    strategy moves to ``--to`` (default its ``last_stable`` version) at the next close."""
    from ..apps.rotation.canary_records import CanaryCommand, command_path
    from ..canary.machine import TERMINAL
    from ..errors import InputRejected, Problem
    from ..live.state_file import write_atomic
    from ..ops.versions import VersionRegistry

    folder, state = _state(args)
    ledger = None if state.get("canary") is None else read_ledger(folder, args.strategy, state["canary"])
    running = ledger is not None and ledger.machine.status not in TERMINAL
    if running and not args.to:
        return _command(args, "manual_rollback")
    if running:
        raise InputRejected(Problem("--to", None, "a canary is running: roll it back first (rollback without --to), "
                                    "then move the strategy to another version"))
    registry = VersionRegistry()
    target = registry.resolve(args.to) if args.to else registry.aliases(args.strategy).get("last_stable", "")
    if not target:
        raise InputRejected(Problem("--to", None, f"{args.strategy} has no last_stable version; name one with --to"))
    if registry.get(target).strategy != args.strategy:
        raise InputRejected(Problem("--to", None, f"version {target} is not a {args.strategy} version"))
    path = command_path(folder, args.strategy)
    write_atomic(path, CanaryCommand("switch", args.reason, "cli", target).to_json())
    print(f"{args.strategy}: move to version {target} written to {path}; the engine applies it at the next close")
    return 0


# -- the drill ---------------------------------------------------------------------------------------------
def drill(args: argparse.Namespace) -> int:
    from ..canary.config import CanaryConfig, Stage, canary_config
    from ..config import read_yaml
    from ..errors import InputRejected, Problem
    from ..live.trouble import Trouble
    from ..market.calendar import default_calendar
    from ..ops.versions import VersionRegistry

    registry = VersionRegistry()
    candidate = registry.load(args.candidate)
    champion_ref = args.champion or f"{args.strategy}:champion"
    try:
        champion = registry.load(champion_ref)
    except InputRejected:
        raise InputRejected(Problem("--champion", None, f"{args.strategy} has no champion version: name one with "
                                    "--champion or set the alias (run.py version alias ID champion --why …)")) from None
    for flag, version in (("--candidate", candidate), ("--champion", champion)):
        if version.strategy != args.strategy:
            raise InputRejected(Problem(flag, None, f"version {version.id} is a {version.strategy} version"))
    if candidate.id == champion.id:
        raise InputRejected(Problem("--candidate", None, "the candidate is the champion itself"))
    raw = read_yaml(args.config) if args.config else {}
    source = str(args.config) if args.config else "drill defaults"
    unknown = set(raw) - {"canary", "trouble"}
    if unknown:
        raise InputRejected(Problem(source, None, f"unknown sections {sorted(unknown)}; allowed: canary, trouble"))
    stages = tuple(Stage(name=n, share=s, min_sessions=m) for n, s, m in DRILL_STAGES)
    config = canary_config(raw["canary"], f"{source}: canary") if raw.get("canary") is not None \
        else CanaryConfig(stages=stages)
    sessions = default_calendar().between(args.start, args.end)
    if "trouble" in raw:
        from ..config import validate_section

        trouble = validate_section(Trouble, raw["trouble"], f"{source}: trouble")
    else:  # from the first session of the third stage the candidate could reach
        at = sum(s.min_sessions for s in config.stages[:2]) + 1
        if at >= len(sessions):
            raise InputRejected(Problem("--start/--end", None, f"{len(sessions)} sessions: the drill needs more than "
                                        f"{at} to reach its third stage before the trouble starts"))
        trouble = Trouble(start=sessions[at].date(), **DRILL_TROUBLE)
    from ..ops.experiments import start_inputs, track

    inputs = start_inputs(args.strategy, dict(champion.settings), None, args.start, args.end,
                          f"version {champion.id}", candidate=candidate.id, champion=champion.id)
    with track("drill", inputs, out=args.out) as experiment:
        experiment.exit_code = run_drill(args.strategy, champion, candidate, config, trouble, args.start, args.end,
                                         args.out, args.fresh, experiment=experiment)
    return experiment.exit_code


def run_drill(strategy: str, champion: Any, candidate: Any, config: Any, trouble: Any, start: date, end: date,
              out: Path, fresh: bool, output: Callable[[str], None] = print, experiment: Any = None) -> int:
    from vnpy.trader.setting import SETTINGS

    from ..apps.rotation.daemon import CanaryStart, TradeSpec, claim_out_folder, run_parameters, run_replay
    from .canary_report import write_drill_report

    SETTINGS["log.active"] = False  # the engine's order lines would bury the report
    spec = TradeSpec(strategy, dict(champion.settings), champion.backtest_config(), out, start, end,
                     tolerance_bps=DRILL_TOLERANCE_BPS,
                     canary=CanaryStart(candidate.id, config, champion.id, "drill", "canary drill", rehearsal=True),
                     version=champion.id, trouble=trouble, until_canary_ends=True)
    parameters = run_parameters(spec, "replay")
    output(f"{out}: {claim_out_folder(out, parameters, fresh)}")
    run_replay(spec, output=lambda _: None)
    report = write_drill_report(out, strategy)
    if experiment is not None:
        experiment.drill_done(spec, report)
    output(report.summary())
    return 0 if report.rolled_back else 1
