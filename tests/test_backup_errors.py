"""``run.py backup`` / ``run.py restore`` when something is wrong, in process through run.py's main: a failed
command removes nothing a running daemon wrote meanwhile and leaves none of its own files; an unreadable or
unwritable folder or file is one error line naming it; symlinked homes are archived and restored through their
links; an archive member with an unsafe path is refused with nothing written."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest
from backup_homes import files_of, make_home, run_main

from vnpy_rotation.errors import InputRejected
from vnpy_rotation.ops.backup import MANIFEST_NAME, backup, read_archive, restore


def test_a_failed_backup_removes_nothing_the_daemon_wrote_meanwhile(tmp_path, monkeypatch, capsys):
    """The daemon writes new files into the home while a backup runs; the backup then fails. run.py must not
    remove them (they are not the backup's), and the backup leaves no file of its own beside --out."""
    from vnpy_rotation.ops import backup as ops

    home = make_home(tmp_path / "home", {})
    written = home / ".vntrader" / "log" / "vt_20261203.log"

    def stage_while_the_daemon_writes(*args):
        written.parent.mkdir()
        written.write_text("the daemon's log line\n")
        (home / ".vntrader" / "rotation_state").mkdir()
        (home / ".vntrader" / "rotation_state" / "etf_rotation.json").write_text("{}")
        raise OSError(28, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr(ops, "_stage", stage_while_the_daemon_writes)
    (tmp_path / "out").mkdir()
    assert run_main("backup", "--out", str(tmp_path / "out" / "a.tar.gz"), "--home", str(home)) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert written.read_text() == "the daemon's log line\n"
    assert (home / ".vntrader" / "rotation_state" / "etf_rotation.json").read_text() == "{}"
    assert list((tmp_path / "out").iterdir()) == []


def unreadable(monkeypatch, module, name: str, path: Path) -> None:
    """``module.name`` (os.scandir, Path.iterdir, open, …) raises PermissionError for ``path``, as it does for a
    folder or file without read permission (simulated: a test run as root would read it anyway)."""
    real = getattr(module, name)

    def refusing(target=".", *args, **kwargs):
        if isinstance(target, (str, Path)) and Path(target) == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(module, name, refusing)


def test_an_unreadable_folder_of_the_home_fails_the_backup_naming_it(tmp_path, monkeypatch, capsys):
    import os

    home = make_home(tmp_path / "home", {})
    locked = home / ".vntrader" / "rotation_state"
    locked.mkdir()
    (locked / "etf_rotation.json").write_text("{}")
    unreadable(monkeypatch, os, "scandir", locked)
    (tmp_path / "out").mkdir()
    assert run_main("backup", "--out", str(tmp_path / "out" / "a.tar.gz"), "--home", str(home)) == 2
    assert str(locked) in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def unwritable(monkeypatch, folder: Path) -> None:
    """Creating anything in ``folder`` raises PermissionError, as in a folder without write permission."""
    import os

    real_mkdir, real_open = os.mkdir, os.open

    def refusing(call):
        def wrapped(path, *args, **kwargs):
            if isinstance(path, (str, Path)) and Path(path).parent == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return call(path, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(os, "mkdir", refusing(real_mkdir))
    monkeypatch.setattr(os, "open", refusing(real_open))


def test_an_unwritable_out_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    home = make_home(tmp_path / "home", {})
    (tmp_path / "out").mkdir()
    unwritable(monkeypatch, tmp_path / "out")
    assert run_main("backup", "--out", str(tmp_path / "out" / "a.tar.gz"), "--home", str(home)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(tmp_path / "out") in err and len(err.strip().splitlines()) == 1
    assert list((tmp_path / "out").iterdir()) == [] and files_of(home) == {".vntrader/vt_setting.json": b"{}"}


def test_restore_into_a_missing_or_unwritable_parent_is_a_clear_error(tmp_path, monkeypatch, capsys):
    home = make_home(tmp_path / "home", {})
    backup(home, tmp_path / "a.tar.gz")
    assert run_main("restore", str(tmp_path / "a.tar.gz"), "--home", str(tmp_path / "no" / "such" / "home")) == 2
    assert str(tmp_path / "no" / "such") in capsys.readouterr().err
    assert not (tmp_path / "no").exists()

    (tmp_path / "locked").mkdir()
    unwritable(monkeypatch, tmp_path / "locked")
    assert run_main("restore", str(tmp_path / "a.tar.gz"), "--home", str(tmp_path / "locked" / "home")) == 2
    assert str(tmp_path / "locked") in capsys.readouterr().err
    assert list((tmp_path / "locked").iterdir()) == []


def test_an_unreadable_settings_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import builtins
    import io as io_module

    home = make_home(tmp_path / "home", {})
    settings = home / ".vntrader" / "vt_setting.json"
    unreadable(monkeypatch, builtins, "open", settings)
    unreadable(monkeypatch, io_module, "open", settings)
    (tmp_path / "out").mkdir()
    assert run_main("backup", "--out", str(tmp_path / "out" / "a.tar.gz"), "--home", str(home)) == 2
    assert str(settings) in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unreadable_home_is_a_clear_error(tmp_path, monkeypatch, capsys):
    source = make_home(tmp_path / "source", {})
    backup(source, tmp_path / "a.tar.gz")
    home = tmp_path / "home"
    home.mkdir()
    unreadable(monkeypatch, Path, "iterdir", home)
    unreadable(monkeypatch, Path, "stat", home / ".vntrader")  # a folder without x: its entries cannot be looked at
    assert run_main("restore", str(tmp_path / "a.tar.gz"), "--home", str(home)) == 2
    assert str(home) in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz", "home", "source"]

    monkeypatch.undo()
    unreadable(monkeypatch, Path, "stat", source / ".vntrader")
    assert run_main("backup", "--out", str(tmp_path / "b.tar.gz"), "--home", str(source)) == 2
    assert str(source / ".vntrader") in capsys.readouterr().err
    assert not (tmp_path / "b.tar.gz").exists()


def test_a_symlinked_home_and_runtime_folder_are_archived_with_their_real_content(tmp_path, capsys):
    """HOME is a link to the real home, whose .vntrader is a link to a folder elsewhere (another disk); an
    included folder is a link too. The archive holds the real files under .vntrader/ and live/, the database
    counts as inside, an archive written into the real runtime folder is refused, and a link inside the runtime
    folder (a file or a folder) is listed as skipped, not followed."""
    real_runtime = tmp_path / "disk" / "runtime"
    (real_runtime / "rotation_state").mkdir(parents=True)
    (real_runtime / "vt_setting.json").write_text("{}")
    (real_runtime / "rotation_state" / "etf_rotation.json").write_text('{"day": "2024-01-02"}')
    sqlite3.connect(real_runtime / "database.db").execute("CREATE TABLE t (v)").connection.close()
    (tmp_path / "disk" / "live").mkdir()
    (tmp_path / "disk" / "live" / "trades.csv").write_text("day,symbol\n")
    (tmp_path / "elsewhere").mkdir()
    (real_runtime / "outside").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    real_home = tmp_path / "real_home"
    real_home.mkdir()
    (real_home / ".vntrader").symlink_to(real_runtime, target_is_directory=True)
    (real_home / "live").symlink_to(tmp_path / "disk" / "live", target_is_directory=True)
    home = tmp_path / "home"
    home.symlink_to(real_home, target_is_directory=True)

    with pytest.raises(InputRejected, match="inside a folder being archived"):
        backup(home, real_runtime / "a.tar.gz")
    result = backup(home, tmp_path / "a.tar.gz", [Path("live")])
    manifest = read_archive(tmp_path / "a.tar.gz")
    assert sorted((e.path, e.sqlite) for e in manifest.files) == [
        (".vntrader/database.db", True), (".vntrader/rotation_state/etf_rotation.json", False),
        (".vntrader/vt_setting.json", False), ("live/trades.csv", False)]
    assert manifest.database.included and result.notes == ()
    assert [s.split(":")[0] for s in result.skipped] == [".vntrader/outside"]


def test_restore_into_a_symlinked_home_fills_the_folder_it_points_to(tmp_path):
    source = make_home(tmp_path / "source", {})
    backup(source, tmp_path / "a.tar.gz")
    (tmp_path / "real").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real", target_is_directory=True)
    result = restore(tmp_path / "a.tar.gz", tmp_path / "home")
    assert result.home == tmp_path / "real" and (tmp_path / "home").is_symlink()
    assert files_of(tmp_path / "real") == {".vntrader/vt_setting.json": b"{}"}

    (tmp_path / "real" / "added.txt").write_text("kept aside")
    result = restore(tmp_path / "a.tar.gz", tmp_path / "home", force=True)
    assert (tmp_path / "home").is_symlink() and files_of(tmp_path / "home") == {".vntrader/vt_setting.json": b"{}"}
    assert result.previous is not None and result.previous.parent == tmp_path and files_of(result.previous) == {
        ".vntrader/vt_setting.json": b"{}", "added.txt": b"kept aside"}


def crafted(path: Path, members: list[tuple[str, str, bytes]]) -> Path:
    """An archive at ``path`` whose manifest lists each ``(manifest path, member name, bytes)`` with its true size
    and SHA-256, and whose members carry those names (PAX headers: any character, NUL included)."""
    files = [{"path": listed, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "sqlite": False}
             for listed, _, data in members]
    manifest = json.dumps({"format": "vnpy_rotation-backup", "format_version": 1, "created_at": "2026-12-03T00:00:00",
                           "project_version": "0", "source_home": "/x",
                           "database": {"name": "sqlite", "included": True, "note": ""}, "files": files}).encode()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST_NAME, manifest)] + [(member, data) for _, member, data in members]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


UNSAFE_MEMBERS = {
    "NUL in the path": (".vntrader/a\x00é.json", "home/.vntrader/a\x00é.json"),
    "a control character": (".vntrader/a\nb.json", "home/.vntrader/a\nb.json"),
    "member leaving the home": (".vntrader/a.json", "home/../../a.json"),
    "absolute member": (".vntrader/a.json", "/tmp/a.json"),
    "absolute manifest and member": ("/tmp/a.json", "home//tmp/a.json"),
    "dot-dot manifest and member": (".vntrader/../../a.json", "home/.vntrader/../../a.json"),
}


@pytest.mark.parametrize("unsafe", UNSAFE_MEMBERS, ids=list(UNSAFE_MEMBERS))
def test_an_unsafe_member_path_is_refused_with_nothing_written(tmp_path, capsys, unsafe):
    listed, member = UNSAFE_MEMBERS[unsafe]
    archive = crafted(tmp_path / "a.tar.gz", [(".vntrader/vt_setting.json", "home/.vntrader/vt_setting.json", b"{}"),
                                              (listed, member, b"{}")])
    (tmp_path / "parent").mkdir()
    assert run_main("restore", str(archive), "--home", str(tmp_path / "parent" / "home")) == 2
    err = capsys.readouterr().err
    assert str(archive) in err and len(err.strip().splitlines()) == 1
    assert list((tmp_path / "parent").iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.tar.gz", "parent"]
