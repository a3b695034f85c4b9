"""The weekly operating audit of a replay or live run (``python run.py weekly-audit --run OUT --out DIR``).

One folder per week with the five deliverables and one index page linking them (:data:`LAYOUT`):

1. ``kpi/`` — the KPI snapshot at the week's last session and the week's rows of the KPI history;
2. ``var_es/`` — the risk report (:mod:`vnpy_rotation.research.risk_report`, the same as ``run.py risk report``)
   over the week and the trailing VaR window it needs, plus the week's exceptions;
3. ``attribution/`` — the P&L attribution of the week;
4. ``changes.csv`` / ``changes.md`` — the change and rollback log (:mod:`vnpy_rotation.ops.change_log`);
5. ``adr.md`` — an ADR skeleton pre-filled with the week's changes;

and ``targets.csv`` with the quarterly targets measured from the quarter's first day to the week's last day
(:func:`targets`). The KPI, attribution and experiment modules are called through one adapter each
(:func:`kpi_snapshot`, :func:`kpi_history`, :func:`attribute`, :func:`experiments_for`); a module that is not
installed makes its deliverable say so and its target ``n.a.``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..backtest.report_html import _CSS, blocks_html
from ..backtest.report_md import blocks_markdown
from ..backtest.risk_section import Block
from ..errors import InputRejected, Problem, RotationError
from ..live.schedule import SHANGHAI
from ..live.session_log import SESSIONS_FILE
from ..live.state_file import read_json
from ..market.calendar import default_calendar
from .availability import Availability, availability, read_log, run_schedule
from .change_log import (
    ParameterChange,
    adr_markdown,
    alias_rows,
    canary_rows,
    change_table,
    changes_markdown,
    parameter_changes,
    risk_rows,
)

LAYOUT = {"kpi": "kpi/snapshot.md", "var_es": "var_es/risk_report.md", "attribution": "attribution/",
          "changes": "changes.md", "adr": "adr.md"}
AVAILABILITY_TARGET = 0.995
ROLLBACK_TARGET = 1
COVERAGE_TARGET = 0.90
TRACEABLE_TARGET = 1.0
WEEK = re.compile(r"(\d{4})-W(\d{2})")


# -- adapters: the one place each sibling module is called ---------------------------------------------
def kpi_snapshot(run: Path, day: date) -> Any:
    """The KPI snapshot of ``run`` at ``day`` (an object with ``.markdown()``)."""
    from .kpi import snapshot_run

    return snapshot_run(run, day)


def kpi_history(run: Path, since: date) -> pd.DataFrame:
    """``run``'s KPI history from ``since`` (date, scope, kpi, value, baseline, threshold, status, run)."""
    from .kpi_store import kpi_history as history

    return history(since=since, run=run)


def attribute(run: Path, start: date, end: date) -> Any:
    """The P&L attribution of ``run`` over ``start`` … ``end`` (``.summary``, ``.coverage``, ``.write(out)``)."""
    from .attribution_run import attribute_folder

    return attribute_folder(run, start, end)


def experiments_for(version_id: str) -> list[Any]:
    """The experiments recorded behind ``version_id``."""
    from .experiments import ExperimentRegistry

    return list(ExperimentRegistry().for_version(version_id))


def _unavailable(exc: Exception) -> str:
    if isinstance(exc, ImportError):
        return f"unavailable: {exc.name or 'a module'} is not installed"
    if isinstance(exc, RotationError):
        return f"unavailable: {str(exc).splitlines()[0]}"
    return f"unavailable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


# -- the week ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditWeek:
    """An ISO week (Monday … Sunday) and the quarter of its last exchange session (a week whose only sessions
    fall before a quarter's first day, e.g. 2024-09-30 before the National Day holiday, belongs to the quarter
    it traded in)."""

    label: str
    start: date
    end: date

    @property
    def quarter_start(self) -> date:
        sessions = default_calendar().between(self.start, self.end)
        anchor = sessions[-1].date() if len(sessions) else self.end
        return date(anchor.year, 3 * ((anchor.month - 1) // 3) + 1, 1)

    @classmethod
    def of(cls, day: date) -> AuditWeek:
        year, week, weekday = day.isocalendar()
        monday = day - timedelta(days=weekday - 1)
        return cls(f"{year}-W{week:02d}", monday, monday + timedelta(days=6))


def parse_week(text: str) -> AuditWeek:
    """``2024-W37`` or a date ``2024-09-11`` (its ISO week)."""
    text = text.strip()
    match = WEEK.fullmatch(text)
    try:
        if match:
            return AuditWeek.of(date.fromisocalendar(int(match[1]), int(match[2]), 1))
        return AuditWeek.of(date.fromisoformat(text))
    except ValueError:
        raise InputRejected(Problem("--week", None, f"{text!r} is not an ISO week (2024-W37) or a date "
                                    "(2024-09-11)")) from None


def run_days(run: Path) -> list[date]:
    """The sessions the run closed (``daily_summary.csv``)."""
    path = run / "daily_summary.csv"
    if not path.is_file():
        raise InputRejected(Problem(str(path), None, "missing: give the --out folder of a `run.py trade` run"))
    dates = pd.to_datetime(pd.read_csv(path, usecols=["date"])["date"], errors="coerce")
    if dates.isna().any():
        line = int(dates.index[dates.isna()][0]) + 2
        raise InputRejected(Problem(str(path), line, "date: not a date"))
    return sorted(d.date() for d in dates)


def default_week(days: Sequence[date]) -> AuditWeek:
    """The last ISO week whose every trading day the run closed."""
    if not days:
        raise InputRejected(Problem("--run", None, "the run closed no session yet: nothing to audit"))
    calendar = default_calendar()
    week = AuditWeek.of(days[-1])
    for _ in range(60):
        sessions = [d.date() for d in calendar.between(week.start, week.end)]
        if sessions and days[0] <= sessions[0] and sessions[-1] <= days[-1]:
            return week
        week = AuditWeek.of(week.start - timedelta(days=1))
        if week.end < days[0]:
            break
    raise InputRejected(Problem("--run", None, f"the run ({days[0]} … {days[-1]}) holds no complete week; "
                                "give --week"))


# -- targets ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    goal: str
    status: str  # PASS | FAIL | n.a.
    how: str

    def shown(self) -> str:
        if self.value is None:
            return "n.a."
        return f"{self.value:.0f}" if self.name == "rollbacks" else f"{self.value:.2%}"


def _judge(value: float | None, passes: bool) -> str:
    return "n.a." if value is None else "PASS" if passes else "FAIL"


@dataclass(frozen=True)
class AuditResult:
    folder: Path
    week: AuditWeek
    targets: tuple[Target, ...]
    index: str  # the index page's markdown

    @property
    def passed(self) -> bool:
        """Every measurable target passes."""
        return all(t.status != "FAIL" for t in self.targets)


# -- the audit --------------------------------------------------------------------------------------------
def run_audit(run: Path, out: Path, week: AuditWeek | None = None) -> AuditResult:
    """Write the week's deliverables, targets and index into ``out``; the result says whether targets pass."""
    run = Path(run)
    days = run_days(run)
    week = week or default_week(days)
    parameters = (read_json(run / "state" / "run_parameters.json") or {}).get("parameters") or {}
    strategy = str(parameters.get("strategy") or "")
    if not strategy:
        raise InputRejected(Problem(str(run / "state" / "run_parameters.json"), None,
                                    "no strategy recorded: give the --out folder of a `run.py trade` run"))
    in_week = [d for d in days if week.start <= d <= week.end]
    if not in_week:
        raise InputRejected(Problem("--week", None, f"the run closed no session in {week.label} "
                                    f"({days[0]} … {days[-1]})"))
    out.mkdir(parents=True, exist_ok=True)
    sections: dict[str, list[Block]] = {}
    sections["1. KPI snapshot"] = _kpi(run, out / "kpi", week, in_week[-1])
    sections["2. VaR/ES exceptions"] = _var_es(run, out / "var_es", strategy, days, week)
    coverage_qtd, blocks = _attribution(run, out / "attribution", week)
    sections["3. Attribution"] = blocks
    changes, qtd_changes, params, blocks = _changes(run, out, strategy, week)
    sections["4. Change and rollback log"] = blocks
    this_week = [p for p in params if week.start.isoformat() <= p.move.at[:10] <= week.end.isoformat()]
    (out / "adr.md").write_text(adr_markdown(week.label, strategy, changes, this_week), encoding="utf-8")
    sections["5. ADR skeleton"] = [f"- [adr.md](adr.md): {len(changes)} changes and {len(this_week)} parameter "
                                   "changes pre-filled; the why is left to fill in."]
    week_avail, qtd_avail = _availability(run, week)
    results = targets(qtd_avail, qtd_changes, coverage_qtd, params)
    pd.DataFrame([t.__dict__ for t in results]).to_csv(out / "targets.csv", index=False)
    index = _index(run, strategy, week, in_week, results, week_avail, qtd_avail, sections)
    (out / "index.md").write_text(index, encoding="utf-8")
    (out / "index.html").write_text(_index_html(week, index, results, sections), encoding="utf-8")
    return AuditResult(out, week, tuple(results), index)


def targets(qtd: Availability | None, qtd_changes: pd.DataFrame, coverage: float | None,
            params: Sequence[ParameterChange]) -> list[Target]:
    """The quarterly targets, quarter to date."""
    value = qtd.value if qtd is not None else None
    rollbacks = float(qtd_changes["kind"].isin(("rollback", "canary_rollback")).sum())
    unknown = any(p.traceable is None for p in params)
    traced = None if not params or unknown else sum(bool(p.traceable) for p in params) / len(params)
    return [
        Target("availability", value, f">= {AVAILABILITY_TARGET:.1%}", _judge(value, (value or 0) >= AVAILABILITY_TARGET),
               "phases run ok on time / phases scheduled, from sessions.csv"),
        Target("rollbacks", rollbacks, f"<= {ROLLBACK_TARGET}", _judge(rollbacks, rollbacks <= ROLLBACK_TARGET),
               "champion moves back to a former champion + canary rollbacks"),
        Target("attribution_coverage", coverage, f">= {COVERAGE_TARGET:.0%}",
               _judge(coverage, (coverage or 0) >= COVERAGE_TARGET), "explained P&L / P&L (attribution)"),
        Target("parameter_changes_traceable", traced, f"= {TRACEABLE_TARGET:.0%}",
               _judge(traced, (traced or 0) >= TRACEABLE_TARGET),
               "champion moves changing settings with an experiment / all such moves"
               + (" (no change this quarter)" if not params else " (no experiment registry)" if unknown else "")),
    ]


def _kpi(run: Path, folder: Path, week: AuditWeek, last: date) -> list[Block]:
    folder.mkdir(parents=True, exist_ok=True)
    blocks: list[Block] = []
    try:
        snapshot = kpi_snapshot(run, last)
        (folder / "snapshot.md").write_text(snapshot.markdown(), encoding="utf-8")
        blocks.append(f"- [kpi/snapshot.md](kpi/snapshot.md): the snapshot at {last}.")
    except Exception as exc:  # noqa: BLE001 (the deliverable says what is missing; the audit goes on)
        note = _unavailable(exc)
        (folder / "snapshot.md").write_text(f"# KPI snapshot {last}\n\n{note}\n", encoding="utf-8")
        blocks.append(f"- [kpi/snapshot.md](kpi/snapshot.md): {note}")
    try:
        history = kpi_history(run, week.start)
        dates = pd.to_datetime(history["date"]).dt.date
        history = history[(dates >= week.start) & (dates <= week.end)]
        history.to_csv(folder / "history.csv", index=False)
        counts = history["status"].value_counts().to_dict() if len(history) else {}
        blocks.append(f"- [kpi/history.csv](kpi/history.csv): {len(history)} KPI rows this week; by status: "
                      f"{', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'}.")
    except Exception as exc:  # noqa: BLE001
        blocks.append(f"- kpi/history.csv: {_unavailable(exc)}")
    return blocks


def _var_es(run: Path, folder: Path, strategy: str, days: Sequence[date], week: AuditWeek) -> list[Block]:
    """The risk report over the week and its trailing VaR window; the week's exception rows beside it."""
    from ..research.risk_report import ReportConfig, build_report, headline, inputs_from_run_folder, write_report

    config = ReportConfig()
    first = next(i for i, d in enumerate(days) if d >= week.start)
    start = days[max(0, first - config.var.window - 1)]  # the window before the week's first forecast, +1 return
    try:
        report = build_report(inputs_from_run_folder(run, strategy, start, week.end), config)
    except RotationError as exc:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "risk_report.md").write_text(f"# VaR/ES {week.label}\n\n{_unavailable(exc)}\n", encoding="utf-8")
        return [f"- [var_es/risk_report.md](var_es/risk_report.md): {_unavailable(exc)}"]
    write_report(report, folder)
    exceptions = report.exceptions
    inside = (exceptions.index >= pd.Timestamp(week.start)) & (exceptions.index <= pd.Timestamp(week.end))
    week_rows = exceptions[inside]
    week_rows.to_csv(folder / "week_exceptions.csv", date_format="%Y-%m-%d")
    flags = week_rows.drop(columns="return")
    blocks: list[Block] = [f"- [var_es/risk_report.md](var_es/risk_report.md) "
                           f"([html](var_es/risk_report.html)), {start} … {week.end}: "
                           f"{headline(report).replace('**', '')}"]
    if len(week_rows):
        rows = [(c, str(int(flags[c].notna().sum())), str(int(flags[c].fillna(0).sum()))) for c in flags.columns]
        blocks.append((("VaR", "sessions with a forecast", "exceptions"), rows, "lrr"))
    else:
        blocks.append(f"- No VaR forecast in {week.label}: the history before it has {first} sessions, the VaR "
                      f"window needs {config.var.window} (var_es/week_exceptions.csv is empty).")
    return blocks


def _share(value: object) -> str:
    """A share as a percentage; "–" where it is undefined (no gross P&L: nothing traded or held)."""
    number = pd.to_numeric(value, errors="coerce")
    return "–" if pd.isna(number) else f"{float(number):.1%}"


def _attribution(run: Path, folder: Path, week: AuditWeek) -> tuple[float | None, list[Block]]:
    try:
        report = attribute(run, week.start, week.end)
        report.write(folder)
        summary = report.summary
        rows = [(str(r.group), str(r.component), f"{float(r.cny):,.2f}", _share(r.share_of_gross))
                for r in summary.itertuples(index=False)]
        blocks: list[Block] = [f"- [attribution/](attribution/): coverage {_share(report.coverage)} this week.",
                               (("group", "component", "CNY", "share of gross"), rows, "llrr")]
    except Exception as exc:  # noqa: BLE001
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "README.md").write_text(f"# Attribution {week.label}\n\n{_unavailable(exc)}\n", encoding="utf-8")
        return None, [f"- [attribution/](attribution/README.md): {_unavailable(exc)}"]
    try:
        coverage = float(attribute(run, week.quarter_start, week.end).coverage)
    except Exception as exc:  # noqa: BLE001
        blocks.append(f"- quarter-to-date coverage: {_unavailable(exc)}")
        coverage = None
    return coverage, blocks


def _changes(run: Path, out: Path, strategy: str, week: AuditWeek
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[ParameterChange], list[Block]]:
    from .versions import VersionRegistry

    registry = VersionRegistry()
    moves = registry.alias_history(strategy)
    rows = alias_rows(moves) + risk_rows(run / "state") + canary_rows(run / "state", strategy)
    changes = change_table(rows, week.start, week.end)
    changes.to_csv(out / "changes.csv", index=False)
    (out / "changes.md").write_text(changes_markdown(week.label, changes), encoding="utf-8")
    blocks: list[Block] = [f"- [changes.md](changes.md) ([csv](changes.csv)): {len(changes)} rows this week"
                           + (": " + ", ".join(f"{k} {v}" for k, v in changes["kind"].value_counts().sort_index()
                                               .items()) if len(changes) else ".")]
    params = parameter_changes(moves, registry.get, experiments_for, week.quarter_start, week.end)
    if any(p.experiments is None for p in params):
        blocks.append("- parameter changes: traceability unknown, the experiment registry "
                      "(vnpy_rotation.ops.experiments) is not installed")
    return changes, change_table(rows, week.quarter_start, week.end), params, blocks


def _availability(run: Path, week: AuditWeek) -> tuple[Availability | None, Availability | None]:
    path = run / SESSIONS_FILE
    if not path.exists():
        return None, None
    log = read_log(path)
    as_of = datetime.combine(week.end, time(23, 59, 59), SHANGHAI)
    return (availability(log, run_schedule(run, week.start, week.end, as_of)),
            availability(log, run_schedule(run, week.quarter_start, week.end, as_of)))


def _availability_line(label: str, a: Availability | None) -> str:
    if a is None:
        return f"- {label}: n.a. (no {SESSIONS_FILE} in the run)"
    shown = "n.a." if a.value is None else f"{a.value:.2%}"
    return (f"- {label}: {shown} — {a.available} of {a.scheduled} phases ok on time; late {a.late}, failed "
            f"{a.failed}, missed {a.missed}, no row {a.absent}")


def _index(run: Path, strategy: str, week: AuditWeek, in_week: Sequence[date], results: Sequence[Target],
           week_avail: Availability | None, qtd_avail: Availability | None,
           sections: dict[str, list[Block]]) -> str:
    verdict = "PASS" if all(t.status != "FAIL" for t in results) else "FAIL"
    lines = [f"# Weekly operating audit {week.label}: {strategy}", "",
             f"- Run: `{run}`", f"- Week: {week.start} … {week.end} ({len(in_week)} sessions: {in_week[0]} … "
             f"{in_week[-1]})", f"- Quarter to date: {week.quarter_start} … {week.end}",
             f"- Targets: **{verdict}**", "", "## Quarterly targets (quarter to date)", ""]
    lines += blocks_markdown([(("target", "value", "goal", "status", "how measured"),
                               [(t.name, t.shown(), t.goal, t.status, t.how) for t in results], "lrlll")])
    lines += ["", "## Availability", "", _availability_line(f"week {week.label}", week_avail),
              _availability_line("quarter to date", qtd_avail), ""]
    for heading, blocks in sections.items():
        lines += [f"## {heading}", "", *blocks_markdown(blocks), ""]
    return "\n".join(lines)


LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def _index_html(week: AuditWeek, index: str, results: Sequence[Target], sections: dict[str, list[Block]]) -> str:
    """The index page as HTML: the same tables, links clickable."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Weekly audit {week.label}</title>"
             f"<style>{_CSS}</style></head><body>"]
    head, _, _ = index.partition("## Quarterly targets")
    for line in head.splitlines():
        if line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line.removeprefix('- ')).replace('**', '').replace('`', '')}</p>")
    parts += ["<h2>Quarterly targets (quarter to date)</h2>",
              blocks_html([(("target", "value", "goal", "status", "how measured"),
                            [(t.name, t.shown(), t.goal, t.status, t.how) for t in results], "lrlll")], "targets")]
    availability = index.partition("## Availability")[2].partition("## ")[0]
    parts += ["<h2>Availability</h2>", blocks_html([line for line in availability.splitlines() if line.strip()],
                                                    "availability")]
    for k, (heading, blocks) in enumerate(sections.items()):
        parts += [f"<h2>{html.escape(heading)}</h2>", blocks_html(blocks, f"deliverable-{k + 1}")]
    text = "\n".join(parts + ["</body></html>"])
    return LINK.sub(lambda m: f'<a href="{m[2]}">{m[1]}</a>', text)
