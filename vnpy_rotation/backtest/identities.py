"""Accounting identities checked on every backtest run.

- equity = cash + Σ shares × valuation price, every day;
- the daily profit by symbol sums to the change in equity;
- final cash = capital − buys + sells − fees + distributions (trades, costs and dividends reconcile);
- replaying fills and splits gives the final holdings;
- cash is never negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .result import BacktestResult

TOLERANCE = 1e-3  # CNY: a tenth of a fen, far above float error on sums of fen amounts, far below a fee


@dataclass(frozen=True)
class IdentityCheck:
    name: str
    ok: bool
    detail: str


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE


def check_identities(result: BacktestResult) -> list[IdentityCheck]:
    equity, trades, flows = result.equity, result.trades, result.cash_flows
    checks = []

    mv = result.holdings_value.sum(axis=1).to_numpy()
    gap = np.abs(equity["equity"].to_numpy() - equity["cash"].to_numpy() - mv).max(initial=0.0)
    checks.append(IdentityCheck("equity = cash + market value", bool(gap <= TOLERANCE),
                                f"largest daily gap {gap:.6f} CNY"))

    change = np.diff(np.concatenate([[result.initial_capital], equity["equity"].to_numpy()]))
    pnl_gap = np.abs(result.symbol_pnl.sum(axis=1).to_numpy() - change).max(initial=0.0)
    checks.append(IdentityCheck("Σ symbol pnl = Δ equity", bool(pnl_gap <= TOLERANCE),
                                f"largest daily gap {pnl_gap:.6f} CNY"))

    sign = np.where(trades["direction"] == "buy", -1.0, 1.0)
    fees = trades[["commission", "stamp_duty", "transfer_fee"]].to_numpy().sum()
    dividends = flows.loc[flows["kind"] == "dividend", "cash"].sum() if len(flows) else 0.0
    expected = result.initial_capital + float((sign * trades["value"]).sum()) - fees + dividends
    final_cash = float(equity["cash"].iloc[-1]) if len(equity) else result.initial_capital
    checks.append(IdentityCheck("cash = capital − buys + sells − fees + dividends",
                                _close(expected, final_cash),
                                f"reconciled {expected:.2f} vs final cash {final_cash:.2f}"))

    held = _replay_holdings(trades, flows)
    final = result.positions[result.positions["date"] == equity.index[-1]] if len(equity) else result.positions
    final_map = dict(zip(final["vt_symbol"], final["volume"]))
    mismatched = sorted(s for s in set(held) | set(final_map)
                        if abs(held.get(s, 0.0) - final_map.get(s, 0.0)) > 1e-6)
    checks.append(IdentityCheck("fills and splits replay to the final holdings", not mismatched,
                                "all symbols agree" if not mismatched else f"differ: {', '.join(mismatched)}"))

    if result.settings.get("rules", {}).get("cash_check", True):  # vnpy compatibility mode lets it go negative
        lowest = float(equity["cash"].min()) if len(equity) else 0.0
        checks.append(IdentityCheck("cash never negative", lowest >= -TOLERANCE, f"lowest cash {lowest:.2f}"))
    return checks


def _replay_holdings(trades: pd.DataFrame, flows: pd.DataFrame) -> dict[str, float]:
    events = [(pd.Timestamp(t.datetime), 1, t.vt_symbol, t.volume if t.direction == "buy" else -t.volume)
              for t in trades.itertuples()]
    # Ex-date actions apply before that day's fills.
    events += [(pd.Timestamp(f.date), 0, f.vt_symbol, f.volume_after - f.volume_before)
               for f in flows.itertuples() if f.kind == "split"]
    held: dict[str, float] = {}
    for _, _, symbol, delta in sorted(events, key=lambda e: (e[0], e[1])):
        held[symbol] = held.get(symbol, 0.0) + delta
    return {s: v for s, v in held.items() if abs(v) > 1e-9}
