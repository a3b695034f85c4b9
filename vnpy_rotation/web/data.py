"""What the dashboard shows, read from a trade run's folder (``run.py trade --out OUT``) while the daemon writes it.

Every section is a plain JSON-ready dict built from the files the daemon keeps: ``daily_summary.csv``,
``trades.csv``, ``orders.csv``, ``journal/<day>.json`` and ``state/`` (each strategy's state with its order
plan and canary ledger, ``risk_state.json``). Nothing here writes: the JSON state files are replaced
atomically by the daemon, and the CSV files (rewritten in place after each close) are read until two
looks at the file agree. A missing file is an empty section; a damaged one is that section's ``error``,
never a failed page. KPI history comes from a provider callable (the KPI store's ``kpi_history``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..apps.risk.state_file import STATE_FILENAME, RiskStateFile
from ..apps.rotation.canary_records import canary_view, read_ledger
from ..errors import InputRejected, Problem, RotationError
from ..live.ports import FILLED
from ..live.state_file import read_json

KpiProvider = Callable[[str | None, date | None], pd.DataFrame]
KPI_COLUMNS = ["date", "scope", "kpi", "value", "baseline", "threshold", "status"]
SETTINGS_FILE = "rotation_strategy_setting.json"  # the rotation app's instances: the strategies of the run
PARAMETERS_FILE = "run_parameters.json"
TREND_POINTS = 60  # sessions drawn in each sparkline
KPI_SINCE_DAYS = 180  # calendar days of KPI history asked for, counted back from the run's last session
RECENT_FILLS = 20
MAX_ALERTS = 60
# the columns each panel reads from the daemon's files (a backtest's orders.csv, e.g., has others)
TRADE_COLUMNS = ("datetime", "vt_symbol", "direction", "price", "volume")
ORDER_COLUMNS = ("date", "vt_symbol", "direction", "price", "volume", "traded", "status", "reference")
SUMMARY_COLUMNS = ("date", "equity", "cash", "market_value", "pnl")
NO_KPI_HISTORY = "no KPI history yet (run.py kpi snapshot writes it after each session)"


def default_kpi_provider() -> KpiProvider | None:
    """The KPI store's ``kpi_history``, or None where this installation has no KPI store."""
    try:
        from ..ops.kpi_store import kpi_history
    except ImportError:
        return None
    return kpi_history


def clean(value: Any) -> Any:
    """``value`` as strict JSON: NaN/inf become None, numpy scalars Python ones, dates ISO strings."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, date)):
        return value.isoformat()[:10]
    return value


def cleaned(value: dict[str, Any]) -> dict[str, Any]:
    """A section, :func:`clean`."""
    result: dict[str, Any] = clean(value)
    return result


def read_table(path: Path, attempts: int = 5) -> pd.DataFrame:
    """``path`` as a table (empty when missing), read until the file did not change during the read: the
    daemon rewrites its CSV files in place after each close, so one read may catch half a file."""
    frame = pd.DataFrame()
    for _ in range(attempts):
        try:
            before = path.stat()
        except FileNotFoundError:
            return pd.DataFrame()
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, FileNotFoundError):
            frame = pd.DataFrame()
        try:
            after = path.stat()
        except FileNotFoundError:
            return pd.DataFrame()
        if (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size) and after.st_size:
            return frame
        time.sleep(0.05)
    return frame


def read_run_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """:func:`read_table` of a file the daemon writes, refused (naming the file) when it lacks a column a
    panel reads: a file of another kind (a backtest's, say) then shows as that panel's error."""
    frame = read_table(path)
    missing = [c for c in columns if c not in frame.columns]
    if len(frame.columns) and missing:
        raise InputRejected(Problem(str(path), 1, f"not a trade run's {path.name}: no column(s) {', '.join(missing)}"))
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = clean(frame.to_dict(orient="records")) if len(frame) else []
    return rows


def guarded(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One section: a damaged file (or a failing KPI store) becomes its ``error``, the rest of the page still
    shows -- a page a trader watches must not go blank because one source failed."""
    try:
        return build()
    except RotationError as exc:  # names the file and the field
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - anything else, named by its type, in that section only
        return {"error": f"{type(exc).__name__}: {exc}"}


@dataclass(frozen=True)
class RunFolder:
    """A trade run's folder and where the dashboard takes its KPI history from."""

    path: Path
    kpi_provider: KpiProvider | None = field(default_factory=default_kpi_provider)
    trend_points: int = TREND_POINTS

    @property
    def state(self) -> Path:
        return self.path / "state"

    def strategies(self) -> list[str]:
        """The run's strategy instances (the rotation app's settings), else its parameters' strategy."""
        settings = read_json(self.state / SETTINGS_FILE, {}) or {}
        if settings:
            return sorted(settings)
        parameters = (read_json(self.state / PARAMETERS_FILE, {}) or {}).get("parameters") or {}
        return [parameters["strategy"]] if parameters.get("strategy") else []

    def strategy_state(self, name: str) -> dict[str, Any]:
        return read_json(self.state / f"{name}.json", {}) or {}

    # -- sections ------------------------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        parameters = (read_json(self.state / PARAMETERS_FILE, {}) or {}).get("parameters") or {}
        strategies = self.strategies()
        last = max((self.strategy_state(s).get("last_close") or "" for s in strategies), default="")
        files = [self.state / f"{s}.json" for s in strategies if (self.state / f"{s}.json").exists()]
        written = max((p.stat().st_mtime for p in files), default=None)  # the daemon alive: it writes each phase
        return {"folder": str(self.path), "gateway": parameters.get("gateway"), "strategies": strategies,
                "start": parameters.get("start"), "end": parameters.get("end"), "last_session": last or None,
                "capital": (parameters.get("backtest") or {}).get("capital"),
                "written": None if written is None else datetime.fromtimestamp(written).isoformat(" ", "seconds")}

    def account(self) -> dict[str, Any]:
        """The latest close of the account (daily_summary.csv) with its equity trend and drawdown."""
        summary = read_run_table(self.path / "daily_summary.csv", SUMMARY_COLUMNS)
        if summary.empty:
            return {"sessions": 0}
        equity = summary["equity"].astype(float).to_numpy()
        peak = np.maximum.accumulate(equity)
        last = summary.iloc[-1]
        positions = json.loads(last["positions"]) if isinstance(last.get("positions"), str) else {}
        tail = summary.tail(self.trend_points)
        return cleaned({"sessions": len(summary), "date": last["date"], "equity": last["equity"], "cash": last["cash"],
                      "market_value": last["market_value"], "pnl": last["pnl"],
                      "return": equity[-1] / equity[0] - 1.0 if equity[0] else None,
                      "drawdown": equity[-1] / peak[-1] - 1.0 if peak[-1] else None,
                      "max_drawdown": float((equity / peak - 1.0).min()) if peak.all() else None,
                      "risk_rung": last.get("risk_rung"), "positions": positions,
                      "trend": {"dates": list(tail["date"]), "equity": list(tail["equity"].astype(float))}})

    def kpis(self, last_session: str | None) -> dict[str, Any]:
        """The latest value of each (scope, KPI) with its baseline, threshold, status and recent values."""
        if self.kpi_provider is None:
            return {"rows": [], "note": NO_KPI_HISTORY}
        since = date.fromisoformat(last_session) - timedelta(days=KPI_SINCE_DAYS) if last_session else None
        history = self.kpi_provider(None, since)
        if history is not None and "run" in history.columns:  # the store keeps one history per run folder
            history = history[history["run"] == str(self.path.absolute())]
        if history is None or history.empty:
            return {"rows": [], "note": NO_KPI_HISTORY}
        missing = [c for c in KPI_COLUMNS if c not in history.columns]
        if missing:
            raise ValueError(f"KPI history lacks columns {missing}")
        history = history.assign(date=pd.to_datetime(history["date"])).sort_values(["scope", "kpi", "date"])
        rows = []
        # the account first, then strategies by name; KPIs in the order the store first lists them
        order = {k: i for i, k in enumerate(dict.fromkeys(history["kpi"]))}
        for (scope, kpi), group in sorted(history.groupby(["scope", "kpi"], sort=False),
                                          key=lambda item: (item[0][0] != "account", item[0][0], order[item[0][1]])):
            last = group.iloc[-1]
            tail = group.tail(self.trend_points)
            rows.append({"scope": scope, "kpi": kpi, "date": last["date"], "value": last["value"],
                         "baseline": last["baseline"], "threshold": last["threshold"], "status": last["status"],
                         "trend": list(tail["value"].astype(float))})
        return cleaned({"rows": rows, "note": None, "breaches": sum(r["status"] == "breach" for r in rows)})

    def risk(self) -> dict[str, Any]:
        """Each scope's rung, drawdown, flags, exception-test zone and fail-safe stage (risk_state.json)."""
        if not (self.state / STATE_FILENAME).exists():
            return {"rows": [], "note": "no risk state yet"}
        state = RiskStateFile(self.state, read_only=True)
        return cleaned({"rows": state.rows(), "note": None})

    def canary(self) -> dict[str, Any]:
        """Each strategy's canary (stage, share, gates), or that none ran."""
        rows = []
        for name in self.strategies():
            raw = self.strategy_state(name).get("canary")
            if raw is None:
                rows.append({"strategy": name, "status": "none"})
                continue
            view = canary_view(read_ledger(self.state, name, raw))
            rows.append({k: view[k] for k in ("strategy", "champion", "candidate", "status", "stage", "share",
                                              "sessions_in_stage", "approval", "started", "gates", "history")})
        return cleaned({"rows": rows})

    def plan(self) -> dict[str, Any]:
        """Per strategy: the order plan waiting for the next open (targets) and the latest session's legs
        (today's progress while a session runs, else the last journal day with orders)."""
        journal = self._journal_with_orders()
        out = []
        for name in self.strategies():
            state = self.strategy_state(name)
            plan = state.get("plan") or None
            targets = [] if plan is None else [
                {"symbol": s, "target": t, "note": (plan.get("notes") or {}).get(s) or plan.get("reason")}
                for s, t in zip(plan["symbols"], plan["target"])]
            progress = state.get("progress") or journal.get(name)
            legs = [] if progress is None else [
                {"symbol": leg["symbol"], "side": "buy" if leg["buy"] else "sell", "wanted": leg["wanted"],
                 "submitted": leg["submitted"], "filled": leg["filled"],
                 "remaining": max(leg["submitted"] - leg["filled"], 0.0), "cuts": leg.get("cuts") or []}
                for leg in progress.get("legs", [])]
            out.append({"strategy": name, "decided": None if plan is None else plan.get("decided"),
                        "weighted": None if plan is None else plan.get("weighted"), "targets": targets,
                        "session": None if progress is None else progress.get("day"),
                        "phase": None if progress is None else progress.get("phase"), "legs": legs})
        return cleaned({"strategies": out})

    def _journal_with_orders(self) -> dict[str, dict[str, Any]]:
        """The latest journal day with legs, per strategy (journal files are written atomically)."""
        found: dict[str, dict[str, Any]] = {}
        for path in sorted((self.path / "journal").glob("*.json"), reverse=True):
            record = read_json(path, {}) or {}
            progress = record.get("progress") or {}
            name = record.get("strategy")
            if name and name not in found and progress.get("legs"):
                found[name] = progress
            if len(found) >= len(self.strategies()):
                break
        return found

    def fills(self) -> dict[str, Any]:
        """trades.csv: the count, the last fill, the latest session's fills and the most recent ones."""
        trades = read_run_table(self.path / "trades.csv", TRADE_COLUMNS)
        if trades.empty:
            return {"count": 0, "last": None, "session": None, "today": [], "recent": [],
                    "fees": 0.0, "value": 0.0}
        day = str(trades["datetime"].iloc[-1])[:10]
        today = trades[trades["datetime"].astype(str).str[:10] == day]
        fee_columns = [c for c in ("commission", "stamp_duty", "transfer_fee") if c in trades]
        return cleaned({"count": len(trades), "last": records(trades.tail(1))[0], "session": day,
                      "today": records(today), "recent": records(trades.tail(RECENT_FILLS).iloc[::-1]),
                      "fees": float(today[fee_columns].to_numpy().sum()),
                      "value": float(today["value"].sum()) if "value" in today else None})

    def orders(self) -> dict[str, Any]:
        """orders.csv: the latest session's orders and every order that did not fill completely."""
        orders = read_run_table(self.path / "orders.csv", ORDER_COLUMNS)
        if orders.empty:
            return {"count": 0, "session": None, "today": [], "refused": []}
        day = str(orders["date"].iloc[-1])
        refused = orders[orders["status"].astype(str) != FILLED]
        return cleaned({"count": len(orders), "session": day, "today": records(orders[orders["date"].astype(str) == day]),
                      "refused": records(refused.iloc[::-1].head(RECENT_FILLS))})

    def alerts(self) -> dict[str, Any]:
        """What the engines raised and the notifier was given, newest first: rung changes, risk alerts and
        flags, risk denials, rejected orders, reconciliation differences, canary transitions."""
        rows: list[dict[str, Any]] = []
        risk_path = self.state / STATE_FILENAME
        if risk_path.exists():
            risk = RiskStateFile(self.state, read_only=True)
            rows += [{"day": h["day"], "scope": h["scope"], "kind": f"{h['before']} → {h['after']}",
                      "severity": _rung_severity(h["after"]), "message": h["reason"]} for h in risk.history]
            rows += [{"day": a["day"], "scope": a["scope"], "kind": a["kind"], "severity": "warn",
                      "message": a["reason"]} for a in risk.alerts]
            rows += [{"day": f.get("day"), "scope": f["scope"], "kind": f"flag {f['flag']}", "severity": "alert",
                      "message": f.get("reason", "")} for f in risk.flags.values()]
            rows += [{"day": d["time"][:10], "scope": d["strategy"] or "account", "kind": "denial", "severity": "warn",
                      "message": f"{d['direction']} {d['vt_symbol']} {d['volume']:g} refused ({d['rung']}): "
                                 f"{d['reason']}"} for d in risk.denials]
        orders = self._or_empty(self.path / "orders.csv", ORDER_COLUMNS)
        if not orders.empty:
            for o in records(orders[orders["status"].astype(str).isin(["rejected"])]):
                rows.append({"day": o["date"], "scope": str(o["reference"]).split("|")[0], "kind": "rejected order",
                             "severity": "warn", "message": f"{o['direction']} {o['vt_symbol']} {o['volume']:g} "
                                                            f"@ {o['price']:g} rejected"})
        summary = self._or_empty(self.path / "daily_summary.csv", SUMMARY_COLUMNS)
        if not summary.empty and "reconciliation" in summary:
            for row in records(summary[summary["reconciliation"].astype(str) != "[]"]):
                rows.append({"day": row["date"], "scope": "account", "kind": "reconciliation", "severity": "alert",
                             "message": str(row["reconciliation"])})
        for canary in guarded(self.canary).get("rows", []):  # a damaged ledger shows in the canary panel
            rows += [{"day": h["day"], "scope": canary["strategy"], "kind": f"canary {h['event']}",
                      "severity": "alert" if "rollback" in h["event"] else "info",
                      "message": f"{h['from']} → {h['to']}: {h['reason']}"} for h in canary.get("history", [])]
        kpis = self.section("kpis")
        rows += [{"day": k["date"], "scope": k["scope"], "kind": "KPI breach", "severity": "alert",
                  "message": f"{k['kpi']} {k['value']:.4g} (threshold {k['threshold']})"}
                 for k in kpis.get("rows", []) if k["status"] == "breach"]
        rows.sort(key=lambda r: str(r["day"] or ""), reverse=True)
        return cleaned({"count": len(rows), "rows": rows[:MAX_ALERTS]})

    @staticmethod
    def _or_empty(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
        """A file the alerts scan, empty when it is not the daemon's (its own panel shows why)."""
        try:
            return read_run_table(path, columns)
        except InputRejected:
            return pd.DataFrame()

    def sections(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """Each section's builder by its name (the JSON endpoints ``/api/<name>``)."""
        return {"run": self.run_info, "account": self.account,
                "kpis": lambda: self.kpis(guarded(self.run_info).get("last_session")), "risk": self.risk,
                "canary": self.canary, "plan": self.plan, "fills": self.fills, "orders": self.orders,
                "alerts": self.alerts}

    def section(self, name: str) -> dict[str, Any]:
        return guarded(self.sections()[name])

    def summary(self) -> dict[str, Any]:
        """Every section of the page."""
        return {name: guarded(build) for name, build in self.sections().items()}


def _rung_severity(rung: str) -> str:
    return {"ACTIVE": "info", "REDUCING": "warn"}.get(rung, "alert")
