"""Backup and restore of a runtime folder (``HOME/.vntrader`` and folders of HOME the user names).

A backup is one ``.tar.gz`` file: ``MANIFEST.json`` first (format version, creation time, project version, source
home, the database setting, and each file's path, size and SHA-256), then every file under ``home/<path>``.

Consistency while a daemon runs:

- SQLite files (recognised by their header, whatever their name) are copied with SQLite's online backup API
  (``sqlite3.Connection.backup`` in one step: one read transaction, so the copy is one committed state of the
  database; a writer waits on its busy timeout meanwhile). Their ``-journal``/``-wal``/``-shm`` side files are
  not archived: the copy already holds every committed transaction.
- Other files are copied from one open handle: the project writes its state files by temp file + rename
  (``live/state_file.py``), so a copy sees either the old file or the new one. Leftover ``*.tmp`` files are
  skipped.
- The archive is written to a temporary file beside ``--out`` and renamed: there is never a half-written archive.

A MySQL or PostgreSQL database (``vt_setting.json`` ``database.name``) is not in the archive: it is backed up with
its own dump tool (docs/backup.md); every file of the runtime folder still is.

Restore reads the whole archive and checks the manifest and every file's size and SHA-256 before it writes
anything; it then writes into a temporary folder beside the home, checking again, and renames that folder into
place: all or nothing. A non-empty home is refused unless ``force``, and then it is renamed aside, not deleted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import quote

from .. import __version__
from ..errors import InputRejected, Problem
from ..live.state_file import replacing

FORMAT = "vnpy_rotation-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "MANIFEST.json"
DATA_PREFIX = "home/"  # archive member of a file: home/<path relative to the home>
RUNTIME = ".vntrader"  # vnpy's runtime folder inside a home (see runtime.py)
SETTINGS = "vt_setting.json"
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html)
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")
SKIPPED_SUFFIXES = (".tmp",)  # temp files of atomic writes: a finished write has renamed its own away
MANIFEST_LIMIT = 64 << 20  # a manifest larger than this is not ours
CHUNK = 1 << 20
# The dump tools of the server databases vnpy supports (vnpy_mysql, vnpy_postgresql): consistent dumps of a
# running server, documented in docs/backup.md.
SERVER_DUMPS = {
    "mysql": "mysqldump --single-transaction",
    "postgresql": "pg_dump",
}


@dataclass(frozen=True)
class FileEntry:
    """One archived file: its path relative to the home (POSIX separators), size, SHA-256 and how it was copied."""

    path: str
    size: int
    sha256: str
    sqlite: bool  # copied with SQLite's online backup API


@dataclass(frozen=True)
class DatabaseInfo:
    """The home's database setting at backup time and whether the database itself is in the archive."""

    name: str  # vt_setting.json database.name (vnpy's default: sqlite)
    included: bool
    note: str  # why it is not included, or ""


@dataclass(frozen=True)
class Manifest:
    format: str
    format_version: int
    created_at: str  # ISO 8601, UTC
    project_version: str
    source_home: str
    database: DatabaseInfo
    files: tuple[FileEntry, ...]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> Manifest:
        """The manifest in ``raw``; anything missing, mistyped or of another format names ``source``."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _bad(source, f"{MANIFEST_NAME} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise _bad(source, f"{MANIFEST_NAME} is not a {FORMAT} manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise _bad(source, f"format version {data.get('format_version')!r} is not supported "
                               f"(this version reads {FORMAT_VERSION})")
        try:
            database = DatabaseInfo(**data["database"])
            files = tuple(FileEntry(**entry) for entry in data["files"])
            manifest = cls(format=data["format"], format_version=data["format_version"],
                           created_at=str(data["created_at"]), project_version=str(data["project_version"]),
                           source_home=str(data["source_home"]), database=database, files=files)
        except (KeyError, TypeError) as exc:
            raise _bad(source, f"{MANIFEST_NAME} lacks or mistypes a field ({exc})") from None
        seen: set[str] = set()
        for entry in files:
            if not (isinstance(entry.path, str) and isinstance(entry.size, int) and isinstance(entry.sha256, str)):
                raise _bad(source, f"{MANIFEST_NAME}: entry {entry.path!r} has a mistyped field")
            if not _safe_path(entry.path):
                raise _bad(source, f"{MANIFEST_NAME}: {entry.path!r} is not a relative path inside the home")
            if entry.path in seen:
                raise _bad(source, f"{MANIFEST_NAME}: {entry.path!r} is listed twice")
            seen.add(entry.path)
        return manifest


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    manifest: Manifest
    skipped: tuple[str, ...]  # paths seen but not archived, each with why
    notes: tuple[str, ...]  # what the user must know (a server database, a database outside the home)


@dataclass(frozen=True)
class RestoreResult:
    home: Path
    manifest: Manifest
    previous: Path | None  # where the old home was kept (with force)
    notes: tuple[str, ...]


def _bad(source: str, reason: str) -> InputRejected:
    return InputRejected(Problem(source, None, reason))


def _safe_path(path: str) -> bool:
    """A relative POSIX path with no empty, ``.`` or ``..`` part (an archive never writes outside the home)."""
    parts = path.split("/")
    return bool(path) and not PurePosixPath(path).is_absolute() and "\\" not in path and \
        all(part not in ("", ".", "..") for part in parts)


# -- backup ------------------------------------------------------------------------------------------------------
def database_setting(runtime: Path) -> tuple[str, Path | None]:
    """``(database.name, SQLite file or None)`` from ``runtime/vt_setting.json`` with vnpy's defaults (sqlite,
    ``database.db``); vnpy_sqlite opens ``get_file_path(database.database)``, i.e. relative to ``.vntrader``."""
    path = runtime / SETTINGS
    settings: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _bad(str(path), f"not valid JSON ({exc})") from None
        settings = loaded if isinstance(loaded, dict) else {}
    name = str(settings.get("database.name") or "sqlite")
    if name != "sqlite":
        return name, None
    return name, runtime / str(settings.get("database.database") or "database.db")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def is_sqlite(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's header (False when it was removed meanwhile)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except FileNotFoundError:
        return False


def sqlite_copy(source: Path, target: Path) -> None:
    """Copy the database ``source`` to ``target`` with SQLite's online backup API, in one step (one read
    transaction: the copy is one committed state even while another process writes)."""
    # mode=rw: never creates a file, and may roll back a hot journal a crashed writer left (read-only could not)
    src = sqlite3.connect(f"file:{quote(str(source))}?mode=rw", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: all pages in one step; a busy source is retried (every 0.25 s)
        finally:
            dst.close()
    finally:
        src.close()


def _hash(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _folders(home: Path, includes: Iterable[Path]) -> list[Path]:
    """The runtime folder and the included folders, each checked to lie inside ``home``."""
    folders = [home / RUNTIME]
    for given in includes:
        folder = (home / given).resolve() if not given.is_absolute() else given.resolve()
        if not folder.is_dir():
            raise _bad("--include", f"{given} is not a folder")
        if not _inside(folder, home) or folder == home:
            raise _bad("--include", f"{given} is not a folder inside the home {home}")
        if any(_inside(folder, f) or _inside(f, folder) for f in folders):
            raise _bad("--include", f"{given} overlaps a folder already archived")
        folders.append(folder)
    return folders


def backup(home: Path, out: Path, includes: Iterable[Path] = (), now: datetime | None = None) -> BackupResult:
    """Write the archive of ``home`` to ``out`` (replaced atomically if it exists)."""
    home, out = Path(home).resolve(), Path(out).absolute()
    runtime = home / RUNTIME
    if not runtime.is_dir():
        raise _bad(str(home), f"has no {RUNTIME} folder: not a runtime folder, nothing to back up")
    if out.is_dir():
        raise _bad("--out", f"{out} is a folder; give the archive's file name (e.g. backup.tar.gz)")
    if not out.parent.is_dir():
        raise _bad("--out", f"folder {out.parent} does not exist")
    folders = _folders(home, includes)
    if any(_inside(out.resolve(), folder) for folder in folders):
        raise _bad("--out", f"{out} lies inside a folder being archived; write it elsewhere")
    created = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)

    name, database_file = database_setting(runtime)
    notes: list[str] = []
    if database_file is None:
        tool = SERVER_DUMPS.get(name, "the database's own dump tool")
        note = f"database.name is {name}: the database is not in this archive; dump it with {tool} (docs/backup.md)"
        database = DatabaseInfo(name, False, note)
        notes.append(note)
    elif not any(_inside(database_file.resolve(), folder) for folder in folders):
        note = f"the SQLite database {database_file} lies outside the archived folders and is not in this archive"
        database = DatabaseInfo(name, False, note)
        notes.append(note)
    else:
        database = DatabaseInfo(name, True, "")

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    try:
        entries, skipped = _stage(home, folders, staging)
        manifest = Manifest(FORMAT, FORMAT_VERSION, created.isoformat(timespec="seconds"), __version__, str(home),
                            database, tuple(entries))
        _write_archive(manifest, staging, out, int(created.timestamp()))
    except OSError as exc:
        raise _bad(str(exc.filename or out), f"backup failed: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(out, manifest, tuple(skipped), tuple(notes))


def _stage(home: Path, folders: list[Path], staging: Path) -> tuple[list[FileEntry], list[str]]:
    """Copy every file of ``folders`` into ``staging`` (SQLite files by the backup API) and hash the copies."""
    entries: list[FileEntry] = []
    skipped: list[str] = []
    for folder in folders:
        files = []
        for path in _walk(folder):  # temp files first: an atomic write may rename its own away at any moment
            rel = path.relative_to(home).as_posix()
            if path.name.endswith(SKIPPED_SUFFIXES):
                skipped.append(f"{rel}: temporary file")
            elif path.is_symlink() or (path.exists() and not path.is_file()):
                skipped.append(f"{rel}: not a regular file")
            else:
                files.append(path)
        databases = {p for p in files if is_sqlite(p)}
        for path in files:
            rel = path.relative_to(home).as_posix()
            if any(path.name.endswith(side) and path.with_name(path.name.removesuffix(side)) in databases
                   for side in SQLITE_SIDE_FILES):
                continue  # a database's journal: its committed content is in the database's copy
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if path in databases:
                    sqlite_copy(path, target)
                else:
                    with open(path, "rb") as source, open(target, "wb") as copy:
                        shutil.copyfileobj(source, copy, CHUNK)  # one handle: one version of the file
            except FileNotFoundError:
                skipped.append(f"{rel}: removed while the backup ran")
                continue
            except sqlite3.Error as exc:
                raise _bad(str(path), f"SQLite backup failed: {exc}") from None
            size, digest = _hash(target)
            entries.append(FileEntry(rel, size, digest, path in databases))
    return entries, skipped


def _write_archive(manifest: Manifest, staging: Path, out: Path, mtime: int) -> None:
    with replacing(out, binary=True) as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz, \
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            body = manifest.to_json()
            tar.addfile(_member(MANIFEST_NAME, len(body), mtime), io.BytesIO(body))
            for entry in manifest.files:
                with open(staging / entry.path, "rb") as source:
                    tar.addfile(_member(DATA_PREFIX + entry.path, entry.size, mtime), source)


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info


# -- reading and restoring ---------------------------------------------------------------------------------------
Sink = Callable[[FileEntry], IO[bytes]]


def read_archive(archive: Path, sink: Sink | None = None) -> Manifest:
    """Read all of ``archive`` and check it: the manifest, each listed file present once with its size and
    SHA-256, nothing unlisted, and gzip's own CRC to the end. With ``sink``, each file's bytes are also written
    to ``sink(entry)`` (a file the caller opened) as they are read. Any fault is one problem naming the archive."""
    source = str(archive)
    if not archive.is_file():
        raise _bad(source, "no such file" if not archive.exists() else "not a file")
    try:
        with open(archive, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raise _bad(source, "not a backup archive (not gzip-compressed)")
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                with tarfile.open(fileobj=gz, mode="r|") as tar:
                    manifest = _check_members(tar, source, sink)
                while gz.read(CHUNK):  # to the end: gzip checks its CRC and length there
                    pass
    except InputRejected:
        raise
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise _bad(source, f"damaged or truncated archive ({type(exc).__name__}: {exc})") from None
    return manifest


def _check_members(tar: tarfile.TarFile, source: str, sink: Sink | None) -> Manifest:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or not first.isfile():
        raise _bad(source, f"not a backup archive ({MANIFEST_NAME} is not its first member)")
    if first.size > MANIFEST_LIMIT:
        raise _bad(source, f"{MANIFEST_NAME} is {first.size} bytes: not a backup manifest")
    body = tar.extractfile(first)
    assert body is not None  # a regular file member
    manifest = Manifest.from_json(body.read(), source)
    expected = {entry.path: entry for entry in manifest.files}
    seen: set[str] = set()
    while (member := tar.next()) is not None:  # not ``for member in tar``: it would yield the manifest again
        rel = member.name.removeprefix(DATA_PREFIX)
        if not member.name.startswith(DATA_PREFIX) or rel not in expected or not member.isfile():
            raise _bad(source, f"member {member.name!r} is not listed in {MANIFEST_NAME}")
        if rel in seen:
            raise _bad(source, f"member {member.name!r} appears twice")
        seen.add(rel)
        entry = expected[rel]
        data = tar.extractfile(member)
        assert data is not None
        digest, size = hashlib.sha256(), 0
        target = _open(sink, entry) if sink is not None else None
        try:
            while chunk := data.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if target is not None:
                    _write(target, chunk, entry)
        finally:
            if target is not None:
                target.close()
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise _bad(source, f"{rel}: checksum mismatch (the archive is damaged)")
    missing = sorted(set(expected) - seen)
    if missing:
        raise _bad(source, f"{len(missing)} listed file(s) missing, e.g. {missing[0]} (truncated archive?)")
    return manifest


class _WriteFailed(Exception):
    """Writing a restored file failed: the target's fault, not the archive's."""


def _open(sink: Sink, entry: FileEntry) -> IO[bytes]:
    try:
        return sink(entry)
    except OSError as exc:
        raise _WriteFailed(f"{entry.path}: {exc.strerror or exc}") from None


def _write(target: IO[bytes], chunk: bytes, entry: FileEntry) -> None:
    try:
        target.write(chunk)
    except OSError as exc:
        raise _WriteFailed(f"{entry.path}: {exc.strerror or exc}") from None


def restore(archive: Path, home: Path, force: bool = False, now: datetime | None = None) -> RestoreResult:
    """Restore ``archive`` into ``home``: verified whole first, written beside ``home``, renamed into place.
    A non-empty ``home`` is refused unless ``force``; then it is renamed to ``HOME.before-restore-<time>``."""
    archive, home = Path(archive).absolute(), Path(home).absolute()
    if home.exists() and not home.is_dir():
        raise _bad(str(home), "is a file; restore into a folder")
    occupied = home.is_dir() and any(home.iterdir())
    if occupied and not force:
        raise _bad(str(home), "is not empty; restore into a new or empty folder, or add --force "
                              "(the current content is renamed aside, not deleted)")
    manifest = read_archive(archive)  # verified before anything is written

    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.", suffix=".restoring", dir=home.parent))

    def sink(entry: FileEntry) -> IO[bytes]:
        target = staging / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "wb")

    previous: Path | None = None
    try:
        try:
            read_archive(archive, sink)  # written and checked again: the file may have changed since
        except _WriteFailed as exc:
            raise _bad(str(home), f"restore failed writing {exc}") from None
        stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        emptied = not occupied and home.is_dir()
        if occupied:
            previous = _free_name(home.parent / f"{home.name}.before-restore-{stamp}")
            os.rename(home, previous)
        elif emptied:
            home.rmdir()  # empty: a rename cannot replace it on every platform
        try:
            os.rename(staging, home)
        except OSError:
            if previous is not None:
                os.rename(previous, home)
            elif emptied:
                home.mkdir()
            raise
    except OSError as exc:
        raise _bad(str(home), f"restore failed: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after a successful rename
    notes = (manifest.database.note,) if not manifest.database.included else ()
    return RestoreResult(home, manifest, previous, notes)


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate
