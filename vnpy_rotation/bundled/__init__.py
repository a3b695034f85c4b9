"""The real-data subset shipped with the package (see PROVENANCE.md and manifest.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml

BUNDLED_DIR = Path(__file__).parent


def manifest() -> dict:
    return yaml.safe_load((BUNDLED_DIR / "manifest.yaml").read_text(encoding="utf-8"))


def bundled_files() -> list[Path]:
    """Bar files in import order: unadjusted sources before qfq ones, so real prices win."""
    return [BUNDLED_DIR / entry["path"] for entry in manifest()["files"]]


def bundled_stock_files() -> list[Path]:
    """The stock-selection subset in import order: stock bars, then fundamentals, then index membership."""
    data = manifest()
    return [BUNDLED_DIR / entry["path"]
            for key in ("stock_files", "fundamental_files", "membership_files") for entry in data.get(key, [])]
