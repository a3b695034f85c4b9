"""The runtime folder a benchmark runs in: a temporary one (removed afterwards) or ``--home`` reused.

vnpy picks its folder at import time, so the folder is settled before anything imports vnpy, and the
process moves into it so that subprocesses and spawned workers find ``./.vntrader`` there, never
``~/.vntrader``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


def run_in_home(home: Path | None, prefix: str, run: Callable[[Path], None]) -> None:
    """``run(home)`` inside ``home`` (a fresh temporary folder when ``None``, removed afterwards)."""
    temporary = home is None
    home = (home or Path(tempfile.mkdtemp(prefix=prefix))).resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
        from vnpy_rotation.runtime import settle_runtime

        settle_runtime(home)
        os.chdir(home)
        run(home)
    finally:
        if temporary:
            os.chdir(ROOT)
            shutil.rmtree(home, ignore_errors=True)


def code_version() -> str:
    """``git describe`` of the checkout being measured (``-dirty`` when it has local changes)."""
    done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"
