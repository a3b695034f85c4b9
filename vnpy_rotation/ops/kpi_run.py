"""What the KPIs read from a trade run's folder (``run.py trade --out OUT``): its tables, its parameters, the
risk engine's and the canary's state, and the baseline backtest (cached in ``OUT/kpi/baseline.json``).

The risk state is read here from its JSON file (``OUT/state/risk_state.json``) with the ladder's own constants
(:mod:`vnpy_rotation.risk.ladder`): ``apps/`` sits above ``ops/``, so its ``RiskStateFile`` is not imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..backtest.metrics import compute_metrics
from ..errors import InputRejected, Problem
from ..live.state_file import read_json, write_atomic
from ..risk.ladder import LADDER_STATE, RUNGS, S_RUNG

PARAMETERS = Path("state") / "run_parameters.json"
RISK_STATE = Path("state") / "risk_state.json"
BASELINE_FILE = Path("kpi") / "baseline.json"
ACCOUNT = "account"


@dataclass(frozen=True)
class RunData:
    """One book's history: close equity and market value by session, its fills and (a run's) orders."""

    equity: pd.Series  # CNY, DatetimeIndex of sessions
    market_value: pd.Series  # CNY, same index
    capital: float  # CNY before the first session
    trades: pd.DataFrame  # date (datetime64), vt_symbol, direction, price, volume, value, costs by kind
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)  # date, vt_symbol, direction, traded, expected_price
    risk_rung: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))  # the strategy's rung per close

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """The backtest's metrics of this equity (computed once: several KPIs read them)."""
        return compute_metrics(self.equity.to_frame("equity"))

    def until(self, day: date) -> "RunData":
        """The history up to and including ``day``."""
        end = pd.Timestamp(day)
        orders = self.orders[self.orders["date"] <= end] if len(self.orders) else self.orders
        return RunData(self.equity[self.equity.index <= end], self.market_value[self.market_value.index <= end],
                       self.capital, self.trades[self.trades["date"] <= end], orders,
                       self.risk_rung[self.risk_rung.index <= end] if len(self.risk_rung) else self.risk_rung)


@dataclass(frozen=True)
class RiskScope:
    rung: str  # one of risk.ladder.RUNGS
    flags: tuple[str, ...]


@dataclass(frozen=True)
class CanaryStage:
    candidate: str
    stage: str  # the stage's name
    index: int  # its position in the release's stage table
    status: str  # the release's status (running, complete, rolled_back, ...)


def _csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    if not path.exists():
        raise InputRejected(Problem(str(path), None, "missing: not a trade run's folder (run.py trade --out)"))
    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputRejected(Problem(str(path), None, f"unreadable: {str(exc).splitlines()[0]}")) from None


def run_parameters(run: Path) -> dict[str, Any]:
    stored = read_json(run / PARAMETERS)
    if not stored or "parameters" not in stored:
        raise InputRejected(Problem(str(run / PARAMETERS), None, "missing: not a trade run's folder"))
    return {"sha256": stored.get("sha256", ""), **stored["parameters"]}


def read_run(run: Path, capital: float) -> RunData:
    """``daily_summary.csv``, ``trades.csv`` and ``orders.csv`` of a run folder."""
    summary = _csv(run / "daily_summary.csv")
    for column in ("date", "equity", "market_value"):
        if column not in summary.columns:
            raise InputRejected(Problem(str(run / "daily_summary.csv"), 1, f"{column}: column missing"))
    index = pd.DatetimeIndex(pd.to_datetime(summary["date"]), name="date")
    trades = _csv(run / "trades.csv")
    trades["date"] = pd.to_datetime(trades["datetime"]).dt.normalize()
    orders = _csv(run / "orders.csv") if (run / "orders.csv").exists() else pd.DataFrame()
    if len(orders.columns):
        orders["date"] = pd.to_datetime(orders["date"])
        if "expected_price" not in orders.columns:  # a run written before the journal kept it
            orders["expected_price"] = np.nan
    rung = summary["risk_rung"] if "risk_rung" in summary.columns else pd.Series(np.nan, index=summary.index)
    return RunData(pd.Series(summary["equity"].to_numpy(float), index=index),
                   pd.Series(summary["market_value"].to_numpy(float), index=index), capital, trades, orders,
                   pd.Series(rung.to_numpy(object), index=index))


def risk_scopes(run: Path, day: date) -> dict[str, RiskScope]:
    """The account's and each strategy's rung and raised fail-safe flags at the close of ``day``.

    Rungs are replayed from the state's rung changes (the last change on or before ``day``; before the first
    change, its ``before``); flags are those still raised that were raised on or before ``day``. Empty when the
    risk engine has not closed ``day`` yet (or there is no risk state).
    """
    raw = read_json(run / RISK_STATE) or {}
    if not raw or str((raw.get("account") or {}).get("last_day") or "") < day.isoformat():
        return {}
    iso = day.isoformat()
    flags = [f for f in (raw.get("flags") or {}).values() if str(f.get("day", "")) <= iso]
    changes = sorted(raw.get("history") or [], key=lambda c: str(c.get("day", "")))

    def at(scope: str, current: str) -> RiskScope:
        mine = [c for c in changes if c.get("scope") == scope]
        before = [c for c in mine if str(c["day"]) <= iso]
        rung = str(before[-1]["after"]) if before else str(mine[0]["before"]) if mine else current
        return RiskScope(rung, tuple(sorted(str(f.get("flag")) for f in flags if f.get("scope") in (scope, "*"))))

    saved = np.array((raw.get("account") or {}).get("state") or [[0.0] * LADDER_STATE], dtype=float)
    out = {ACCOUNT: at(ACCOUNT, RUNGS[int(saved.reshape(-1, LADDER_STATE)[:, S_RUNG].max())])}  # the worst ladder
    for name, entry in (raw.get("strategies") or {}).items():
        out[name] = at(name, str(entry.get("rung", RUNGS[0])))
    return out


def canary_stage(run: Path, strategy: str, day: date) -> CanaryStage | None:
    """The stage the strategy's canary release ran in at the close of ``day`` (its ledger's session record),
    or None (no canary, or none had closed a session by then)."""
    state = read_json(run / "state" / f"{strategy}.json") or {}
    if not state.get("canary"):
        return None
    from ..live.canary_stage import CanaryLedger

    ledger = CanaryLedger.from_json(state["canary"])
    sessions = [s for s in ledger.sessions if s.day <= day.isoformat()]
    if not sessions:
        return None
    names = [stage.name for stage in ledger.config.stages]
    last = sessions[-1]
    return CanaryStage(ledger.candidate, last.stage, names.index(last.stage) if last.stage in names else -1,
                       last.status)


def baseline(run: Path, parameters: dict[str, Any], day: date) -> RunData | None:
    """The backtest of the run's strategy and config over the run's sessions up to ``day`` or beyond.

    A replay's baseline runs once through its ``--end`` and is cached; a live run's through ``day``, cached until
    a later day is asked for. None when the backtest cannot run (the reason is raised to the caller).
    """
    path = run / BASELINE_FILE
    key = baseline_key(parameters)
    cached = read_json(path)
    if cached and cached.get("key") == key and cached.get("through", "") >= day.isoformat():
        return _from_json(cached)
    end = parameters.get("end")
    through = max(day, date.fromisoformat(end)) if end else day
    data = _backtest(parameters, through)
    write_baseline(run, parameters, through, data)
    return data


def baseline_key(parameters: dict[str, Any]) -> str:
    """What the cached baseline was computed from: the strategy, its settings, the config and the first session."""
    fields = {k: parameters.get(k) for k in ("strategy", "settings", "backtest", "start")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def write_baseline(run: Path, parameters: dict[str, Any], through: date, data: RunData) -> None:
    write_atomic(run / BASELINE_FILE, {"key": baseline_key(parameters), "through": through.isoformat(),
                                       **_to_json(data)})


def _backtest(parameters: dict[str, Any], through: date) -> RunData:
    from ..backtest.config import BacktestConfig
    from ..backtest.runner import RunSpec, run_backtest

    config = BacktestConfig.model_validate(parameters["backtest"])
    start = date.fromisoformat(parameters["start"]) if parameters.get("start") else None
    spec = RunSpec(parameters["strategy"], dict(parameters.get("settings") or {}), config, start=start, end=through,
                   source="the run's parameters")
    result = run_backtest(spec, lookahead_cuts=0).result
    equity = result.equity
    index = pd.DatetimeIndex(pd.to_datetime(equity.index), name="date")
    trades = result.trades.copy()
    trades["date"] = pd.to_datetime(trades["datetime"]).dt.normalize()
    return RunData(pd.Series(equity["equity"].to_numpy(float), index=index),
                   pd.Series(equity["market_value"].to_numpy(float), index=index), config.capital, trades)


_TRADE_KEEP = ["date", "vt_symbol", "direction", "price", "volume", "value", "commission", "stamp_duty",
               "transfer_fee", "slippage"]


def _to_json(data: RunData) -> dict[str, Any]:
    trades = data.trades[_TRADE_KEEP].copy()
    trades["date"] = trades["date"].dt.strftime("%Y-%m-%d")
    return {"capital": data.capital, "dates": [d.strftime("%Y-%m-%d") for d in data.equity.index],
            "equity": data.equity.tolist(), "market_value": data.market_value.tolist(),
            "trades": trades.to_dict(orient="list")}


def _from_json(raw: dict[str, Any]) -> RunData:
    index = pd.DatetimeIndex(pd.to_datetime(raw["dates"]), name="date")
    trades = pd.DataFrame(raw["trades"], columns=_TRADE_KEEP)
    trades["date"] = pd.to_datetime(trades["date"])
    return RunData(pd.Series(raw["equity"], index=index, dtype=float),
                   pd.Series(raw["market_value"], index=index, dtype=float), float(raw["capital"]), trades)


def finite(x: Any) -> float:
    """``x`` as a float, NaN for None or anything not finite."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
