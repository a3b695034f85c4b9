"""``run.py backup`` / ``run.py restore`` end to end on a home built by the commands themselves (a backtest, a
strategy version with an alias move, a replay's rotation and risk state and journal, a home-level risk flag,
notification settings, a user instrument): the archive taken while another thread keeps committing to the SQLite
database restores into an empty home as a consistent database (integrity check, a gap-free prefix of the
writer's transactions), the same files byte for byte, the same version history and the same backtest when it is
re-run; a non-empty home is refused, or with --force kept aside; a damaged or foreign archive is refused with
nothing written. The in-process tests cover a MySQL home, a WAL database's committed pages and unsafe manifests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import sqlite3
import tarfile
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from backup_homes import files_of, make_home, run_main
from conftest import ROOT, run_cli

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.ops.backup import MANIFEST_NAME, backup, read_archive, restore

BACKTEST = ("backtest", "--strategy", "equal_weight", "--start", "2023-01-03", "--end", "2023-03-31")
BACKTEST_FILES = ("metrics.json", "equity.csv", "trades.csv", "orders.csv", "positions.csv")
STRATEGY = "etf_rotation"


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def rows(db: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A home as an operator's: a backtest, a version and an alias move, a replay (rotation state, risk state,
    journal), a home-level risk flag, notification settings and a user instrument table."""
    home = tmp_path_factory.mktemp("backup_source")
    ok(run_cli(*BACKTEST, "--out", str(home / "bt"), home=home))
    created = ok(run_cli("version", "create", "--strategy", STRATEGY, "--config", str(ROOT / "configs" / "etf_rotation.yaml"),
                         "--start", "2023-01-03", "--end", "2023-03-31", home=home))
    version = re.search(r"created: \S+ version (\w+)", created).group(1)
    ok(run_cli("version", "alias", version, "champion", "--why", "first release", "--who", "tester", home=home))
    ok(run_cli("trade", "--gateway", "replay", "--strategy", STRATEGY, "--start", "2023-01-03", "--end", "2023-01-17",
               "--out", str(home / "live"), home=home))
    from vnpy_rotation.apps.risk.state_file import RiskStateFile
    from vnpy_rotation.market.instruments import NamedInstrument, add_user_instrument

    state = RiskStateFile(home / ".vntrader" / "rotation_risk")
    state.raise_flag("release_freeze", STRATEGY, date(2023, 2, 1), "audit pending")
    state.save()
    add_user_instrument(home / ".vntrader" / "instruments.yaml",  # what run.py instruments add writes
                        NamedInstrument(code="159901", exchange="SZSE", kind="equity_etf", name="深证100ETF"))
    (home / ".vntrader" / "rotation_notify.json").write_text(
        json.dumps({"dingtalk": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=x"}}), encoding="utf-8")
    assert (home / "live" / "state" / f"{STRATEGY}.json").is_file() and (home / "live" / "journal").is_dir()
    return home


class Writer(threading.Thread):
    """Commits one transaction after another to ``db``: row ``seq`` (a payload derived from it) and the head row
    saying the last ``seq``, together, so any committed state holds exactly the rows 1..head."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db, self.committed, self.stop = db, 0, threading.Event()
        connection = sqlite3.connect(db)
        connection.executescript("CREATE TABLE probe (seq INTEGER PRIMARY KEY, payload BLOB);"
                                 "CREATE TABLE probe_head (id INTEGER PRIMARY KEY, last INTEGER);"
                                 "INSERT INTO probe_head VALUES (1, 0);")
        connection.close()

    def run(self) -> None:
        connection = sqlite3.connect(self.db, timeout=60)
        while not self.stop.is_set():
            seq = self.committed + 1
            with connection:  # one transaction: the row and the head
                connection.execute("INSERT INTO probe VALUES (?, ?)", (seq, payload(seq)))
                connection.execute("UPDATE probe_head SET last = ? WHERE id = 1", (seq,))
            self.committed = seq
            time.sleep(0.002)
        connection.close()


def payload(seq: int) -> bytes:
    return hashlib.sha256(str(seq).encode()).digest() * 64  # 2 KiB: a transaction touches several pages


@pytest.fixture(scope="module")
def backed_up(source, tmp_path_factory) -> tuple[Path, int, int]:
    """The archive of ``source`` (with the replay folder) taken while a writer commits to its database; returns
    the archive and the writer's commit counts when the backup started and when it ended."""
    writer = Writer(source / ".vntrader" / "database.db")
    writer.start()
    while writer.committed < 20:
        time.sleep(0.01)
    archive = tmp_path_factory.mktemp("backup_archive") / "home.tar.gz"
    started = writer.committed
    ok(run_cli("backup", "--out", str(archive), "--include", "live", home=source))
    ended = writer.committed
    writer.stop.set()
    writer.join()
    return archive, started, ended


@pytest.fixture(scope="module")
def restored(backed_up, tmp_path_factory) -> Path:
    """The archive restored into an empty home."""
    target = tmp_path_factory.mktemp("restored")  # empty (run_cli runs in it)
    ok(run_cli("restore", str(backed_up[0]), home=target))
    return target


def test_restore_gives_a_consistent_database_and_the_same_files(source, backed_up, restored):
    _, started, ended = backed_up
    target = restored
    db = target / ".vntrader" / "database.db"
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    (head,) = rows(db, "SELECT last FROM probe_head")[0]
    assert started <= head <= ended and started < ended  # the writer committed while the backup ran
    restored = rows(db, "SELECT seq, payload FROM probe ORDER BY seq")
    assert restored == [(seq, payload(seq)) for seq in range(1, head + 1)]  # all of 1..head, none after
    for table in ("dbbardata", "rotation_version", "rotation_alias"):
        assert rows(db, f"SELECT * FROM {table}") == rows(source / ".vntrader" / "database.db", f"SELECT * FROM {table}")
    for folder in (".vntrader", "live"):
        before, after = files_of(source / folder), files_of(target / folder)
        before.pop("database.db", None), after.pop("database.db", None)
        assert after == before, folder
    assert not (target / "bt").exists()  # a folder not named with --include is not archived


def test_restored_home_reruns_the_same_backtest_and_lists_the_same_versions(source, restored):
    target = restored
    ok(run_cli(*BACKTEST, "--out", str(target / "bt"), home=target))
    for name in BACKTEST_FILES:
        assert (target / "bt" / name).read_bytes() == (source / "bt" / name).read_bytes(), name
    listed = [json.loads(ok(run_cli("version", "list", "--json", home=home))) for home in (source, target)]
    assert listed[0] == listed[1] and [v["aliases"] for v in listed[1]] == [["champion"]]


def test_a_non_empty_home_is_refused_and_force_keeps_it_aside(backed_up, tmp_path):
    home = tmp_path / "home"
    (home / ".vntrader").mkdir(parents=True)
    (home / ".vntrader" / "vt_setting.json").write_text("{}", encoding="utf-8")
    done = run_cli("restore", str(backed_up[0]), home=home)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and str(home) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"] and files_of(home) == {".vntrader/vt_setting.json": b"{}"}

    done = run_cli("restore", str(backed_up[0]), "--force", home=home)
    assert done.returncode == 0, done.stderr
    (aside,) = [p for p in tmp_path.iterdir() if p.name != "home"]
    assert str(aside) in done.stdout and files_of(aside) == {".vntrader/vt_setting.json": b"{}"}
    assert (home / ".vntrader" / "database.db").is_file() and (home / "live" / "state").is_dir()


def repacked(archive: Path, change) -> bytes:
    """The archive with its manifest passed through ``change`` (a dict → dict), members unchanged."""
    out = io.BytesIO()
    with tarfile.open(archive, "r:gz") as old, tarfile.open(fileobj=out, mode="w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()
            if member.name == MANIFEST_NAME:
                data = json.dumps(change(json.loads(data))).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return out.getvalue()


CHANGED = ".vntrader/rotation_notify.json"


def changed_file(archive: Path) -> bytes:
    """The archive with the bytes of ``CHANGED`` altered (same size) and the manifest, checksums included, kept:
    what an edit of an extracted file repacked by hand gives."""
    out = io.BytesIO()
    with tarfile.open(archive, "r:gz") as old, tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()
            if member.name == "home/" + CHANGED:
                data = data.replace(b"access_token=x", b"access_token=y")
            new.addfile(member, io.BytesIO(data))
    return out.getvalue()


def flipped(raw: bytes) -> bytes:
    middle = len(raw) // 2
    return raw[:middle] + bytes([raw[middle] ^ 0x01]) + raw[middle + 1:]


def foreign(archive: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("notes.txt"), io.BytesIO(b""))
    return out.getvalue()


DAMAGES = {
    "flipped byte": lambda archive: flipped(archive.read_bytes()),
    "truncated": lambda archive: archive.read_bytes()[: archive.stat().st_size * 2 // 3],
    "format version 2": lambda archive: repacked(archive, lambda m: {**m, "format_version": 2}),
    "a file not in the manifest": lambda archive: repacked(archive, lambda m: {**m, "files": m["files"][1:]}),
    "a foreign tar.gz": foreign,
    "a file's bytes changed, manifest kept": changed_file,
    "not gzip": lambda archive: b"PK\x03\x04 a zip file",
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_or_foreign_archive_is_refused_with_nothing_written(backed_up, tmp_path, damage):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(DAMAGES[damage](backed_up[0]))
    (tmp_path / "home").mkdir()
    done = run_cli("restore", str(bad), home=tmp_path / "home")
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and str(bad) in done.stderr and "Traceback" not in done.stderr
    if damage == "a file's bytes changed, manifest kept":
        assert CHANGED in done.stderr  # the file, not only the archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "home"]  # no staging folder left beside it
    assert not any((tmp_path / "home").iterdir())


# -- in-process: no vnpy needed --------------------------------------------------------------------------------
def test_a_mysql_home_archives_every_file_but_not_the_database(tmp_path):
    home = make_home(tmp_path / "home", {"database.name": "mysql", "database.database": "vnpy"})
    (home / ".vntrader" / "rotation_state").mkdir()
    (home / ".vntrader" / "rotation_state" / "etf_rotation.json").write_text('{"day": "2024-01-02"}')
    result = backup(home, tmp_path / "a.tar.gz")
    manifest = read_archive(tmp_path / "a.tar.gz")
    assert (manifest.database.name, manifest.database.included) == ("mysql", False) and result.notes
    assert [e.path for e in manifest.files] == [".vntrader/vt_setting.json", ".vntrader/rotation_state/etf_rotation.json"]


def test_a_wal_database_is_archived_with_its_committed_transactions(tmp_path):
    """Committed rows still in the -wal file (no checkpoint yet) are in the archive: the backup API reads the
    database as SQLite sees it, where a copy of the main file alone would miss them."""
    home = make_home(tmp_path / "home", {})
    db = home / ".vntrader" / "kpi.db"
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE k (v INTEGER)")
    with writer:
        writer.executemany("INSERT INTO k VALUES (?)", [(v,) for v in range(500)])
    assert (home / ".vntrader" / "kpi.db-wal").stat().st_size > 0
    backup(home, tmp_path / "a.tar.gz")
    writer.close()
    restore(tmp_path / "a.tar.gz", tmp_path / "restored")
    restored = tmp_path / "restored" / ".vntrader"
    assert rows(restored / "kpi.db", "SELECT count(*), sum(v) FROM k") == [(500, sum(range(500)))]
    assert not (restored / "kpi.db-wal").exists()


@pytest.mark.parametrize("path", ["../outside.json", "/etc/passwd", ".vntrader/../../x", ""])
def test_a_manifest_path_leaving_the_home_is_refused(tmp_path, path):
    home = make_home(tmp_path / "home", {})
    backup(home, tmp_path / "a.tar.gz")
    raw = repacked(tmp_path / "a.tar.gz", lambda m: {**m, "files": [{**m["files"][0], "path": path}]})
    (tmp_path / "b.tar.gz").write_bytes(raw)
    with pytest.raises(InputRejected, match="not a relative path inside the home"):
        restore(tmp_path / "b.tar.gz", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_backup_refuses_a_folder_without_a_runtime_folder_and_an_archive_inside_it(tmp_path):
    with pytest.raises(InputRejected, match="no .vntrader folder"):
        backup(tmp_path, tmp_path / "a.tar.gz")
    home = make_home(tmp_path / "home", {})
    with pytest.raises(InputRejected, match="inside a folder being archived"):
        backup(home, home / ".vntrader" / "a.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"] and files_of(home) == {".vntrader/vt_setting.json": b"{}"}


def test_the_archive_is_gzip_with_the_manifest_first(tmp_path):
    home = make_home(tmp_path / "home", {})
    backup(home, tmp_path / "a.tar.gz")
    with gzip.open(tmp_path / "a.tar.gz") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        names = [m.name for m in tar]
    assert names == [MANIFEST_NAME, "home/.vntrader/vt_setting.json"]


def test_temporary_files_and_links_are_skipped_and_listed(tmp_path):
    home = make_home(tmp_path / "home", {})
    runtime = home / ".vntrader"
    (runtime / "risk_state.json.k2j4.tmp").write_text("{half")  # an atomic write in flight
    (runtime / "link.json").symlink_to(runtime / "vt_setting.json")
    (runtime / "line\nbreak.json").write_text("{}")  # restore refuses such a name: not archived
    result = backup(home, tmp_path / "a.tar.gz")
    assert [e.path for e in read_archive(tmp_path / "a.tar.gz").files] == [".vntrader/vt_setting.json"]
    assert sorted(s.split(":")[0] for s in result.skipped) == ["'.vntrader/line\\nbreak.json'", ".vntrader/link.json",
                                                                 ".vntrader/risk_state.json.k2j4.tmp"]


# -- another home, another project version ------------------------------------------------------------------
def test_an_archive_of_another_project_version_is_restored_with_a_warning_naming_both(tmp_path, capsys):
    from vnpy_rotation import __version__

    home = make_home(tmp_path / "home", {})
    backup(home, tmp_path / "a.tar.gz")
    (tmp_path / "old.tar.gz").write_bytes(repacked(tmp_path / "a.tar.gz", lambda m: {**m, "project_version": "0.0.1"}))
    assert run_main("restore", str(tmp_path / "old.tar.gz"), "--home", str(tmp_path / "restored")) == 0
    warning = capsys.readouterr().err
    assert "0.0.1" in warning and __version__ in warning
    assert files_of(tmp_path / "restored") == {".vntrader/vt_setting.json": b"{}"}
    assert restore(tmp_path / "a.tar.gz", tmp_path / "same").warnings == ()


def experiment(out_dir: Path) -> object:
    from vnpy_rotation.ops.experiments import Experiment, ExperimentInputs

    return Experiment("EXP-20261203-000000-abcd", "backtest", "ok", "", 0, "2026-12-03T00:00:00+00:00",
                      "2026-12-03T00:00:01+00:00", 1.0, "tester", "run.py backtest", ExperimentInputs("etf_rotation"),
                      {"sharpe": 1.0}, {}, str(out_dir))


def kpi_rows() -> list:
    from vnpy_rotation.ops.kpi import KpiRow

    return [KpiRow(date(2024, 6, 3), "etf_rotation", "pnl", 12.5, float("nan"), "", "ok", "CNY")]


def test_folders_of_the_home_in_the_database_follow_a_restore_into_another_folder(tmp_path):
    """An experiment's output folder and a KPI row's run folder inside the home are stored relative to it: in the
    home restored elsewhere they name the restored folders, and lookups by those folders find them."""
    from peewee import SqliteDatabase

    from vnpy_rotation.ops.experiment_store import ExperimentStore
    from vnpy_rotation.ops.experiments import ExperimentRegistry
    from vnpy_rotation.ops.kpi_store import kpi_history, record

    home = make_home(tmp_path / "home", {})
    db = SqliteDatabase(str(home / ".vntrader" / "database.db"))
    ExperimentRegistry(ExperimentStore(db)).record(experiment(home / "bt"))
    assert record(kpi_rows(), home / "live", db=db) == 1
    db.close()
    backup(home, tmp_path / "a.tar.gz")
    restore(tmp_path / "a.tar.gz", tmp_path / "moved")

    moved = SqliteDatabase(str(tmp_path / "moved" / ".vntrader" / "database.db"))
    [found] = ExperimentRegistry(ExperimentStore(moved)).by_output(tmp_path / "moved" / "bt")
    assert found.out_dir == str(tmp_path / "moved" / "bt")
    history = kpi_history(run=tmp_path / "moved" / "live", db=moved)
    assert history["run"].tolist() == [str(tmp_path / "moved" / "live")] and history["value"].tolist() == [12.5]
    assert record(kpi_rows(), tmp_path / "moved" / "live", db=moved) == 0  # the same values: nothing new
    moved.close()


def test_absolute_folder_rows_written_before_still_match_in_their_home(tmp_path):
    """Rows from before the relative rule hold absolute paths; in the home they were written in, a lookup by the
    folder still finds them and recording the same KPI values again adds nothing (old rows are never updated)."""
    from peewee import SqliteDatabase

    from vnpy_rotation.ops.experiment_store import ExperimentStore
    from vnpy_rotation.ops.experiments import ExperimentRegistry
    from vnpy_rotation.ops.kpi_store import kpi_history, record

    home = make_home(tmp_path / "home", {})
    db = SqliteDatabase(str(home / ".vntrader" / "database.db"))
    ExperimentRegistry(ExperimentStore(db)).record(experiment(home / "bt"))
    record(kpi_rows(), home / "live", db=db)
    db.execute_sql("DROP TRIGGER rotation_experiment_no_update")  # only to make the row as an older version wrote it
    db.execute_sql("UPDATE rotation_experiment SET out_dir = ?", (str(home / "bt"),))
    db.execute_sql("UPDATE rotation_kpi SET run = ?", (str(home / "live"),))
    assert [e.id for e in ExperimentRegistry(ExperimentStore(db)).by_output(home / "bt")] == [
        "EXP-20261203-000000-abcd"]
    assert record(kpi_rows(), home / "live", db=db) == 0
    assert kpi_history(run=home / "live", db=db)["run"].tolist() == [str(home / "live")]
    db.close()
