"""The ``allocation:`` section: accounts, the strategies bound to them, the rule that shares each account's
equity among its strategies, and when the shares are reviewed.

Validated once, at the edge, into frozen models; an error names ``file:line`` of the offending field
(:func:`read_allocation_config`). The rules themselves are in :mod:`vnpy_rotation.allocation.rules`.

Example::

    allocation:
      accounts:
        - {id: main, gateway: XT, kind: xt}
        - {id: paper, gateway: REPLAY, kind: replay}
      strategies:
        - {name: etf_rotation, account: main, weight: 0.5, floor: 0.2, cap: 0.7}
        - {name: vqm, account: main, weight: 0.3}
        - {name: etf_paper, account: paper, amount: 100000}
      rule: weights            # fixed | weights | risk_parity
      lookback: 60             # risk_parity: trading days of realised daily returns
      reserve: 0.05            # share of every account's equity kept unallocated (cash buffer)
      schedule: {every: weekly, day: 1}
      min_change: 0.02
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import Frozen, read_yaml, validate_at

RULES = ("fixed", "weights", "risk_parity")


class AccountConfig(Frozen):
    """One trading account: its id, the vnpy gateway name it trades through, and what kind of account it is."""

    id: str = Field(min_length=1)
    gateway: str = Field(min_length=1)
    """The vnpy gateway name (``XT``, or a per-account name such as ``XT_2`` when one process runs several)."""
    kind: Literal["xt", "replay"]


class StrategyAllocation(Frozen):
    """One strategy instance, the account it trades, and the inputs the rule reads.

    ``amount``: CNY (rule ``fixed``); ``weight``: share of the account's equity (rule ``weights``);
    ``floor``/``cap``: bounds on the share of the account's equity (rules ``weights`` and ``risk_parity``).
    """

    name: str = Field(min_length=1)
    account: str = Field(min_length=1)
    amount: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    weight: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    floor: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    cap: float = Field(default=1.0, ge=0.0, le=1.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounds(self) -> StrategyAllocation:
        if self.floor > self.cap:
            raise ValueError(f"floor {self.floor} is above cap {self.cap}")
        return self


class Schedule(Frozen):
    """When allocations are reviewed: every session (``daily``), on ISO weekday ``day`` (1 = Monday … 5 =
    Friday, ``weekly``) or on day ``day`` of the month (1–28, ``monthly``). A scheduled day that is not a
    session (a holiday, a weekend) is reviewed at the first run after it."""

    every: Literal["daily", "weekly", "monthly"] = "weekly"
    day: int = Field(default=1, ge=1, le=28)

    @model_validator(mode="after")
    def _day(self) -> Schedule:
        if self.every == "weekly" and self.day > 5:
            raise ValueError(f"day: a weekly schedule takes a weekday 1 (Monday) … 5 (Friday), got {self.day}")
        return self


class AllocationConfig(Frozen):
    """The whole ``allocation:`` section (see the module docstring)."""

    accounts: tuple[AccountConfig, ...] = Field(min_length=1)
    strategies: tuple[StrategyAllocation, ...] = Field(min_length=1)
    rule: Literal["fixed", "weights", "risk_parity"] = "weights"
    lookback: int = Field(default=60, ge=2, le=1000)
    """risk_parity: the realised volatility is the sample standard deviation of the last ``lookback`` daily returns."""
    reserve: float = Field(default=0.0, ge=0.0, lt=1.0, allow_inf_nan=False)
    """Share of every account's equity that is never allocated (a cash buffer for fees and rounding)."""
    schedule: Schedule = Schedule()
    min_change: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """A scheduled review re-allocates only if some strategy's share of its account's equity moves by more."""

    @model_validator(mode="after")
    def _consistent(self) -> AllocationConfig:
        ids = [a.id for a in self.accounts]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"accounts: ids must be unique, repeated {repeated}")
        names = [s.name for s in self.strategies]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"strategies: names must be unique, repeated {repeated}")
        for k, s in enumerate(self.strategies):
            if s.account not in ids:
                raise ValueError(f"strategies.{k}.account: unknown account '{s.account}', the accounts are {ids}")
        need = {"fixed": "amount", "weights": "weight"}.get(self.rule)
        if need:
            missing = [s.name for s in self.strategies if getattr(s, need) is None]
            if missing:
                raise ValueError(f"strategies: rule {self.rule} needs '{need}' for {missing}")
        for k, s in enumerate(self.strategies):
            if self.rule == "fixed" and (s.floor > 0.0 or s.cap < 1.0):
                raise ValueError(f"strategies.{k}.{'floor' if s.floor > 0.0 else 'cap'}: rule fixed takes amounts, "
                                 "floors and caps bound the weights and risk_parity shares")
        room = 1.0 - self.reserve
        for account in ids:
            mine = [s for s in self.strategies if s.account == account]
            floors = sum(s.floor for s in mine)
            if floors > room + 1e-12:
                raise ValueError(f"strategies: floors of account {account} sum to {floors:g} > 1 - reserve {room:g}")
            if self.rule == "weights":
                total = sum(s.weight or 0.0 for s in mine)
                if total > room + 1e-12:
                    raise ValueError(f"strategies: weights of account {account} sum to {total:g} > 1 - reserve {room:g}")
                outside = [s.name for s in mine if not s.floor <= (s.weight or 0.0) <= s.cap]
                if outside:
                    raise ValueError(f"strategies: weight outside [floor, cap] for {outside}")
        return self

    def account(self, account_id: str) -> AccountConfig:
        return next(a for a in self.accounts if a.id == account_id)

    def of_account(self, account_id: str) -> tuple[StrategyAllocation, ...]:
        """The strategies bound to ``account_id``, in configuration order."""
        return tuple(s for s in self.strategies if s.account == account_id)


def allocation_config(raw: Any, source: str, text: str = "", prefix: tuple[Any, ...] = ()) -> AllocationConfig:
    """Validate an ``allocation:`` mapping; errors name ``source`` (and the line, when ``text`` is the YAML it
    was read from) and the field."""
    return validate_at(AllocationConfig, raw, source, text, prefix)


def read_allocation_config(path: Path) -> AllocationConfig:
    """The ``allocation:`` section of a YAML file; errors name ``file:line`` and the field."""
    raw = read_yaml(path)
    text = Path(path).read_text(encoding="utf-8")
    return allocation_config(raw.get("allocation"), str(path), text, ("allocation",))


class StrategyRun(StrategyAllocation):
    """One strategy instance of a several-strategy run: its allocation line plus what it runs, ``strategy``
    (a built-in name or class name) with its ``settings``. The top-level ``strategies:`` of a several-account
    configuration (see :func:`run_config`)."""

    strategy: str = Field(min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)


class RunConfig(AllocationConfig):
    """Several strategies across several accounts in one daemon: the top-level ``accounts:`` and
    ``strategies:`` of a configuration file, with the ``allocation:`` section's rule, schedule and bounds.
    Every check of :class:`AllocationConfig` applies (an unknown account, a strategy listed twice, e.g. on two
    accounts, …)."""

    strategies: tuple[StrategyRun, ...] = Field(min_length=1)

    def allocation(self) -> AllocationConfig:
        """The allocation part, as the risk engine and the sizing read it."""
        return AllocationConfig.model_validate(
            {**self.model_dump(exclude={"strategies"}),
             "strategies": [s.model_dump(exclude={"strategy", "settings"}) for s in self.strategies]})


def run_config(raw: dict[str, Any], source: str, text: str = "") -> RunConfig:
    """The several-strategy shape of a configuration file (top-level ``accounts:`` and ``strategies:``,
    ``allocation:`` holding only the rule's fields); errors name ``file:line`` and the field."""
    rules = raw.get("allocation") or {}
    if not isinstance(rules, dict):
        return validate_at(RunConfig, rules, source, text, ("allocation",))
    return validate_at(RunConfig, {**rules, "accounts": raw.get("accounts"), "strategies": raw.get("strategies")},
                       source, text)


def shared_symbols(config: RunConfig, symbols: dict[str, tuple[str, ...]]) -> list[tuple[int, str, tuple[str, ...]]]:
    """Strategies of one account that trade a common symbol (``symbols[name]``: each strategy's symbols):
    ``(index of the later strategy, the earlier one's name, the common symbols)``. Strategies sharing an
    account must trade different symbols (each sees only the holdings of its own symbols)."""
    out = []
    for k, run in enumerate(config.strategies):
        for earlier in config.strategies[:k]:
            if earlier.account == run.account:
                common = tuple(sorted(set(symbols.get(run.name, ())) & set(symbols.get(earlier.name, ()))))
                if common:
                    out.append((k, earlier.name, common))
    return out
