"""What a risk rule decides about a book, and how several decisions combine.

A rule is a function of a :class:`Snapshot` (and its own state) returning a :class:`RiskDecision`: an
:class:`Action` for the whole book, the fraction plan rows are scaled to, the symbols it sells in full,
and why. :func:`combine` merges the decisions of every rule evaluated, in the configured order: the most
restrictive action wins, every binding rule's reason is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum


class Action(IntEnum):
    """What a book may do, ordered by restrictiveness (a larger value restricts more)."""

    PASS = 0  # trade as planned
    SCALE = 1  # plan rows that start now are scaled to ``fraction``
    REDUCE_ONLY = 2  # sells only (long-only A-shares); rows that start are scaled to ``fraction``
    FLATTEN = 3  # sell everything (retried through limit-down days, suspensions and T+1 locks)
    FREEZE = 4  # send nothing at all


@dataclass(frozen=True)
class RiskDecision:
    """One decision about a book.

    ``action`` concerns the whole book; ``fraction`` (0-1) scales the plan rows that start under SCALE or
    REDUCE_ONLY (0 under FLATTEN, 1 otherwise). ``flatten``: symbols sold in full whatever the book's action
    (a stock stop flattens its symbol, not the book). ``reasons`` and ``rules`` (the binding rules' names)
    are aligned, in the order the rules were evaluated.
    """

    action: Action = Action.PASS
    fraction: float = 1.0
    reasons: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    flatten: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction {self.fraction} is not within 0-1")
        if len(self.reasons) != len(self.rules):
            raise ValueError("reasons and rules must be aligned")

    @property
    def binding(self) -> bool:
        """Whether any rule bound (the book is restricted or a symbol is sold)."""
        return self.action != Action.PASS or bool(self.flatten)


PASS = RiskDecision()


def combine(decisions: Iterable[RiskDecision]) -> RiskDecision:
    """The decisions of several rules, given in the configured order, as one: the most restrictive action;
    the smallest fraction among the scaling ones (SCALE, REDUCE_ONLY, FLATTEN at 0); every symbol to
    flatten (first-seen order) and every reason, in order."""
    action, fraction = Action.PASS, 1.0
    reasons: list[str] = []
    rules: list[str] = []
    flatten: dict[str, None] = {}
    for decision in decisions:
        action = max(action, decision.action)
        if decision.action in (Action.SCALE, Action.REDUCE_ONLY, Action.FLATTEN):
            fraction = min(fraction, decision.fraction)
        reasons.extend(decision.reasons)
        rules.extend(decision.rules)
        flatten.update(dict.fromkeys(decision.flatten))
    if action == Action.FREEZE:
        fraction = 1.0  # nothing starts and nothing is sold: there is no row to scale
    return RiskDecision(action, fraction, tuple(reasons), tuple(rules), tuple(flatten))


@dataclass(frozen=True)
class Snapshot:
    """A book at one close, as every rule reads it.

    ``holdings``: shares per symbol; ``entry``: each holding's average entry price (the volume-weighted
    average fill price of the current position); ``closes``: the session's closes (a symbol without one is
    valued at nothing new: carry the last close forward before building the snapshot). ``equity`` is cash
    plus holdings at the closes; ``peak`` the caller's record of its highest equity (for reports: each rule
    keeps its own peak in its state). ``session``: the close's index in the trading calendar (cool-downs
    are counted in sessions).
    """

    equity: float
    peak: float
    now: date
    session: int
    holdings: Mapping[str, float] = field(default_factory=dict)
    entry: Mapping[str, float] = field(default_factory=dict)
    closes: Mapping[str, float] = field(default_factory=dict)
