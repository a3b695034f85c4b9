"""Choose vnpy's runtime folder before vnpy is imported.

vnpy fixes its runtime folder when ``vnpy.trader.utility`` is first imported: ``./.vntrader`` if
that folder exists in the current directory, else ``~/.vntrader`` (created on the spot). Settings
(``vt_setting.json``) and the SQLite file live there. :func:`settle_runtime` creates
``HOME/.vntrader`` with settings that select the embedded SQLite database, then imports vnpy from
inside ``HOME`` so vnpy picks that folder, and returns to the caller's directory.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .errors import RuntimeFolderConflict

# Daily bars are stored as midnight in this zone; A-share dates are Shanghai dates.
DATABASE_TIMEZONE = "Asia/Shanghai"

DEFAULT_SETTINGS: dict[str, object] = {
    "database.name": "sqlite",
    "database.database": "database.db",
    "database.timezone": DATABASE_TIMEZONE,
}


def runtime_folder(home: Path) -> Path:
    """The ``.vntrader`` folder vnpy will use for ``home``."""
    return Path(home).resolve() / ".vntrader"


def write_default_settings(folder: Path) -> Path:
    """Create ``folder/vt_setting.json`` or add our defaults to it; keys a user set are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vt_setting.json"
    settings: dict[str, object] = {}
    if path.exists():
        settings = json.loads(path.read_text(encoding="utf-8") or "{}")
    merged = {**DEFAULT_SETTINGS, **settings}
    if merged != settings:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(merged, indent=4, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    return path


def settle_runtime(home: Path | str | None = None) -> Path:
    """Make vnpy use ``home/.vntrader`` (default: the current directory) and return that folder.

    Safe to call again with the same home. Raises :class:`RuntimeFolderConflict` when vnpy was
    already imported with another folder in this process.
    """
    folder = runtime_folder(Path(home) if home is not None else Path.cwd())
    loaded = sys.modules.get("vnpy.trader.utility")
    if loaded is not None:
        current = Path(loaded.TEMP_DIR).resolve()
        if current != folder:
            raise RuntimeFolderConflict(
                f"vnpy already uses {current}; cannot switch to {folder} in the same process"
            )
        return folder

    write_default_settings(folder)
    previous = Path.cwd()
    os.chdir(folder.parent)
    try:
        import vnpy.trader.setting  # noqa: F401  (reads vt_setting.json from there)
        import vnpy.trader.utility  # noqa: F401  (fixes TRADER_DIR from the cwd)
    finally:
        os.chdir(previous)
    return folder


def snapshot_folder(strategy: str) -> Path:
    """Where the last runs of ``strategy`` are kept: ``.vntrader/rotation_snapshots/<strategy>``."""
    from vnpy.trader.utility import TEMP_DIR  # settled by settle_runtime before any command runs

    return Path(TEMP_DIR) / "rotation_snapshots" / strategy
