"""Rebuild ``vnpy_rotation/market/trading_days.csv`` from the CSI 300 total-return index file.

The trading calendar is the set of days on which the CSI 300 index printed a close, minus rows the
provenance file documents as bad (2018-06-18, the Dragon Boat Festival holiday, appears in the
CSIndex ``h*`` files). Every ETF and stock file in ``../shared/data/real`` was checked to trade only
on these days.

    python scripts/build_calendar.py ../shared/data/real/index_daily/h00300.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

KNOWN_BAD_ROWS = {"2018-06-18"}  # market holiday present in CSIndex h00300/h00852/h00905
TARGET = Path(__file__).resolve().parents[1] / "vnpy_rotation" / "market" / "trading_days.csv"


def main(source: str) -> None:
    days = pd.read_csv(source, dtype=str)["date"]
    days = sorted(set(days) - KNOWN_BAD_ROWS)
    TARGET.write_text("date\n" + "\n".join(days) + "\n", encoding="utf-8")
    print(f"{TARGET}: {len(days)} days {days[0]} … {days[-1]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/real/index_daily/h00300.csv")
