"""Several strategies across several accounts in one daemon (``run.py trade --config FILE`` with top-level
``accounts:`` and ``strategies:``, :class:`~vnpy_rotation.allocation.config.RunConfig`).

One MainEngine (:class:`~.daemon.Stack`) with one gateway per account, each strategy instance bound to its
account's gateway, the allocation reviewed after every close by the risk engine. Files in ``OUT``:

- ``OUT/<strategy>/``: what a single-strategy run writes in its ``--out`` (``journal/<day>.json``,
  ``trades.csv``, ``orders.csv``, ``daily_summary.csv``, ``kpi/``, a copy of ``sessions.csv``), one folder per
  strategy, so no strategy's journal overwrites another's;
- ``OUT/accounts.csv``: one row per session and account, the account's equity, cash and positions as the
  broker reports them and its reconciliation with the sum of its strategies' books (``accounts/<day>.json``
  holds the same, one file per session, written atomically);
- ``OUT/state/``: the one MainEngine's state (run parameters, instances, risk state with the allocation
  record, one replay book per account), ``OUT/sessions.csv``: the phases run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ...allocation.config import RunConfig
from ...backtest.config import BacktestConfig
from ...live.schedule import SessionTimes
from ...live.session_log import SESSIONS_FILE, SessionLog, close_slot, replay_phases, slots
from ...live.state_file import write_atomic
from ...ops.kpi_config import KpiThresholds
from .daemon import PARAMETERS_FILE, Stack, TradeSpec, class_name_of, clip_replay, run_parameters, stopped
from .engine import RotationEngine
from .journal import DayJournal
from .kpi_hook import SessionKpis

ACCOUNTS_FOLDER = "accounts"  # OUT/accounts/<day>.json: every account's record of the session
ACCOUNTS_FILE = "accounts.csv"
ACCOUNT_COLUMNS = ["date", "account", "gateway", "equity", "cash", "market_value", "positions", "strategies_cash",
                   "cash_difference", "position_differences"]
CENT = 0.005  # cash differences below half a cent are rounding, not a difference


@dataclass(frozen=True)
class SeveralSpec:
    """A several-strategy run: the accounts and strategies, the costs and rules every strategy trades under
    (``config.capital``: a replay account's cash unless it names its own), the window and the output folder."""

    run: RunConfig
    config: BacktestConfig
    out: Path
    start: date | None = None
    end: date | None = None
    tolerance_bps: float = 0.0
    max_rounds: int = 3
    kpi: KpiThresholds | None = None

    def capital(self, account: str) -> float:
        """A replay account's initial cash: its own ``capital``, else the run's."""
        return self.run.account(account).capital or self.config.capital


def several_parameters(spec: SeveralSpec, gateway: str) -> dict[str, Any]:
    """Everything that shapes a several-strategy run's state (see :func:`.daemon.run_parameters`)."""
    run = spec.run.model_dump(mode="json")
    for account in run["accounts"]:  # no secrets on disk
        account["xt"] = {k: v for k, v in account["xt"].items() if k != "token"}
    return {"gateway": gateway, "run": run,
            "backtest": spec.config.model_dump(mode="json"),
            "start": spec.start.isoformat() if spec.start else None, "end": spec.end.isoformat() if spec.end else None,
            "tolerance_bps": spec.tolerance_bps, "max_rounds": spec.max_rounds}


def run_outputs(run: RunConfig) -> tuple[str, ...]:
    """What a several-strategy run writes into its ``--out`` besides a single run's files (``--fresh`` removes them)."""
    return (ACCOUNTS_FOLDER, ACCOUNTS_FILE, *(s.name for s in run.strategies))


def write_strategy_parameters(spec: SeveralSpec, gateway: str) -> None:
    """``OUT/<strategy>/state/run_parameters.json``: each strategy's folder says what it ran, as a single run's
    does (the strategy, its settings, its account's capital; ``several``: the run it is part of), so the tools
    that read one run's folder (``run.py kpi``, ``stats``, ``dashboard``) read a strategy's."""
    for line in spec.run.strategies:
        account = spec.run.account(line.account)
        single = TradeSpec(line.strategy, dict(line.settings),
                           spec.config.model_copy(update={"capital": spec.capital(account.id)}),
                           spec.out / line.name, spec.start, spec.end, spec.tolerance_bps, spec.max_rounds)
        parameters = {**run_parameters(single, gateway), "several": {"run": str(spec.out), "name": line.name,
                                                                     "account": account.id,
                                                                     "gateway": account.gateway}}
        text = json.dumps(parameters, sort_keys=True, ensure_ascii=False, default=str)
        write_atomic(spec.out / line.name / "state" / PARAMETERS_FILE,
                     {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "parameters": json.loads(text)})


class PerStrategy:
    """A ``day_closed`` callback: each strategy's journal and KPI snapshot in its own folder ``OUT/<strategy>``."""

    def __init__(self, out: Path, make: Callable[[Path], list[Callable[[str, Any, dict], None]]]) -> None:
        self.out = Path(out)
        self.make = make
        self.callbacks: dict[str, list[Callable[[str, Any, dict], None]]] = {}

    def __call__(self, strategy: str, progress: Any, summary: dict) -> None:
        if strategy not in self.callbacks:
            self.callbacks[strategy] = self.make(self.out / strategy)
        for callback in self.callbacks[strategy]:
            callback(strategy, progress, summary)


def add_instances(engine: RotationEngine, spec: SeveralSpec, tolerance_bps: float) -> list[str]:
    """Every configured strategy as an instance on its account's gateway (created, or its settings refreshed)."""
    names = []
    for line in spec.run.strategies:
        account = spec.run.account(line.account)
        config = spec.config.model_copy(update={"capital": spec.capital(account.id)}) if account.kind == "replay" \
            else spec.config
        options = {"backtest": config.model_dump(mode="json"), "gateway": account.gateway,
                   "history_start": spec.start.isoformat() if spec.start else None,
                   "tolerance_bps": tolerance_bps, "max_rounds": spec.max_rounds}
        if line.name in engine.instances:
            engine.edit_strategy(line.name, dict(line.settings), **options)
        else:
            engine.add_strategy(line.name, class_name_of(line.strategy), dict(line.settings), **options)
        names.append(line.name)
    return names


def start_all(stack: Stack, names: list[str]) -> None:
    for name in names:
        stack.engine.init_strategy(name)
    stack.drain()
    for name in names:
        instance = stack.engine.instances[name]
        if instance.cycle is None:
            raise RuntimeError(f"strategy {name}: {instance.error or 'did not initialise'}")
        stack.engine.start_strategy(name)


def first_failure(stack: Stack, names: list[str]) -> str | None:
    """Why a phase failed: the first instance that stopped trading (None: all trade)."""
    for name in names:
        why = stopped(stack.engine.instances[name])
        if why is not None:
            return f"{name}: {why}"
    return None


def strategy_flows(folder: Path) -> float:
    """A strategy's net cash flow from its fills (``trades.csv``): sales − purchases − fees."""
    path = folder / "trades.csv"
    if not path.exists():
        return 0.0
    trades = pd.read_csv(path)
    if trades.empty:
        return 0.0
    sign = trades["direction"].map({"sell": 1.0, "buy": -1.0})
    fees = trades["commission"] + trades["stamp_duty"] + trades["transfer_fee"]
    return float((sign * trades["value"] - fees).sum())


def account_records(stack: Stack, spec: SeveralSpec, day: date) -> list[dict[str, Any]]:
    """Every account after the session's close: its equity, cash and positions as its gateway reports them,
    and how they compare with the sum of its strategies' books (positions: the strategies' records; cash, for a
    replay account: its initial cash plus its strategies' net cash flows; an xt account's cash before the run
    is the broker's, not known here: its cash is not compared, ``strategies_cash`` is empty)."""
    from .broker import VnpyBroker

    reported = {a.gateway_name: a for a in stack.main_engine.get_all_accounts()}
    reconciled = stack.engine.reconcile_accounts()
    rows = []
    for account in spec.run.accounts:
        gateway = account.gateway
        data = reported.get(gateway)
        held = {s: v for s, v in VnpyBroker(stack.main_engine, gateway).holdings().items() if v}
        equity = float(data.balance) if data is not None else float("nan")
        cash = float(data.available) if data is not None else float("nan")
        mine = [s.name for s in spec.run.of_account(account.id)]
        books = spec.capital(account.id) + sum(strategy_flows(spec.out / name) for name in mine) \
            if account.kind == "replay" else float("nan")
        rows.append({"date": day.isoformat(), "account": account.id, "gateway": gateway, "equity": round(equity, 2),
                     "cash": round(cash, 2), "market_value": round(equity - cash, 2), "positions": held,
                     "strategies_cash": round(books, 2) if books == books else None,
                     "cash_difference": 0.0 if books != books or abs(cash - books) < CENT else round(cash - books, 2),
                     "position_differences": reconciled.get(gateway, [])})
    return rows


def write_accounts(out: Path, day: date, rows: list[dict[str, Any]]) -> None:
    """``accounts/<day>.json`` (atomic), then ``accounts.csv`` rebuilt from every day's file."""
    folder = Path(out) / ACCOUNTS_FOLDER
    write_atomic(folder / f"{day.isoformat()}.json", rows)
    table = [dict(row) for path in sorted(folder.glob("*.json")) for row in json.loads(path.read_text(encoding="utf-8"))]
    for row in table:
        for key in ("positions", "position_differences"):
            row[key] = json.dumps(row[key], ensure_ascii=False, sort_keys=True)
    pd.DataFrame(table, columns=ACCOUNT_COLUMNS).to_csv(Path(out) / ACCOUNTS_FILE, index=False)


def after_close(stack: Stack, spec: SeveralSpec, names: list[str], day: date,
                output: Callable[[str], None]) -> int:
    """After a session's close: the accounts' records (``accounts.csv``), the session log copied into each
    strategy's folder, one line per account on ``output``. Returns how many accounts differ from their books."""
    rows = account_records(stack, spec, day)
    write_accounts(spec.out, day, rows)
    for name in names:  # each strategy's folder holds the run's session log, as a single run's does
        if (spec.out / SESSIONS_FILE).exists() and (spec.out / name).is_dir():
            shutil.copyfile(spec.out / SESSIONS_FILE, spec.out / name / SESSIONS_FILE)
    differences = 0
    for row in rows:
        wrong = row["cash_difference"] != 0.0 or bool(row["position_differences"])
        differences += wrong
        output(f"{day}  {row['account']:<10} equity {row['equity']:>14,.2f}  cash {row['cash']:>14,.2f}"
               + ("  RECONCILIATION DIFFERS" if wrong else ""))
    return differences


def per_strategy_files(stack: Stack, spec: SeveralSpec) -> None:
    """Each strategy's journal and KPI snapshot in its own folder, after every close."""
    stack.engine.day_closed.append(PerStrategy(spec.out, lambda folder: [
        DayJournal(folder), SessionKpis(folder, stack.engine.notify, stack.engine.write_log, spec.kpi)]))


def run_several_replay(spec: SeveralSpec, output: Callable[[str], None] = print) -> int:
    """Replay ``spec.start … spec.end`` with every configured strategy in its paper account; resumes where a
    previous run in the same ``out`` stopped. Returns the exit code (0: every session closed, every account
    reconciled)."""
    from ...backtest.loader import BENCHMARKS, ensure_bundled
    from ...data.panels import bar_span
    from ...data.store import BarStore
    from ...gateways.replay import ReplayGateway
    from ...strategies import create_strategy

    symbols = sorted({s for line in spec.run.strategies
                      for s in create_strategy(line.strategy, dict(line.settings)).symbols})
    if ensure_bundled(symbols + list(BENCHMARKS), BarStore()):
        output("imported the bundled real data into the database (first run)")
    spec = clip_replay(spec, bar_span(symbols), output)
    state = spec.out / "state"
    gateways = [a.gateway for a in spec.run.accounts]
    stack = Stack(ReplayGateway, state, notifications=False, risk=spec.config.risk, accounts=gateways,
                  allocation=spec.run.allocation())
    differences = 0
    write_strategy_parameters(spec, "replay")
    try:
        per_strategy_files(stack, spec)
        for account in spec.run.accounts:
            gateway = stack.gateways[account.gateway]
            gateway.config = spec.config.model_copy(update={"capital": spec.capital(account.id)})
            stack.main_engine.connect({"初始资金": spec.capital(account.id), "开始日期": str(spec.start or ""),
                                       "结束日期": str(spec.end or ""),
                                       "账本文件": str(state / f"replay_book_{account.gateway}.json")}, account.gateway)
        stack.drain()
        stack.size_risk_rules(max(spec.capital(a.id) for a in spec.run.accounts), output)
        names = add_instances(stack.engine, spec, 0.0)  # limits at the expected price fill as the backtest fills
        start_all(stack, names)
        replays = [stack.gateways[g] for g in gateways]
        sessions = replays[0].sessions()
        log = SessionLog(spec.out)
        schedule = slots([d.date() for d in sessions], replay_phases(SessionTimes()))
        logged = log.around(schedule, lambda: first_failure(stack, names))
        cycles = [stack.engine.instances[n].cycle for n in names]
        for day in sessions:
            today = day.date()
            if min(c.state.last_close for c in cycles) >= today.isoformat():
                log.note_done(close_slot(today, SessionTimes()), "closed before a restart")
                continue
            stack.engine.clock.replay_session(replays, day, logged)
            failure = first_failure(stack, names)
            if failure is not None:
                raise RuntimeError(f"{today}: {failure}")
            differences += after_close(stack, spec, names, today, output)
    finally:
        stack.close()
    return 0 if differences == 0 else 1
