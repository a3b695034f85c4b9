"""``run.py weekly-audit`` on a replayed month of bundled data (etf_rotation, 2024-07-01 … 2024-07-31).

The week audited is 2024-W30 (07-22 … 07-26, the last complete week of the run); the quarter to date is
07-01 … 07-28: 20 sessions, 80 replay phases. In that week the test moves the champion alias three times
(A, then B with ``top_n`` 3, then back to A: one rollback); the run's risk state records a fail-safe alert
raising a release freeze, which an operator clears the next day. Most tests put stand-ins for the KPI,
attribution and experiment modules behind the audit's adapters (exact values); one runs the real ones.

Checked exactly: the folder holds the five deliverables and the index; the change log has each move with its
who/why and the cleared freeze; the ADR lists the parameter change; the targets pass (availability 100 %,
1 rollback, coverage 93 %, 3 of 3 parameter changes traced) and fail when a down day is cut out of
``sessions.csv`` (75 of 80 phases: 93.75 %), when a change has no experiment (2 of 3) and when a second
rollback falls in the quarter.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_cli

from vnpy_rotation.live.schedule import SHANGHAI
from vnpy_rotation.live.session_log import SESSIONS_FILE
from vnpy_rotation.ops import weekly_audit
from vnpy_rotation.ops.weekly_audit import AuditWeek, parse_week, run_audit

STRATEGY = "etf_rotation"
W30 = AuditWeek("2024-W30", date(2024, 7, 22), date(2024, 7, 28))


def moment(day: str, clock: str = "15:00") -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), SHANGHAI)


@pytest.fixture(scope="module")
def month(runtime_home, tmp_path_factory):
    """(run folder, {"A": id, "B": id}): the month replayed in this process's home, two versions registered
    and the week's changes made."""
    from vnpy_rotation.apps.risk.state_file import RiskStateFile
    from vnpy_rotation.ops.versions import VersionRegistry
    from vnpy_rotation.risk.events import RiskAlert

    folder = tmp_path_factory.mktemp("weekly_audit")
    run = folder / "month"
    done = run_cli("trade", "--gateway", "replay", "--strategy", STRATEGY, "--start", "2024-07-01", "--end",
                   "2024-07-31", "--out", str(run), home=runtime_home)
    assert done.returncode == 0, done.stderr
    shipped = ROOT / "configs" / "etf_rotation.yaml"
    variant = folder / "variant.yaml"
    variant.write_text(yaml.safe_dump({**yaml.safe_load(shipped.read_text(encoding="utf-8")),
                                       "strategy": {"top_n": 3}}), encoding="utf-8")
    ids = {}
    for name, config in (("A", shipped), ("B", variant)):
        done = run_cli("version", "create", "--strategy", STRATEGY, "--config", str(config), "--start", "2024-01-02",
                       "--end", "2024-06-28", home=runtime_home)
        assert done.returncode == 0, done.stderr
        ids[name] = re.search(r"created: \S+ version (\w+)", done.stdout).group(1)
    registry = VersionRegistry()
    registry.move_alias(STRATEGY, "champion", ids["A"], "tester", "in production", moment("2024-07-22"))
    registry.move_alias(STRATEGY, "champion", ids["B"], "alice", "top_n 3 after the sweep", moment("2024-07-23"))
    registry.move_alias(STRATEGY, "champion", ids["A"], "bob", "drawdown after the switch", moment("2024-07-24"))
    risk = RiskStateFile(run / "state")
    freeze = RiskAlert("failsafe", STRATEGY, date(2024, 7, 25), "exceptions in the red zone")
    risk.record_alert(freeze)  # as the engine raises a fail-safe flag: the alert, then the flag
    risk.raise_flag("release_freeze", STRATEGY, freeze.day, freeze.reason)
    risk.clear_flag("release_freeze", STRATEGY, "reviewed: data error", moment("2024-07-26", "09:00"), who="carol")
    risk.save()
    return run, ids


@dataclass
class Snapshot:
    day: date

    def markdown(self) -> str:
        return f"# KPI snapshot {self.day}\n"


@dataclass
class Attribution:
    start: date
    coverage: float

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame({"group": "actual", "component": ["selection", "fees", "residual"], "cny": [1200.0, -300.0, 60.0],
                             "share_of_gross": [0.8, -0.2, 0.04]})

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "attribution.md").write_text(f"from {self.start}\n", encoding="utf-8")


@pytest.fixture
def adapters(monkeypatch, month):
    """Stand-ins for the KPI, attribution and experiment modules; ``calls`` records the attribution spans."""
    _, ids = month
    calls: list[tuple[date, date]] = []
    traced = {ids["A"]: ["exp-a"], ids["B"]: ["exp-b"]}
    history = pd.DataFrame({"date": ["2024-07-19", "2024-07-22", "2024-07-26"], "scope": "account",
                            "kpi": "sharpe", "value": [1.0, 1.1, 0.2], "baseline": 1.0, "threshold": 0.5,
                            "status": ["ok", "ok", "breach"]})

    def attribute(run: Path, start: date, end: date) -> Attribution:
        calls.append((start, end))
        return Attribution(start, 0.97 if start == W30.start else 0.93)

    monkeypatch.setattr(weekly_audit, "kpi_snapshot", lambda run, day: Snapshot(day))
    monkeypatch.setattr(weekly_audit, "kpi_history", lambda run, since: history[history["date"] >= "2024-07-01"])
    monkeypatch.setattr(weekly_audit, "attribute", attribute)
    monkeypatch.setattr(weekly_audit, "experiments_for", lambda version_id: traced.get(version_id, []))
    return calls, traced


def targets(out: Path) -> dict[str, tuple[float, str]]:
    frame = pd.read_csv(out / "targets.csv")
    return {r.name: (r.value, r.status) for r in frame.itertuples()}


def test_the_audit_of_a_replayed_month_writes_every_deliverable_and_passes(month, adapters, tmp_path):
    run, ids = month
    calls, _ = adapters
    result = run_audit(run, tmp_path / "audit")  # default: the last complete week
    out = tmp_path / "audit"
    assert result.week == W30 and result.passed
    for name in ("index.md", "index.html", "kpi/snapshot.md", "kpi/history.csv", "var_es/risk_report.md",
                 "var_es/week_exceptions.csv", "attribution/attribution.md", "changes.md", "changes.csv", "adr.md",
                 "targets.csv"):
        assert (out / name).is_file(), name
    assert (out / "kpi" / "snapshot.md").read_text(encoding="utf-8") == "# KPI snapshot 2024-07-26\n"
    assert pd.read_csv(out / "kpi" / "history.csv")["date"].tolist() == ["2024-07-22", "2024-07-26"]
    assert calls == [(W30.start, W30.end), (date(2024, 7, 1), W30.end)]  # the week, then the quarter to date

    changes = pd.read_csv(out / "changes.csv", keep_default_na=False)
    assert changes[["date", "kind", "scope", "change", "who", "why"]].values.tolist() == [
        ["2024-07-22", "alias", f"{STRATEGY}:champion", f"(none) → {ids['A']}", "tester", "in production"],
        ["2024-07-23", "alias", f"{STRATEGY}:champion", f"{ids['A']} → {ids['B']}", "alice", "top_n 3 after the sweep"],
        ["2024-07-24", "rollback", f"{STRATEGY}:champion", f"{ids['B']} → {ids['A']}", "bob",
         "drawdown after the switch"],
        ["2024-07-25", "risk_alert", STRATEGY, "alert failsafe", "risk engine", "exceptions in the red zone"],
        ["2024-07-26", "risk_flag_cleared", STRATEGY, "release_freeze → cleared", "carol", "reviewed: data error"],
    ]
    assert targets(out) == {"availability": (1.0, "PASS"), "rollbacks": (1.0, "PASS"),
                            "attribution_coverage": (0.93, "PASS"), "parameter_changes_traceable": (1.0, "PASS")}
    adr = (out / "adr.md").read_text(encoding="utf-8")
    assert "| top_n | 2 | 3 |" in adr and "| top_n | 3 | 2 |" in adr  # to B, and back to A
    assert "Rolled back: 2024-07-24" in adr and adr.count("- Why:") == 5 + 3  # 5 changes, 3 parameter changes
    index = (out / "index.md").read_text(encoding="utf-8")
    for link in ("(kpi/snapshot.md)", "(var_es/risk_report.md)", "(attribution/)", "(changes.md)", "(adr.md)"):
        assert link in index
    assert "20 of 20 phases" in index and "80 of 80 phases" in index
    assert '<a href="adr.md">' in (out / "index.html").read_text(encoding="utf-8")


def test_the_audit_with_the_real_kpi_attribution_and_experiment_modules(month, tmp_path):
    """No stand-ins: the daemon's KPI history of this run, its attribution and the versions' experiments."""
    from vnpy_rotation.ops.attribution_run import attribute_folder
    from vnpy_rotation.ops.kpi import snapshot_run
    from vnpy_rotation.ops.kpi_store import kpi_history

    run, _ = month
    result = run_audit(run, tmp_path / "audit", W30)
    out = tmp_path / "audit"
    assert (out / "kpi" / "snapshot.md").read_text(encoding="utf-8") == snapshot_run(run, date(2024, 7, 26)).markdown()
    history = pd.read_csv(out / "kpi" / "history.csv")
    recorded = kpi_history(since=W30.start, run=run)  # the daemon recorded one snapshot per session
    assert len(history) == len(recorded[recorded["date"] <= pd.Timestamp(W30.end)]) > 0
    assert set(history["date"]) == {f"2024-07-{d}" for d in (22, 23, 24, 25, 26)}
    assert set(history["run"]) == {str(run.absolute())}
    quarter = attribute_folder(run, date(2024, 7, 1), W30.end)
    found = targets(out)
    assert found["attribution_coverage"] == (pytest.approx(quarter.coverage), "PASS") and quarter.coverage >= 0.9
    assert (out / "attribution" / "attribution.md").is_file()
    assert found["parameter_changes_traceable"] == (1.0, "PASS")  # version create recorded and linked each backtest
    assert result.passed


def test_a_down_day_and_a_late_phase_lower_availability_to_the_hand_computed_value(month, adapters, tmp_path):
    """Rows of 2024-07-24 removed (the daemon was down and never restarted: no missed rows either) and the
    open of 07-23 started 9 minutes late: the week has 15 of 20 phases, the quarter 75 of 80 (93.75 %)."""
    run = shutil.copytree(month[0], tmp_path / "run")
    log = pd.read_csv(run / SESSIONS_FILE, dtype=str, keep_default_na=False)
    log = log[log["date"] != "2024-07-24"]
    late = (log["date"] == "2024-07-23") & (log["phase"] == "open")
    log.loc[late, "started_at"] = "2024-07-23T09:40:00.000+08:00"
    log.to_csv(run / SESSIONS_FILE, index=False)
    result = run_audit(run, tmp_path / "audit", W30)
    assert not result.passed
    assert targets(tmp_path / "audit")["availability"] == (0.9375, "FAIL")
    assert "15 of 20 phases" in result.index and "75 of 80 phases" in result.index


def test_a_parameter_change_without_an_experiment_fails_traceability(month, adapters, tmp_path):
    _, traced = adapters
    traced.pop(month[1]["B"])  # the move to B (top_n 3) has no experiment behind it
    result = run_audit(month[0], tmp_path / "audit", W30)
    assert not result.passed
    assert targets(tmp_path / "audit")["parameter_changes_traceable"] == (pytest.approx(2 / 3), "FAIL")
    assert "none recorded (not traceable)" in (tmp_path / "audit" / "adr.md").read_text(encoding="utf-8")


def test_a_second_rollback_in_the_quarter_fails_the_target(month, adapters, tmp_path):
    """A move back to B on 2024-07-30 (B was champion before): the audit of W31 counts 2 rollbacks since
    07-01; W30's quarter to date (up to 07-28) still counts one."""
    from vnpy_rotation.ops.versions import VersionRegistry

    run, ids = month
    VersionRegistry().move_alias(STRATEGY, "champion", ids["B"], "dave", "A underperforms", moment("2024-07-30"))
    result = run_audit(run, tmp_path / "w31", parse_week("2024-07-31"))
    assert result.week.label == "2024-W31" and not result.passed
    assert targets(tmp_path / "w31")["rollbacks"] == (2.0, "FAIL")
    assert targets(tmp_path / "w31")["availability"] == (1.0, "PASS")  # W31's three replayed sessions
    assert run_audit(run, tmp_path / "w30", W30).passed


def test_the_command_exits_by_its_targets_and_refuses_bad_input(month, runtime_home, tmp_path):
    run, _ = month
    done = run_cli("weekly-audit", "--run", str(run), "--week", "2024-W30", "--out", str(tmp_path / "cli"),
                   home=runtime_home)
    assert (tmp_path / "cli" / "targets.csv").exists(), done.stderr + done.stdout
    statuses = pd.read_csv(tmp_path / "cli" / "targets.csv").set_index("name")["status"]
    assert done.returncode == (1 if (statuses == "FAIL").any() else 0), done.stderr
    assert statuses["availability"] == "PASS"
    assert len(pd.read_csv(tmp_path / "cli" / "changes.csv")) == 5
    bad = run_cli("weekly-audit", "--run", str(run), "--week", "2024-W99", "--out", str(tmp_path / "bad"),
                  home=runtime_home)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --week:") and "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run_cli("weekly-audit", "--run", str(empty), "--out", str(tmp_path / "bad2"), home=runtime_home)
    assert bad.returncode == 2 and f"{empty / 'daily_summary.csv'}: missing" in bad.stderr
    assert not (tmp_path / "bad2").exists()
