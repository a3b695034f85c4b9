"""Part 2 of bench_risk.py: the full daily evaluation of a synthetic 300-symbol book (see bench_risk)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from risk_common import TARGETS, pct  # noqa: F401

# ---------------------------------------------------------------------------- 2. daily evaluation

@dataclasses.dataclass(frozen=True)
class SyntheticBook:
    """Seeded daily data for ``n`` symbols and a book holding all of them."""

    days: Any  # pandas DatetimeIndex
    returns: np.ndarray  # days × symbols
    close: np.ndarray
    volume: np.ndarray
    factor: np.ndarray  # 20-day momentum, NaN for the first 20 rows
    shares: np.ndarray  # the book (fixed: the evaluation, not the execution, is measured)
    entry: np.ndarray
    cash: float
    equity: np.ndarray  # per day
    book_returns: np.ndarray  # per day (NaN on the first)


def synthetic_book(symbols: int, days: int, seed: int = 7) -> SyntheticBook:
    """Returns = beta × market + Student-t(4) noise; the market's variance follows a GARCH(1,1)
    (0.05, 0.90) so that volatility clusters as in daily equity data; volumes are lognormal and rise with
    the absolute return. The book holds every symbol in equal value at the first close; entries are
    the close of a random earlier session, so some positions are well below their entry."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    omega, alpha, beta_g = 1e-4 * 0.05, 0.05, 0.90  # long-run daily variance 1e-4 (1 % a day)
    z = rng.standard_normal(days)
    variance = np.empty(days)
    variance[0] = omega / (1 - alpha - beta_g)
    market = np.empty(days)
    for t in range(days):  # data generation only (GARCH is a recursion); not part of any timing
        market[t] = math.sqrt(variance[t]) * z[t]
        if t + 1 < days:
            variance[t + 1] = omega + alpha * market[t] ** 2 + beta_g * variance[t]
    betas = rng.uniform(0.6, 1.4, symbols)
    noise = rng.standard_t(4, (days, symbols)) * 0.012 / math.sqrt(2.0)  # t(4) has variance 2
    returns = np.clip(market[:, None] * betas[None, :] + noise, -0.095, 0.095)  # ±10 % limits
    close = 10.0 * rng.uniform(0.5, 5.0, symbols) * np.cumprod(1.0 + returns, axis=0)
    volume = np.exp(rng.normal(13.0, 0.5, (days, symbols))) * (1.0 + 20.0 * np.abs(returns))
    factor = np.full((days, symbols), np.nan)
    factor[20:] = close[20:] / close[:-20] - 1.0
    shares = np.floor(1e8 / symbols / close[0] / 100) * 100
    cash = 1e8 - float(shares @ close[0])
    entry = close[rng.integers(0, days // 2, symbols), np.arange(symbols)]
    equity = cash + close @ shares
    book_returns = np.r_[np.nan, equity[1:] / equity[:-1] - 1.0]
    index = pd.bdate_range("2015-01-05", periods=days)
    return SyntheticBook(index, returns, close, volume, factor, shares, entry, cash, equity, book_returns)


def bench_daily(days: int, symbols: int = 300, recalibrate_every: int = 125, seed: int = 7,
                drift_config: Any = None) -> dict[str, Any]:
    """Per session: the ``evaluate()`` facade (stops + ladders on a snapshot), the drift monitors, VaR/ES.

    The total is what the risk app runs after a close. The compiled ``check_close`` + ``ladder_close`` on
    arrays (what the backtest's day loop runs, and what ``evaluate()`` calls inside) is timed as well but
    not added. The drift calibration (seconds: null distributions) belongs to a reference window, not to
    a session: it is timed apart and redone every ``recalibrate_every`` sessions (a session's evaluation
    costs the same with any calibration).
    """
    from datetime import date

    import pandas as pd

    from vnpy_rotation.risk import drift, ladder, stops, var
    from vnpy_rotation.risk.config import DEFAULT_ACCOUNT_LADDER, RiskConfig
    from vnpy_rotation.risk.decision import Snapshot
    from vnpy_rotation.risk.evaluate import RiskState, evaluate

    config = drift_config or drift.DriftConfig()
    var_config = var.VarConfig()
    first = max(config.reference_days + config.recent_days, var_config.window + 1)  # full windows from day one
    book = synthetic_book(symbols, first + days, seed)
    # VQM's rules (stock stop 8 %, portfolio stop 10 %, halving to 50 % at 15 %), the account ladder and a
    # daily loss limit (REDUCING on a day's loss of 5 %), so that every rule of the engine is evaluated
    rules = stops.RiskRules(stock_stop=0.08, portfolio_stop=0.10, drawdown_halve=0.15)
    account = RiskConfig(ladder=DEFAULT_ACCOUNT_LADDER,
                         daily_loss=ladder.LadderConfig(measure="day_return", reduce_at=0.05, cooldown=1))
    risk_args = rules.kernel_args()
    params = ladder.ladder_params([account.ladder, account.daily_loss])
    n = symbols
    names = [f"S{j:03d}.SSE" for j in range(n)]
    stop_state = np.zeros(stops.RISK_STATE)
    keep = np.full(n, np.nan)
    sell_cause = np.zeros(n, dtype=np.int64)
    sell_trigger = np.zeros(n)
    blocked = np.zeros(n, dtype=np.int64)
    lstate = ladder.new_state(len(params))
    shares, entry, cash = book.shares, book.entry, book.cash
    holdings = dict(zip(names, shares.tolist()))
    entries = dict(zip(names, entry.tolist()))

    def compiled(i: int) -> None:
        close = book.close[i]
        stops.check_close(i, cash, shares, close, entry, risk_args, stop_state, keep, sell_cause, sell_trigger,
                          blocked)
        stops.ladder_close(i, cash, shares, close, params, lstate, sell_cause, sell_trigger, True)

    def facade(i: int, state: RiskState) -> tuple[Any, RiskState]:
        """Snapshot built from the session's closes (its cost counted), then evaluate()."""
        now = book.days[i].date()
        snapshot = Snapshot(equity=float(book.equity[i]), peak=float(book.equity[:i + 1].max()), now=now,
                            session=i, holdings=holdings, entry=entries,
                            closes=dict(zip(names, book.close[i].tolist())))
        return evaluate(snapshot, rules, account, state, now)

    def inputs(start: int, stop: int) -> drift.DriftInputs:
        return drift.DriftInputs(returns=book.returns[start:stop], volume=book.volume[start:stop],
                                 factor=book.factor[start:stop])

    returns = pd.Series(book.book_returns, index=book.days)
    first_call = {}
    started = time.perf_counter()
    compiled(first - 1)  # numba: compile, or load the cached machine code
    first_call["check_close + ladder_close"] = time.perf_counter() - started
    started = time.perf_counter()
    facade(first - 1, RiskState())
    first_call["evaluate()"] = time.perf_counter() - started
    stop_state[:] = 0.0
    lstate[:] = ladder.new_state(len(params))

    times: dict[str, list[float]] = {"evaluate()": [], "drift": [], "var_es": [], "compiled": []}
    calibrations: list[float] = []
    calibration = None
    state = RiskState()
    actions: dict[str, int] = {}
    for d in range(days):
        i = first + d
        started = time.perf_counter()
        decision, state = facade(i, state)
        times["evaluate()"].append(time.perf_counter() - started)
        actions[decision.action.name] = actions.get(decision.action.name, 0) + 1
        started = time.perf_counter()
        compiled(i)
        times["compiled"].append(time.perf_counter() - started)
        if d % recalibrate_every == 0:  # the reference window ends before the recent one
            ref_end = i - config.recent_days + 1
            started = time.perf_counter()
            calibration = drift.calibrate(inputs(ref_end - config.reference_days, ref_end), config)
            calibrations.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = drift.evaluate(calibration, inputs(i - config.recent_days + 1, i + 1))
        times["drift"].append(time.perf_counter() - started)
        started = time.perf_counter()
        forecast = var.var_es_next(returns.iloc[i - var_config.window + 1:i + 1], var_config)
        times["var_es"].append(time.perf_counter() - started)
    assert len(forecast) == len(var_config.methods) * len(var_config.levels) and math.isfinite(forecast[0].var)
    assert state.evaluated == book.days[first + days - 1].date() and isinstance(state.evaluated, date)
    ms = {part: np.asarray(v) * 1e3 for part, v in times.items()}
    ms["total"] = ms["evaluate()"] + ms["drift"] + ms["var_es"]
    return {"days": days, "symbols": symbols, "first_call_s": first_call,
            "parts": {part: (pct(v, 50), pct(v, 99)) for part, v in ms.items()},
            "calibrate_ms": (pct(np.asarray(calibrations) * 1e3, 50), len(calibrations), recalibrate_every),
            "monitors": [r.monitor for r in report.results if r.available],
            "unavailable": [r.monitor for r in report.results if not r.available],
            "var_methods": len(var_config.methods) * len(var_config.levels), "actions": actions}


def report_daily(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    print(f"\n== daily evaluation: {r['symbols']} symbols, {r['days']} sessions of seeded synthetic data")
    what = {"evaluate()": f"Snapshot of {r['symbols']} holdings + evaluate(): 3 stop rules, account ladder, "
                          "daily loss limit",
            "drift": f"drift.evaluate: {len(r['monitors'])} monitors on 20 × {r['symbols']} rows",
            "var_es": f"var_es_next: {r['var_methods']} (method, level) on 250 returns",
            "total": "evaluate() + drift + var_es, per session",
            "compiled": "check_close + ladder_close on arrays (the backtest loop's; inside evaluate(), not added)"}
    for part in ("evaluate()", "drift", "var_es", "total", "compiled"):
        p50, p99 = r["parts"][part]
        print(f"   {part:11s} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms   {what[part]}")
    cal50, count, every = r["calibrate_ms"]
    first_text = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in r["first_call_s"].items())
    print(f"   drift calibration (every {every} sessions here, {count} in the run): median {cal50:.0f} ms; "
          f"first calls (numba compile or cache load): {first_text}")
    print(f"   monitors evaluated: {', '.join(r['monitors'])}; unavailable: {', '.join(r['unavailable']) or '-'} "
          f"(no ticks in daily data); decisions: {r['actions']}")
    rows = []
    for part in ("evaluate()", "drift", "var_es", "total", "compiled"):
        p50, p99 = r["parts"][part]
        value = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms" if part != "compiled" else \
            f"p50 {p50 * 1e3:.0f} µs, p99 {p99 * 1e3:.0f} µs"
        if part == "total":
            rows.append((f"**daily evaluation, {r['symbols']} symbols: total** (target < {TARGETS['daily_ms']:.0f} ms)", f"**{value}**",
                         what[part]))
        else:
            rows.append((f"daily evaluation, {r['symbols']} symbols: {part}", value, what[part]))
    rows.append(("drift calibration (apart)", f"{cal50:.0f} ms per reference window",
                 "null distributions (1000 draws) on 500 × 300 rows; once per reference window"))
    rows.append(("first calls (apart)", first_text, "numba compile or cache load; once per process"))
    return rows
