"""Strategy versions and aliases: insert-only rows (the database refuses UPDATE and DELETE), same content → same
id, every alias move an audit row, resolution by id / prefix / alias, diffs, the release gates of a stored
version, and ``run.py version ... / release check`` end to end on the bundled data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
from datetime import date, datetime

import peewee
import pytest
from conftest import ROOT, run_cli
from scenario_market import flat, make_panels

from vnpy_rotation.data.market_data import build_market_data
from vnpy_rotation.errors import InputRejected
from vnpy_rotation.ops.version_store import VersionStore
from vnpy_rotation.ops.versions import (
    CheckOutcome,
    ConfigFile,
    FieldDiff,
    Version,
    VersionRegistry,
    bars_signature,
    check_version,
    diff_versions,
    load_version,
    move_alias,
    read_walkforward,
)

LADDER = {"reduce_at": 0.1, "halt_at": 0.15, "recover_at": 0.05, "reduce_exposure": 1.0, "cooldown": 20,
          "halt_cooldown": 20, "flatten": True, "measure": "drawdown"}
NOW = datetime(2024, 10, 8, 15, 30)
POOLS = ROOT / "configs" / "etf_pools.yaml"
POOLS_FILE = ConfigFile("pools_file", str(POOLS), hashlib.sha256(POOLS.read_bytes()).hexdigest(),
                        POOLS.read_text(encoding="utf-8"))


def version(vid: str = "aaaa00000001", strategy: str = "etf_rotation", **changes) -> Version:
    """A hand-made stored version (no backtest): 3 days of equity from 1 000 000 CNY."""
    base = Version(
        id=vid, strategy=strategy, strategy_class="EtfRotationStrategy", content_hash=vid * 5 + "abcd",
        settings={"top_n": 2}, settings_hash="s1", backtest={"capital": 1_000_000.0, "risk": {"ladder": LADDER}},
        backtest_hash="b1", release={"min_sharpe": 0.5}, risk_rules=None, config_path="configs/x.yaml",
        config_text="strategy: {}\n", config_sha256="c1",
        files=(POOLS_FILE,),
        start=date(2024, 1, 2), end=date(2024, 1, 4), bars={"510300.SSE": (3, "2024-01-04")}, bars_hash="h1",
        code_commit="0123abcd", code_diff_hash="", metrics={"sharpe": 0.8, "max_drawdown": -0.1},
        checks=(CheckOutcome("lookahead", "look-ahead after 2024-01-03", True, "ok"),
                CheckOutcome("identity", "cash never negative", True, "ok")),
        walkforward=None, equity_dates=("2024-01-02", "2024-01-03", "2024-01-04"),
        equity_values=(1_010_000.0, 999_900.0, 1_019_898.0), created_at="2024-10-08T15:00:00+08:00",
        created_by="alice", note="")
    return dataclasses.replace(base, **changes)


@pytest.fixture
def registry(tmp_path):
    return VersionRegistry(VersionStore(peewee.SqliteDatabase(str(tmp_path / "versions.db"))))


# -- immutability ---------------------------------------------------------------------------------------------
def test_same_content_is_stored_once(registry):
    first, created = registry.save(version())
    again, created_again = registry.save(version(note="another note, same content"))
    assert created and not created_again
    assert again == first and [v.id for v in registry.versions()] == [first.id]


def test_a_stored_version_reads_back_whole(registry):
    registry.save(version())
    assert registry.get("aaaa00000001") == version()


@pytest.mark.parametrize("sql", ["UPDATE rotation_version SET note = 'edited'", "DELETE FROM rotation_version",
                                 "UPDATE rotation_alias SET why = 'edited'", "DELETE FROM rotation_alias"])
def test_the_database_refuses_edits_of_versions_and_alias_rows(registry, tmp_path, sql):
    registry.save(version())
    registry.move_alias("etf_rotation", "champion", "aaaa00000001", "alice", "first", NOW)
    with sqlite3.connect(tmp_path / "versions.db") as direct:  # a hand-written SQL edit, outside the project
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            direct.execute(sql)
    with pytest.raises(peewee.IntegrityError):
        registry.store.db.execute_sql(sql)
    assert registry.get("aaaa00000001").note == "" and len(registry.alias_history("etf_rotation")) == 1


# -- aliases --------------------------------------------------------------------------------------------------
def test_every_alias_move_is_an_audit_row(registry):
    registry.save(version("aaaa00000001"))
    registry.save(version("bbbb00000002"))
    moves = [registry.move_alias("etf_rotation", "champion", "aaaa00000001", "alice", "first release", NOW),
             registry.move_alias("etf_rotation", "candidate", "bbbb00000002", "bob", "top 3", NOW),
             registry.move_alias("etf_rotation", "champion", "bbbb00000002", "carol", "promoted", NOW),
             registry.move_alias("etf_rotation", "candidate", None, "carol", "promoted", NOW)]
    history = registry.alias_history("etf_rotation")
    assert history == moves
    assert [(m.alias, m.previous_id, m.version_id, m.who, m.why) for m in history] == [
        ("champion", None, "aaaa00000001", "alice", "first release"),
        ("candidate", None, "bbbb00000002", "bob", "top 3"),
        ("champion", "aaaa00000001", "bbbb00000002", "carol", "promoted"),
        ("candidate", "bbbb00000002", None, "carol", "promoted")]
    assert [m.seq for m in history] == sorted(m.seq for m in history)
    assert history[0].at == NOW.astimezone().isoformat(timespec="seconds")
    assert registry.aliases("etf_rotation") == {"champion": "bbbb00000002"}


def test_a_repeated_move_writes_nothing(registry):
    registry.save(version())
    first = registry.move_alias("etf_rotation", "champion", "aaaa00000001", "alice", "first", NOW)
    assert registry.move_alias("etf_rotation", "champion", "aaaa00000001", "bob", "again", NOW) == first
    assert len(registry.alias_history("etf_rotation")) == 1


@pytest.mark.parametrize("strategy, alias, target, who, why, field", [
    ("vqm", "champion", "aaaa00000001", "alice", "x", "alias"),  # a version of another strategy
    ("etf_rotation", "Champion", "aaaa00000001", "alice", "x", "alias"),
    ("etf_rotation", "champ-1", "aaaa00000001", "alice", "x", "alias"),
    ("etf_rotation", "champion", "aaaa00000001", "alice", "  ", "--why"),
    ("etf_rotation", "champion", "ffff00000009", "alice", "x", "version"),  # unknown
    ("etf_rotation", "candidate", None, "alice", "x", "alias"),  # retiring an alias that is not set
], ids=["wrong_strategy", "upper_case", "dash", "no_reason", "unknown_version", "retire_unset"])
def test_a_bad_alias_move_is_refused_and_writes_nothing(registry, strategy, alias, target, who, why, field):
    registry.save(version())
    with pytest.raises(InputRejected) as caught:
        registry.move_alias(strategy, alias, target, who, why, NOW)
    assert caught.value.problems[0].source == field
    assert registry.alias_history(strategy) == [] and registry.alias_history("etf_rotation") == []


def test_resolve_by_id_prefix_and_alias(registry):
    for vid in ("abcd11111111", "abcd22222222", "ef0123456789"):
        registry.save(version(vid))
    registry.move_alias("etf_rotation", "last_stable", "abcd22222222", "alice", "known good", NOW)
    assert registry.resolve("abcd11111111") == "abcd11111111"
    assert registry.resolve("ef01") == "ef0123456789"
    assert registry.resolve("abcd2") == "abcd22222222"
    assert registry.resolve("etf_rotation:last_stable") == "abcd22222222"
    for ref, says in (("abcd", "ambiguous"), ("abc", "at least 4"), ("9999", "unknown"),
                      ("etf_rotation:champion", "no such alias"), ("vqm:last_stable", "no such alias")):
        with pytest.raises(InputRejected, match=says):
            registry.resolve(ref)


def test_load_version_gives_the_coordinator_settings_config_and_daily_series(registry):
    registry.save(version())
    move_alias("etf_rotation", "champion", "aaaa00000001", "alice", "first", NOW, registry=registry)
    loaded = load_version("etf_rotation:champion", registry=registry)
    assert loaded.strategy == "etf_rotation" and loaded.settings == {"top_n": 2}
    assert loaded.backtest_config().risk.ladder.halt_at == 0.15
    assert list(loaded.equity()) == [1_010_000.0, 999_900.0, 1_019_898.0]
    assert list(loaded.returns()) == pytest.approx([0.01, -0.01, 0.02])  # the first from the capital
    assert list(loaded.returns().index.date) == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]


# -- diff, signature, walk-forward evidence -----------------------------------------------------------------------
def test_diff_lists_each_differing_field():
    a = version()
    b = version("bbbb00000002", settings={"top_n": 3}, start=date(2023, 1, 3), code_commit="4567cdef+dirty",
                metrics={"sharpe": 1.1, "max_drawdown": -0.1})
    assert diff_versions(a, b) == [FieldDiff("window.start", "2024-01-02", "2023-01-03"),
                                   FieldDiff("code_commit", "0123abcd", "4567cdef+dirty"),
                                   FieldDiff("settings.top_n", 2, 3),
                                   FieldDiff("metrics.sharpe", 0.8, 1.1)]
    assert diff_versions(a, a) == []


def test_bars_signature_counts_rows_and_sees_a_revised_close():
    days = ["2023-08-21", "2023-08-22", "2023-08-23"]
    md = build_market_data(make_panels(days, {"510300.SSE": [flat(4.0), flat(4.1), flat(4.2)],
                                              "510500.SSE": [flat(6.0), flat(6.1), None]}))
    rows, digest = bars_signature(md)
    assert rows == {"510300.SSE": (3, "2023-08-23"), "510500.SSE": (2, "2023-08-22")}
    revised = build_market_data(make_panels(days, {"510300.SSE": [flat(4.0), flat(4.15), flat(4.2)],
                                                   "510500.SSE": [flat(6.0), flat(6.1), None]}))
    assert bars_signature(revised)[0] == rows and bars_signature(revised)[1] != digest
    assert bars_signature(md)[1] == digest


def test_walkforward_evidence_of_another_strategy_is_refused(tmp_path):
    with pytest.raises(InputRejected) as caught:
        read_walkforward(tmp_path, "etf_rotation")
    assert caught.value.problems[0].source == str(tmp_path / "summary.json")
    (tmp_path / "summary.json").write_text(json.dumps({"strategy": "momentum_topn"}))
    with pytest.raises(InputRejected) as caught:
        read_walkforward(tmp_path, "etf_rotation")
    assert caught.value.problems[0].source == str(tmp_path / "summary.json")
    assert caught.value.problems[0].reason.startswith("strategy: 'momentum_topn'")
    summary = {"strategy": "etf_rotation", "overfit": {"flagged": True}, "deflated_sharpe": {"dsr": 0.4},
               "holdout_params": {"top_n": 3, "buffer": 1}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "holdout.json").write_text(json.dumps({"metrics": {"sharpe": 0.3}}))
    evidence = read_walkforward(tmp_path, "etf_rotation", {"top_n": 3, "buffer": 1, "every_k": 5})
    assert evidence["summary"] == summary and evidence["holdout_metrics"] == {"sharpe": 0.3}
    # The holdout ran with other parameters than the version's: its evidence is not this version's.
    with pytest.raises(InputRejected) as caught:
        read_walkforward(tmp_path, "etf_rotation", {"top_n": 2, "buffer": 1})
    assert [p.reason.split(" (")[0] for p in caught.value.problems] == [
        "holdout_params.top_n: 3 differs from the version's setting 2"]


# -- the release gates of a stored version ------------------------------------------------------------------------
def failing_gates(v: Version, freeze=()) -> dict[str, object]:
    return {r.name: r.value for r in check_version(v, freeze) if not r.passed}


def test_a_stored_version_meeting_its_gates_passes():
    assert failing_gates(version()) == {}


@pytest.mark.parametrize("changes, failed", [
    (dict(backtest={"capital": 1_000_000.0}), {"risk_thresholds": False}),
    (dict(settings={"top_n": 0}), {"config": False}),
    (dict(strategy_class="SomethingElse"), {"config": False}),
    (dict(release={"min_sharpe": 1.0}), {"sharpe": 0.8}),
    (dict(metrics={"sharpe": 0.8, "max_drawdown": -0.4}), {"max_drawdown": -0.4}),
    (dict(walkforward={"summary": {"overfit": {"flagged": True}, "deflated_sharpe": {"dsr": 0.2}}}),
     {"walkforward_overfit": True}),
    (dict(checks=(CheckOutcome("lookahead", "look-ahead after 2024-01-03", False, "fills changed"),)),
     {"lookahead": False, "identities": None}),
], ids=["no_ladder", "bad_settings", "class_renamed", "release_section", "drawdown", "overfit", "lookahead"])
def test_a_stored_version_failing_a_gate(changes, failed):
    assert failing_gates(version(**changes)) == failed


def test_a_changed_or_missing_pools_file_fails_the_config_gate(tmp_path):
    pools = tmp_path / "pools.yaml"
    pools.write_text(POOLS_FILE.text, encoding="utf-8")
    v = version(files=(dataclasses.replace(POOLS_FILE, path=str(pools)),))
    assert failing_gates(v) == {}
    pools.write_text(POOLS_FILE.text + "# edited\n", encoding="utf-8")
    results = {r.name: r for r in check_version(v, ())}
    assert [n for n, r in results.items() if not r.passed] == ["config"]
    assert results["config"].reason.startswith(f"{pools}: pools_file changed")
    pools.unlink()
    assert failing_gates(v) == {"config": False}


def test_stop_rules_count_as_risk_thresholds():
    v = version(backtest={"capital": 1_000_000.0}, risk_rules={"stock_stop": 0.08})
    result = {r.name: r for r in check_version(v, ())}["risk_thresholds"]
    assert result.passed and result.reason == "stock_stop"


def test_a_release_freeze_blocks():
    assert failing_gates(version(), [("etf_rotation", "major drift")]) == {"release_freeze": True}


# -- end to end through run.py on the bundled data ----------------------------------------------------------------
SPAN = ("--start", "2022-01-04", "--end", "2024-09-30")


def out_json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def out_json_any(done) -> object:
    """The JSON a command printed, whatever its exit code (release check exits 1 on a failing gate)."""
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("versions_home")
    (home / "variant.yaml").write_text(
        "strategy: {top_n: 3}\n"
        "backtest:\n  capital: 1000000\n  risk:\n    ladder: {reduce_at: 0.12, halt_at: 0.2, recover_at: 0.05}\n"
        "release: {min_sharpe: -5, max_drawdown: 0.9}\n", encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def created(home):
    """Two versions of etf_rotation: the bundled config (created twice) and the variant."""
    ids = []
    for config in (ROOT / "configs" / "etf_rotation.yaml", ROOT / "configs" / "etf_rotation.yaml",
                   home / "variant.yaml"):
        done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(config), *SPAN,
                       "--note", "e2e", home=home)
        assert done.returncode == 0, done.stderr
        ids.append(next(line for line in done.stdout.splitlines() if re.fullmatch("[0-9a-f]{12}", line)))
    return ids


def test_cli_create_list_show_diff(home, created):
    first, again, variant = created
    assert again == first and variant != first
    listed = out_json(run_cli("version", "list", "--strategy", "etf_rotation", "--json", home=home))
    assert sorted(v["id"] for v in listed) == sorted([first, variant])
    shown = out_json(run_cli("version", "show", variant[:6], "--json", home=home))
    assert shown["id"] == variant and shown["settings"]["top_n"] == 3
    assert (shown["start"], shown["end"]) == ("2022-01-04", "2024-09-30")
    pools = (ROOT / "configs" / "etf_pools.yaml").read_bytes()
    assert shown["files"][0]["sha256"] == hashlib.sha256(pools).hexdigest()
    assert shown["config_sha256"] == hashlib.sha256((home / "variant.yaml").read_bytes()).hexdigest()
    assert (shown["equity"]["first"], shown["equity"]["last"]) == ("2022-01-04", "2024-09-30")
    assert shown["metrics"]["sharpe"] is not None and {c["kind"] for c in shown["checks"]} == {"lookahead", "identity"}
    fields = {d["field"]: (d["a"], d["b"]) for d in out_json(run_cli("version", "diff", first, variant, "--json",
                                                                       home=home))}
    assert fields["settings.top_n"] == (2, 3) and fields["backtest.risk.ladder.reduce_at"] == (0.1, 0.12)
    assert "window.start" not in fields and "code_commit" not in fields


def test_cli_alias_history_and_release_check(home, created):
    first, _, variant = created
    assert run_cli("version", "alias", variant[:8], "candidate", "--why", "top 3", "--who", "alice",
                   home=home).returncode == 0
    refused = run_cli("version", "alias", "0000", "champion", "--why", "x", home=home)
    assert refused.returncode == 2 and refused.stderr.startswith("error: version: unknown version")
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    history = out_json(run_cli("version", "history", "--strategy", "etf_rotation", "--json", home=home))
    assert [(h["alias"], h["version_id"], h["who"], h["why"]) for h in history] == [
        ("candidate", variant, "alice", "top 3")]

    checked = run_cli("release", "check", "etf_rotation:candidate", "--json", home=home)
    assert checked.returncode == 0, checked.stdout
    assert all(g["passed"] for g in json.loads(checked.stdout))
    gates = json.loads(run_cli("release", "check", first, "--json", home=home).stdout)
    # The bundled config keeps the default gates: the exit code says whether any of them failed.
    expected = 1 if any(not g["passed"] for g in gates) else 0
    assert run_cli("release", "check", first, home=home).returncode == expected
    sharpe = next(g for g in gates if g["name"] == "sharpe")
    assert sharpe["threshold"] == 0.5 and sharpe["passed"] == (sharpe["value"] >= 0.5)


def test_cli_release_freeze_from_the_risk_state_blocks(home, created, tmp_path):
    from vnpy_rotation.apps.risk.state_file import RiskStateFile

    book = RiskStateFile(tmp_path)
    book.raise_flag("release_freeze", "etf_rotation", date(2024, 9, 30), "major drift for 2 sessions")
    book.save()
    done = run_cli("release", "check", created[2], "--state", str(tmp_path), "--json", home=home)
    assert done.returncode == 1
    assert [g["name"] for g in json.loads(done.stdout) if not g["passed"]] == ["release_freeze"]


def test_cli_bad_input_writes_nothing(home, created, tmp_path):
    before = out_json(run_cli("version", "list", "--json", home=home))
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: {}\nrelease: {max_drawdown: 2}\n", encoding="utf-8")
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(bad), home=home)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {bad}: release: max_drawdown")
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "summary.json").write_text(json.dumps({"strategy": "momentum_topn"}))
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config",
                   str(ROOT / "configs" / "etf_rotation.yaml"), "--from-walkforward", str(wf), home=home)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {wf / 'summary.json'}: strategy:")
    ambiguous = run_cli("version", "show", "zzzz", home=home)
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.strip().splitlines()) == 1
    assert out_json(run_cli("version", "list", "--json", home=home)) == before


def test_a_version_config_with_release_thresholds_runs_everywhere(tmp_path):
    """``release:`` is one of every run's sections (backtest, walkforward, trade ignore it)."""
    from vnpy_rotation.backtest.runner import read_sections

    path = tmp_path / "v.yaml"
    path.write_text("strategy: {}\nrelease: {min_sharpe: 0.8}\n", encoding="utf-8")
    raw, *_ = read_sections(path, None)
    assert raw["release"] == {"min_sharpe": 0.8}


def test_cli_walkforward_evidence_is_attached_and_gated(home, created):
    wf = home / "wf"
    done = run_cli("walkforward", "--strategy", "etf_rotation", "--config", str(ROOT / "configs" / "etf_rotation.yaml"),
                   "--start", "2019-01-02", "--train-years", "2", "--grid", "top_n=2,3", "--out", str(wf), home=home)
    assert done.returncode == 0, done.stderr
    summary = json.loads((wf / "summary.json").read_text())
    chosen = summary["holdout_params"]["top_n"]
    config = home / f"top_{chosen}.yaml"
    config.write_text(f"strategy: {{top_n: {chosen}}}\n"
                      "backtest:\n  risk:\n    ladder: {reduce_at: 0.1, halt_at: 0.15}\n"
                      "release: {require_walkforward: true, min_deflated_sharpe: 0.5}\n", encoding="utf-8")
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(config), *SPAN,
                   "--from-walkforward", str(wf), home=home)
    assert done.returncode == 0, done.stderr
    vid = next(line for line in done.stdout.splitlines() if re.fullmatch("[0-9a-f]{12}", line))
    shown = out_json(run_cli("version", "show", vid, "--json", home=home))
    assert shown["walkforward"]["summary"] == summary
    gates = {g["name"]: g for g in out_json_any(run_cli("release", "check", vid, "--json", home=home))}
    flagged, dsr = summary["overfit"]["flagged"], summary["deflated_sharpe"]["dsr"]
    assert gates["walkforward_overfit"]["value"] == flagged and gates["walkforward_overfit"]["passed"] == (not flagged)
    assert gates["deflated_sharpe"]["value"] == dsr and gates["deflated_sharpe"]["passed"] == (dsr >= 0.5)
    other = 2 if chosen != 2 else 3  # a config whose setting is not the walk-forward's choice is refused
    config.write_text(f"strategy: {{top_n: {other}}}\n", encoding="utf-8")
    done = run_cli("version", "create", "--strategy", "etf_rotation", "--config", str(config),
                   "--from-walkforward", str(wf), home=home)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {wf / 'summary.json'}: holdout_params.top_n: {chosen} differs")
