"""The account views of the rotation window (also shown by the risk window): execution statistics per
strategy and account, and the capital allocation in force."""

from __future__ import annotations

from typing import Any

from .tables import DataTable, _missing, money


def bp(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.1f}"


def rate(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.1%}"


def seconds(value: Any) -> str:
    return "-" if _missing(value) else f"{value:.0f}"


class ExecutionTable(DataTable):
    """The snapshot's ``execution``: one row per scope (the strategy, its account) and period (docs/execution_stats.md;
    "-" where there is nothing to measure)."""

    headers = ("Scope", "Name", "Period", "Day", "Orders", "Filled", "Fill (vol)", "Fill (orders)",
               "To fill med / p90 (s)", "Slip decision (bp)", "Slip open (bp)", "Slip VWAP (bp)", "Traded (CNY)",
               "Fees/CNY (bp)", "Refusals (count, CNY)")
    fit = tuple(range(14))

    def show_execution(self, stats: list[dict] | None) -> None:
        self.set_rows([[s["scope"], s["name"], s["period"], s["day"], str(s["orders"]), str(s["filled_orders"]),
                        rate(s["fill_rate_volume"]), rate(s["fill_rate_orders"]),
                        f"{seconds(s['time_to_fill_median'])} / {seconds(s['time_to_fill_p90'])}",
                        bp(s["slippage_decision_bp"]), bp(s["slippage_open_bp"]), bp(s["slippage_vwap_bp"]),
                        money(s["traded_value"]),
                        bp(None if s["fees_per_cny"] is None else s["fees_per_cny"] * 10_000),
                        "; ".join(f"{r['reason']} {r['count']} ({money(r['value'])})" for r in s["refusals"]) or "-"]
                       for s in stats or []])


class AllocationTable(DataTable):
    """An allocation record (AllocationDecision JSON): one row per strategy, then one per account."""

    headers = ("Strategy", "Account", "Amount (CNY)", "Weight", "Volatility", "Date", "Rule", "Reason")
    fit = (0, 1, 2, 3, 4, 5, 6)

    def show_allocation(self, decision: dict | None) -> None:
        if decision is None:
            self.set_rows([])
            return
        at = decision["at"].replace("T", " ")[:16]
        rows = [[x["strategy"], x["account"], money(x["amount"]), rate(x["weight"]), rate(x.get("volatility")), at,
                 decision["rule"], x["reason"] or decision.get("reason", "")] for x in decision["lines"]]
        rows += [["(account)", a["account"], money(a["allocated"]), rate(a["allocated"] / a["equity"])
                  if a["equity"] > 0 else "-", "-", at, decision["rule"], f"equity {money(a['equity'])}"
                  + (f"; {a['reason']}" if a.get("reason") else "")] for a in decision["accounts"]]
        self.set_rows(rows)
