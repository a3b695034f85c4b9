"""The online/offline consistency check: the live stack's fills against the backtest's, day by day."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["datetime", "vt_symbol", "direction"]
COMPARED = ["volume", "price", "value", "commission", "stamp_duty", "transfer_fee"]
TOLERANCE = 1e-6  # CNY and shares: both sides compute in the same code, so anything above is a real difference


@dataclass
class Consistency:
    daily: pd.DataFrame  # date, backtest_fills, live_fills, differing_fills, equity_backtest, equity_live, equity_diff
    differences: pd.DataFrame  # one row per fill that differs, with both sides' values

    @property
    def consistent(self) -> bool:
        return bool((self.daily["differing_fills"] == 0).all()) and bool(
            (self.daily["equity_diff"].abs().fillna(0) <= 0.005).all())

    def headline(self) -> str:
        fills = int(self.daily["backtest_fills"].sum())
        bad = int(self.daily["differing_fills"].sum())
        worst = float(self.daily["equity_diff"].abs().max()) if len(self.daily) else 0.0
        verdict = "CONSISTENT" if self.consistent else "DIFFERENT"
        return (f"{verdict}: {len(self.daily)} sessions, {fills} backtest fills, {bad} differing fills, "
                f"max equity difference {worst:.2f} CNY")


def compare(backtest: pd.DataFrame, live: pd.DataFrame, backtest_equity: pd.Series,
            live_equity: pd.Series) -> Consistency:
    """``backtest``/``live``: trades in the backtester's columns; equities indexed by date."""
    b, l_ = _normalise(backtest), _normalise(live)
    merged = b.merge(l_, on=KEY, how="outer", suffixes=("_backtest", "_live"), indicator=True)
    differs = merged["_merge"] != "both"
    for column in COMPARED:
        differs |= ~np.isclose(merged[f"{column}_backtest"], merged[f"{column}_live"], atol=TOLERANCE, rtol=0)
    differences = merged[differs].drop(columns="_merge")
    days = pd.DatetimeIndex(sorted(set(live_equity.index) | set(backtest_equity.index)))
    daily = pd.DataFrame({
        "date": days.date,
        "backtest_fills": b.groupby("datetime").size().reindex(days, fill_value=0).to_numpy(),
        "live_fills": l_.groupby("datetime").size().reindex(days, fill_value=0).to_numpy(),
        "differing_fills": differences.groupby("datetime").size().reindex(days, fill_value=0).to_numpy(),
        "equity_backtest": backtest_equity.reindex(days).to_numpy(),
        "equity_live": live_equity.reindex(days).to_numpy(),
    })
    daily["equity_diff"] = (daily["equity_live"] - daily["equity_backtest"]).round(6)
    return Consistency(daily, differences)


def _normalise(trades: pd.DataFrame) -> pd.DataFrame:
    frame = trades.copy()
    frame["datetime"] = pd.to_datetime(frame["datetime"]).dt.normalize()
    frame[list(COMPARED)] = frame[list(COMPARED)].astype(float)  # a run without fills reads them as text
    # several fills of one symbol and side on a day (live retries) count as one
    return frame.groupby(KEY, as_index=False)[COMPARED].agg(
        {"volume": "sum", "price": "mean", "value": "sum", "commission": "sum", "stamp_duty": "sum",
         "transfer_fee": "sum"})


def write_report(result: Consistency, out_md: Path, out_csv: Path) -> None:
    result.daily.to_csv(out_csv, index=False)
    lines = ["# Replay vs backtest consistency", "", result.headline(), "",
             "| date | backtest fills | live fills | differing | equity (backtest) | equity (live) | diff |",
             "|---|---|---|---|---|---|---|"]
    for row in result.daily.itertuples(index=False):
        lines.append(f"| {row.date} | {row.backtest_fills} | {row.live_fills} | {row.differing_fills} | "
                     f"{row.equity_backtest:,.2f} | {row.equity_live:,.2f} | {row.equity_diff:.2f} |")
    if len(result.differences):
        lines += ["", "## Differing fills", "", "```", result.differences.to_string(index=False), "```"]
    Path(out_md).write_text("\n".join(lines) + "\n", encoding="utf-8")
