"""Keep the last few runs of each strategy as snapshots (the last 10 by default)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

KEEP = 10


def keep_snapshot(files: list[Path], folder: Path, keep: int = KEEP) -> Path:
    """Copy ``files`` (those that exist) into a new time-stamped folder under ``folder``; prune to ``keep``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S_%fZ")
    target = folder / stamp
    target.mkdir(parents=True, exist_ok=False)
    for path in files:
        if path.exists():
            shutil.copy2(path, target / path.name)
    for old in sorted(p for p in folder.iterdir() if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target
