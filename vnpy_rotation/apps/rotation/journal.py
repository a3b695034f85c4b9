"""The daemon's output folder: one journal file per closed session, and the tables rebuilt from them.

``journal/<day>.json`` is written atomically before the session is marked closed, so a crash at any point
leaves either no record of the day (the restart closes it again) or the same record written twice; the
CSV files are always rebuilt from the journal, never appended to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...backtest.engine import TRADE_COLUMNS
from ...live.plan import DayProgress
from ...live.state_file import write_atomic

# price: the limit sent; expected_price: the fill price the order was sized with (the matcher's model price)
ORDER_COLUMNS = ["date", "reference", "vt_symbol", "direction", "volume", "price", "traded", "status", "order_id",
                 "expected_price"]
SUMMARY_COLUMNS = ["date", "equity", "cash", "market_value", "pnl", "orders", "fills", "positions", "unfilled",
                   "carried", "reconciliation", "risk_rung"]


class DayJournal:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.folder = self.out / "journal"

    def __call__(self, strategy: str, progress: DayProgress | None, summary: dict) -> None:
        record = {"strategy": strategy, "summary": summary,
                  "progress": None if progress is None else progress.to_json()}
        write_atomic(self.folder / f"{summary['day']}.json", record)
        self.rebuild()

    def records(self) -> list[dict]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.folder.glob("*.json"))]

    def rebuild(self) -> None:
        """trades.csv (the backtester's columns), orders.csv and daily_summary.csv from the journal."""
        trades, orders, summaries = [], [], []
        for record in self.records():
            summary, progress = record["summary"], record["progress"] or {}
            day = summary["day"]
            for f in progress.get("fills", []):
                trades.append({"datetime": day, "vt_symbol": f["symbol"], "direction": "buy" if f["buy"] else "sell",
                               **{k: f[k] for k in ("price", "volume", "value", "commission", "stamp_duty",
                                                    "transfer_fee", "slippage", "reason")}})
            for o in progress.get("orders", []):
                orders.append({"date": day, "reference": o["reference"], "vt_symbol": o["symbol"],
                               "direction": "buy" if o["buy"] else "sell", "volume": o["volume"], "price": o["price"],
                               "traded": o["traded"], "status": o["status"], "order_id": o["order_id"],
                               "expected_price": o.get("expected_price")})
            summaries.append({"date": day, **{k: summary.get(k) for k in SUMMARY_COLUMNS[1:]},
                              "risk_rung": (summary.get("risk") or {}).get("rung")})
        for row in summaries:
            for key in ("positions", "unfilled", "reconciliation"):
                row[key] = json.dumps(row[key], ensure_ascii=False, sort_keys=True)
        self.out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(trades, columns=TRADE_COLUMNS).to_csv(self.out / "trades.csv", index=False)
        pd.DataFrame(orders, columns=ORDER_COLUMNS).to_csv(self.out / "orders.csv", index=False)
        pd.DataFrame(summaries, columns=SUMMARY_COLUMNS).to_csv(self.out / "daily_summary.csv", index=False)
