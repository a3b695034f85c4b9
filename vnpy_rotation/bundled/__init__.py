"""The real-data subset shipped with the package (see PROVENANCE.md and manifest.yaml)."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

from ..config import safe_load

BUNDLED_DIR = Path(__file__).parent


@lru_cache(maxsize=1)
def _parsed_manifest() -> dict:
    # A backtest asks for the manifest many times (strategy symbols, pools, the first-run import check);
    # the shipped file does not change while a process runs, so it is parsed once.
    return safe_load((BUNDLED_DIR / "manifest.yaml").read_text(encoding="utf-8"))


def manifest() -> dict:
    """The parsed manifest.yaml (a private copy: callers may change it without touching the cache)."""
    return copy.deepcopy(_parsed_manifest())


def bundled_files() -> list[Path]:
    """Bar files in import order: unadjusted sources before qfq ones, so real prices win."""
    return [BUNDLED_DIR / entry["path"] for entry in _parsed_manifest()["files"]]


def bundled_stock_files() -> list[Path]:
    """The stock-selection subset in import order: stock bars, then fundamentals, then index membership."""
    data = _parsed_manifest()
    return [BUNDLED_DIR / entry["path"]
            for key in ("stock_files", "fundamental_files", "membership_files") for entry in data.get(key, [])]
