"""The allocation rules: how an account's equity is shared among the strategies bound to it, and when.

Each account is allocated on its own: its strategies share ``equity × (1 − reserve)``, so the sum of an
account's allocations never exceeds its equity. Amounts are rounded down to the cent.

- ``fixed``: each strategy its configured ``amount``; if the account cannot cover them all, every amount
  is scaled down by the same factor (available / asked).
- ``weights``: each strategy its configured ``weight`` of the account's equity.
- ``risk_parity``: shares proportional to 1 / realised volatility (the sample standard deviation of the
  last ``lookback`` daily returns, the inverse-volatility form of risk parity, which ignores correlations;
  Maillard, Roncalli and Teïletche, "The Properties of Equally Weighted Risk Contribution Portfolios",
  Journal of Portfolio Management 36(4), 2010), scaled to ``1 − reserve`` and clipped to each strategy's
  ``[floor, cap]`` with the excess or shortfall spread over the others in the same proportions. A strategy
  with fewer than ``lookback`` returns (or none that vary) takes the mean volatility of those that have
  one; if none has, the shares are equal.

Floors and caps bound the ``weights`` and ``risk_parity`` shares (validated for ``weights``). When every
strategy is at its cap the account is not fully allocated, and its :class:`~.records.AccountLine` says so.

:func:`review` is the scheduled step: it re-allocates when :func:`due` and some share moved by more than
``min_change``, and at once, off schedule, when an account's equity fell below what it has allocated or the
configured strategies changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..canary.config import Stage
from ..canary.machine import CanaryState, share
from .config import AllocationConfig, StrategyAllocation
from .records import AccountLine, AllocationDecision, AllocationLine, Snapshot

TRADING_DAYS = 252  # annualisation of the reported volatility only (the shares do not depend on it)
_EPS = 1e-12


def cents(amount: float) -> float:
    """``amount`` CNY rounded down to the cent (the small nudge keeps 0.29 × 100 from flooring to 28.99)."""
    return math.floor(amount * 100.0 + 1e-6) / 100.0 if amount > 0 else 0.0


def realised_volatility(returns: Sequence[tuple[date, float]], lookback: int, until: date) -> tuple[float, int]:
    """(annualised sample standard deviation of the last ``lookback`` returns dated on or before ``until``,
    how many returns it used); NaN when fewer than ``lookback`` returns are known or they do not vary."""
    known = [r for d, r in returns if d <= until and r == r][-lookback:]
    if len(known) < lookback:
        return math.nan, len(known)
    mean = sum(known) / len(known)
    var = sum((r - mean) ** 2 for r in known) / (len(known) - 1)
    vol = math.sqrt(var) * math.sqrt(TRADING_DAYS)
    return (vol if vol > _EPS else math.nan), len(known)


def clip_to_total(raw: Sequence[float], floors: Sequence[float], caps: Sequence[float], total: float) -> list[float]:
    """Shares ``clip(λ · raw_i, floor_i, cap_i)`` with the λ that makes them sum to ``total`` (bisection: the
    sum is non-decreasing in λ). Every cap binding: the caps (sum below ``total``); the floors' sum at least
    ``total``: the floors."""
    if sum(caps) <= total + _EPS:
        return list(caps)
    if sum(floors) >= total - _EPS:
        return list(floors)

    def shares(lam: float) -> list[float]:
        return [min(max(lam * r, f), c) for r, f, c in zip(raw, floors, caps)]

    lo, hi = 0.0, max(c / r for r, c in zip(raw, caps) if r > 0) if any(r > 0 for r in raw) else 0.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if sum(shares(mid)) < total:
            lo = mid
        else:
            hi = mid
    return shares(hi)


def _risk_parity(config: AllocationConfig, mine: tuple[StrategyAllocation, ...], snapshot: Snapshot,
                 until: date) -> tuple[list[float], list[float], list[str]]:
    measured = [realised_volatility(snapshot.returns.get(s.name, ()), config.lookback, until) for s in mine]
    vols = [v for v, _ in measured]
    known = [v for v in vols if v == v]
    notes = []
    if not known:
        raw = [1.0] * len(mine)
        notes = [f"no volatility over {config.lookback} days ({n} returns): equal shares" for _, n in measured]
    else:
        mean = sum(known) / len(known)
        raw = []
        for v, n in measured:
            if v == v:
                raw.append(1.0 / v)
                notes.append(f"1/vol, vol {v:.2%} over {config.lookback} days")
            else:
                raw.append(1.0 / mean)
                notes.append(f"{n} of {config.lookback} returns: the others' mean vol {mean:.2%}")
    return raw, vols, notes


def _bound_note(w: float, s: StrategyAllocation) -> str:
    if s.cap < 1.0 and abs(w - s.cap) <= 1e-9:
        return f" (capped at {s.cap:g})"
    if s.floor > 0.0 and abs(w - s.floor) <= 1e-9:
        return f" (floor {s.floor:g})"
    return ""


def allocate(config: AllocationConfig, snapshot: Snapshot, now: datetime) -> AllocationDecision:
    """Every configured strategy's allocation at ``now`` by ``config.rule`` (see the module docstring)."""
    lines: list[AllocationLine] = []
    accounts: list[AccountLine] = []
    room_share = 1.0 - config.reserve
    for account in config.accounts:
        mine = config.of_account(account.id)
        state = snapshot.accounts.get(account.id)
        equity = state.equity if state is not None and state.equity == state.equity else 0.0
        if not mine:
            accounts.append(AccountLine(account.id, equity, 0.0, "no strategy bound to it"))
            continue
        if equity <= 0.0:
            why = "no equity reported" if state is None else f"insufficient equity {equity:,.2f} CNY"
            lines += [AllocationLine(s.name, account.id, 0.0, 0.0, why) for s in mine]
            accounts.append(AccountLine(account.id, equity, 0.0, why))
            continue
        room = equity * room_share
        vols = [math.nan] * len(mine)
        note = ""
        if config.rule == "fixed":
            asked = sum(s.amount or 0.0 for s in mine)
            scale = min(1.0, room / asked) if asked > 0 else 1.0
            weights = [(s.amount or 0.0) * scale / equity for s in mine]
            reasons = [f"fixed {s.amount:,.0f} CNY" for s in mine]
            if scale < 1.0:
                note = f"insufficient equity: fixed amounts {asked:,.0f} > {room:,.2f} CNY available"
                reasons = [f"{r} scaled by {scale:.4f} ({note})" for r in reasons]
        elif config.rule == "weights":
            weights = [s.weight or 0.0 for s in mine]
            reasons = [f"weight {w:g}" for w in weights]
        else:
            raw, vols, reasons = _risk_parity(config, mine, snapshot, now.date())
            weights = clip_to_total(raw, [s.floor for s in mine], [s.cap for s in mine], room_share)
            reasons = [f"risk parity: {r}" + _bound_note(w, s) for r, w, s in zip(reasons, weights, mine)]
        amounts = [cents(w * equity) for w in weights]
        for s, w, a, r, v in zip(mine, weights, amounts, reasons, vols):
            lines.append(AllocationLine(s.name, account.id, a, w, r, v))
        total = sum(amounts)
        if not note and total < room - 0.01 * len(mine):
            note = f"{total / equity:.2%} of equity allocated (caps or weights below 1 - reserve)"
        accounts.append(AccountLine(account.id, equity, total, note))
    return AllocationDecision(now, config.rule, tuple(lines), tuple(accounts), "allocated")


def due(config: AllocationConfig, last: datetime | date | None, now: datetime | date) -> bool:
    """Is a review due at ``now`` after the one at ``last``? Yes when a scheduled day lies in
    ``(last, now]`` (by calendar date): daily = any later day; weekly = ISO weekday ``day``; monthly = day
    ``day`` of a month. Never reviewed (``last`` None): yes."""
    if last is None:
        return True
    then = last.date() if isinstance(last, datetime) else last
    today = now.date() if isinstance(now, datetime) else now
    every, day = config.schedule.every, config.schedule.day
    if every == "daily":
        upcoming = then + timedelta(days=1)
    elif every == "weekly":
        upcoming = then + timedelta(days=(day - then.isoweekday()) % 7 or 7)
    else:
        upcoming = then.replace(day=day) if then.day < day else (
            date(then.year + (then.month == 12), then.month % 12 + 1, day))
    return upcoming <= today


def _largest_change(new: AllocationDecision, old: AllocationDecision) -> float:
    before = {x.strategy: x.weight for x in old.lines}
    return max((abs(x.weight - before.get(x.strategy, 0.0)) for x in new.lines), default=0.0)


def review(config: AllocationConfig, snapshot: Snapshot, now: datetime,
           previous: AllocationDecision | None) -> tuple[AllocationDecision, bool]:
    """(the allocation that holds after ``now``, whether it changed). The rules, in order:

    1. no previous allocation, or the configured strategies or their accounts changed: allocate;
    2. an account's equity is below what the previous allocation gives out of it: allocate, off schedule;
    3. not :func:`due`: the previous allocation;
    4. due, and no strategy's share moves by more than ``min_change``: the previous lines, dated ``now``
       (the review happened), with the reason;
    5. otherwise the new allocation.
    """
    if previous is None:
        return _because(allocate(config, snapshot, now), "first allocation"), True
    if {(x.strategy, x.account) for x in previous.lines} != {(s.name, s.account) for s in config.strategies}:
        return _because(allocate(config, snapshot, now), "the configured strategies changed"), True
    for old in previous.accounts:
        state = snapshot.accounts.get(old.account)
        equity = state.equity if state is not None else 0.0
        if old.allocated > equity + 1e-6:
            why = f"account {old.account}: equity {equity:,.2f} < allocated {old.allocated:,.2f} CNY, off schedule"
            return _because(allocate(config, snapshot, now), why), True
    if not due(config, previous.at, now):
        return previous, False
    new = allocate(config, snapshot, now)
    change = _largest_change(new, previous)
    if change <= config.min_change:
        kept = f"kept: largest change {change:.4f} <= min_change {config.min_change:g}"
        return AllocationDecision(now, previous.rule, previous.lines, previous.accounts, kept), False
    return _because(new, f"scheduled ({config.schedule.every}), largest change {change:.4f}"), True


def _because(decision: AllocationDecision, reason: str) -> AllocationDecision:
    return AllocationDecision(decision.at, decision.rule, decision.lines, decision.accounts, reason)


@dataclass(frozen=True)
class CanarySplit:
    """A strategy's allocation during a canary: the candidate's stage ``share`` of it, the champion the rest."""

    champion: float
    candidate: float
    share: float


def canary_split(amount: float, state: CanaryState, stages: tuple[Stage, ...]) -> CanarySplit:
    """Split a strategy's allocation between champion and candidate: the candidate's capital is the stage's
    share × the strategy's capital (:func:`vnpy_rotation.canary.machine.share`, the slice
    :func:`vnpy_rotation.canary.capital.check_slice` checks), rounded down to the cent."""
    part = share(state, stages)
    candidate = cents(amount * part)
    return CanarySplit(amount - candidate, candidate, part)
