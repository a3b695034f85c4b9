"""Helpers shared by the backup and restore tests: a minimal home, a folder's files, run.py's main in process."""

from __future__ import annotations

import json
from pathlib import Path


def make_home(folder: Path, settings: dict) -> Path:
    (folder / ".vntrader").mkdir(parents=True)
    (folder / ".vntrader" / "vt_setting.json").write_text(json.dumps(settings), encoding="utf-8")
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_main(*args: str) -> int:
    from vnpy_rotation.cli.main import main

    return main(list(args))
