"""``run.py replay-week``: replay one week of a live run's sessions through the live stack and compare with what
live did (exit 0 within thresholds, 1 differences, 2 a user error). The parser is added without importing vnpy."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser, parse_date: Any) -> None:
    week = commands.add_parser("replay-week", parents=[home],
                               help="replay a week of a live run through the live stack and report the differences "
                                    "(orders, fills, slippage); exit 1 beyond the thresholds")
    week.add_argument("--live", type=Path, required=True, help="the live run's folder (the --out of run.py trade)")
    week.add_argument("--week", help="ISO week (2024-W37) or a date inside it (default: the run's last complete week)")
    week.add_argument("--config", type=Path, help="YAML with a replay_week: section (thresholds)")
    week.add_argument("--out", type=Path, required=True,
                      help="report folder: replay_week.md, replay_week_diff.csv, replay/ (the replay's run folder)")
    week.set_defaults(handler="vnpy_rotation.cli.replay_week_cmd:run")


def run(args: argparse.Namespace) -> int:
    from ..apps.rotation.daemon import TradeSpec, claim_out_folder, run_parameters, run_replay
    from ..ops.replay_week import compare_week, read_run, read_thresholds, week_sessions, week_span, write_report

    thresholds = read_thresholds(args.config)
    live = read_run(args.live)
    label, monday, sunday = week_span(args.week, live.days)
    sessions = week_sessions(live, monday, sunday, label)
    p = live.parameters
    first = date.fromisoformat(p["start"]) if p.get("start") else live.days[0]
    # The same strategy, settings and config from the run's first session: the replay's state at the week's
    # start is the one those sessions build (the report compares it with live's).
    spec = TradeSpec(p["strategy"], dict(p.get("settings") or {}), live.config(), args.out / "replay", first,
                     sessions[-1], float(p.get("tolerance_bps") or 0.0), int(p.get("max_rounds") or 3))
    claim_out_folder(spec.out, run_parameters(spec, "replay"), fresh=True)
    print(f"replaying {p['strategy']} {first} … {sessions[-1]} (week {label}: {sessions[0]} … {sessions[-1]})")
    run_replay(spec, output=lambda line: line.startswith("warning") and print(line))
    result = compare_week(live, read_run(spec.out), label, sessions, thresholds)
    md, csv = write_report(result, args.live, spec.out, args.out)
    print(f"{label}: {'within thresholds' if result.within else f'{len(result.diff)} differences'}; report: {md}, {csv}")
    return 0 if result.within else 1
