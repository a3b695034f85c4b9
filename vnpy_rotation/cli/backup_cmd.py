"""``run.py backup`` and ``run.py restore``: a runtime folder to one archive and back (logic in ops/backup.py).

Neither command settles vnpy's runtime folder: backup only reads the home (a daemon may be running in it), and
restore must find the target home as it is (settling would create ``HOME/.vntrader`` in it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parsers(commands: Any, home: argparse.ArgumentParser) -> None:
    """``backup --out FILE [--include DIR]`` and ``restore FILE [--force]`` under ``commands``."""
    backup = commands.add_parser("backup", parents=[home],
                                 help="write a consistent archive of the runtime folder (safe while the daemon runs)")
    # dest "archive", not "out": run.py treats an --out as an output folder
    backup.add_argument("--out", dest="archive", type=Path, required=True, metavar="FILE",
                        help="the archive to write, e.g. backup-2026-12-03.tar.gz (replaced atomically if it exists)")
    backup.add_argument("--include", action="append", type=Path, default=[], metavar="DIR",
                        help="also archive this folder of the home, e.g. a trade run's --out (repeatable)")
    backup.set_defaults(handler="vnpy_rotation.cli.backup_cmd:run_backup", settle=False)
    restore = commands.add_parser("restore", parents=[home],
                                  help="verify an archive and restore it into --home (all or nothing)")
    restore.add_argument("archive", type=Path, metavar="FILE", help="an archive written by run.py backup")
    restore.add_argument("--force", action="store_true",
                         help="restore into a non-empty home: its current content is renamed aside, not deleted")
    restore.set_defaults(handler="vnpy_rotation.cli.backup_cmd:run_restore", settle=False)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def run_backup(args: argparse.Namespace) -> int:
    from ..ops.backup import backup

    home = getattr(args, "home", None) or Path.cwd()
    result = backup(home, args.archive, args.include)
    files = result.manifest.files
    databases = sum(entry.sqlite for entry in files)
    print(f"backup: {len(files)} files ({databases} SQLite by the online backup API), "
          f"{_megabytes(sum(entry.size for entry in files))} from {result.manifest.source_home} "
          f"-> {result.archive} ({_megabytes(result.archive.stat().st_size)})")
    for line in result.skipped:
        print(f"  skipped {line}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from ..errors import InputRejected, Problem
    from ..ops.backup import restore

    home = getattr(args, "home", None)
    if home is None:
        raise InputRejected(Problem("--home", None, "restore needs --home DIR: the folder to restore into"))
    result = restore(args.archive, home, force=args.force)
    manifest = result.manifest
    print(f"restored {len(manifest.files)} files into {result.home} from {args.archive} "
          f"(backup of {manifest.source_home} at {manifest.created_at}, project {manifest.project_version})")
    if result.previous is not None:
        print(f"previous home kept at {result.previous}")
    for note in result.notes:
        print(f"note: {note}")
    return 0
