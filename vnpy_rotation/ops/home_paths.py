"""Folder paths in the project's database that move with the home (``run.py restore`` into another folder).

A row that names a folder (a KPI row's run folder, an experiment's output folder) stores it relative to the home
of the database when the folder lies inside that home — the home being the folder that holds the ``.vntrader``
folder holding the SQLite file — and absolute otherwise (a folder outside the home, a MySQL/PostgreSQL database:
a server is not restored with the home). Reading turns a relative path back into an absolute one under the
current home, so a restored home's rows name the restored folders.

Rows written before this rule hold absolute paths: they keep naming the folder where it was. A lookup by folder
matches both forms, so in the home they were written in they are found as before; after a restore into another
folder they name the old location (``docs/backup.md``). The tables are insert-only: old rows are never rewritten.
"""

from __future__ import annotations

from pathlib import Path

from peewee import Database, SqliteDatabase

from .backup import RUNTIME


def database_home(db: Database) -> Path | None:
    """The home of ``db``: for a SQLite file ``HOME/.vntrader/FILE``, ``HOME`` (resolved); else None."""
    name = getattr(db, "database", None)
    if not isinstance(db, SqliteDatabase) or not isinstance(name, str) or name in ("", ":memory:") \
            or name.startswith("file:"):
        return None
    folder = Path(name).resolve().parent
    return folder.parent if folder.name == RUNTIME else None


def to_stored(path: str | Path, home: Path | None) -> str:
    """How ``path`` is stored: relative (POSIX) to ``home`` when inside it, else absolute; ``""`` stays ``""``."""
    if not str(path):
        return ""
    absolute = Path(path).absolute()
    if home is not None:
        real = absolute.resolve()
        if home in real.parents:
            return real.relative_to(home).as_posix()
    return str(absolute)


def from_stored(text: str, home: Path | None) -> str:
    """The absolute path a stored ``text`` names (a relative one under ``home``); ``""`` stays ``""``."""
    if not text or Path(text).is_absolute() or home is None:
        return text
    return str(home / text)


def lookup_keys(path: str | Path, home: Path | None) -> list[str]:
    """The stored forms a row naming ``path`` may hold: the current one first, then the absolute one older rows
    hold."""
    return list(dict.fromkeys([to_stored(path, home), str(Path(path).absolute())]))
