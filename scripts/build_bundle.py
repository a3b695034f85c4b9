"""Rebuild ``vnpy_rotation/bundled/`` from ``../shared/data/real``: whole lines copied, rows outside
the common span dropped, nothing else changed (plus the one documented holiday row of h00300).

    python scripts/build_bundle.py [../shared/data/real]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "vnpy_rotation" / "bundled"
START, END = "2017-01-18", "2024-09-30"  # the longest span every bundled symbol covers
DROP_DAYS = {"2018-06-18"}  # a holiday row in the CSIndex h00300 file (PROVENANCE §9)


def copy_trimmed(source: Path, target: Path) -> int:
    lines = source.read_text(encoding="utf-8-sig").splitlines()
    has_header = not re.match(r"\d{4}/", lines[0])
    kept = lines[:1] if has_header else []
    for line in lines[1 if has_header else 0:]:
        day = line.split(",", 1)[0].replace("/", "-")
        if START <= day <= END and day not in DROP_DAYS:
            kept.append(line)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return len(kept) - has_header


def main(real: Path) -> None:
    manifest = yaml.safe_load((TARGET / "manifest.yaml").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        rows = copy_trimmed(real / entry["from"], TARGET / entry["path"])
        print(f"{entry['path']}: {rows} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "real")
