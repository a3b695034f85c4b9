"""Trouble a live account meets, injected into the paper book on purpose: extra slippage, rejections, partial fills.

The replay book fills through the backtester's matcher, so a replay equals its backtest and the canary's
tracking, slippage and fill-rate gates could never trip on it. :class:`Trouble` describes measured,
deterministic damage (no randomness: a drill is reproducible) that :class:`~vnpy_rotation.live.replay_book.ReplayBook`
applies on top of the matcher's undisturbed fill; without it the book is unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..backtest import kernel
from ..backtest.matching import SymbolTerms, valid_buy, valid_sell
from ..config import Frozen, read_yaml, validate_section
from ..errors import InputRejected, Problem

SETTING = "故障注入"  # the replay gateway's connect-setting key holding a Trouble as a JSON object

# Reasons a disturbed order carries in the book (beside the matcher's own).
REJECTED_BY_TROUBLE = "trouble_reject"  # the N-th order: refused by the "broker"
SLIPPED = "trouble_slippage"  # filled at a worse price than the matcher's
LIMIT_CROSSED = "trouble_limit"  # the slipped price is beyond the order's limit: it rests unfilled
PARTIAL = "trouble_partial"  # only fill_ratio of it filled; the rest rests until cancelled


class Trouble(Frozen):
    """What goes wrong, for which sessions and symbols. Every knob at its default does nothing."""

    start: date | None = None  # first session it applies to (None: from the first)
    end: date | None = None  # last session it applies to (None: to the last)
    extra_slippage_bps: float = Field(default=0.0, ge=0, le=1000)  # fills this much worse than the matcher's price
    reject_every: int = Field(default=0, ge=0)  # every N-th covered order is rejected (0: none)
    fill_ratio: float = Field(default=1.0, gt=0, le=1)  # share of each covered order that fills (whole lots)
    symbols: tuple[str, ...] = ()  # vt_symbols it applies to (empty: all)

    @model_validator(mode="after")
    def _window(self) -> Trouble:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def covers(self, day: str, symbol: str) -> bool:
        """Whether an order for ``symbol`` on session ``day`` (ISO) is disturbed."""
        if self.start is not None and day < self.start.isoformat():
            return False
        if self.end is not None and day > self.end.isoformat():
            return False
        return not self.symbols or symbol in self.symbols

    def rejects(self, count: int) -> bool:
        """Whether the ``count``-th covered order (1-based, counted from ``start``) is rejected."""
        return self.reject_every > 0 and count % self.reject_every == 0


@dataclass(frozen=True)
class Disturbed:
    """The matcher's fill after trouble: ``resting`` means the unfilled rest stays working."""

    volume: float
    price: float
    resting: bool
    reasons: tuple[str, ...]


def disturb(trouble: Trouble, buy: bool, volume: float, price: float, limit: float, terms: SymbolTerms,
            limit_up: float, limit_down: float, held: float, lots: bool) -> Disturbed:
    """Worsen the matcher's fill of ``volume`` shares at ``price`` (> 0 shares) for an order limited at ``limit``.

    The slipped price goes through the matcher's own slippage rule (:func:`~vnpy_rotation.backtest.kernel.slipped`:
    on the tick grid, inside the day's limit prices); if it is beyond the order's limit the order rests unfilled,
    as a limit order does on an exchange. Then only ``fill_ratio`` of the volume fills, rounded down to what the
    lot rules accept, and the rest rests."""
    reasons: list[str] = []
    slipped = kernel.slipped(price, buy, True, trouble.extra_slippage_bps, terms.tick, limit_up, limit_down)
    if slipped != price:
        reasons.append(SLIPPED)
    if (slipped > limit + 1e-9) if buy else (slipped < limit - 1e-9):
        return Disturbed(0.0, math.nan, True, (*reasons, LIMIT_CROSSED))
    filled = volume
    if trouble.fill_ratio < 1:
        share = volume * trouble.fill_ratio
        if lots:
            filled = valid_buy(share, terms) if buy else valid_sell(share, held, terms)
        else:
            filled = float(math.floor(share + 1e-9))
        reasons.append(PARTIAL)
    return Disturbed(float(filled), float(slipped) if filled > 0 else math.nan, filled < volume, tuple(reasons))


def trouble_from_setting(text: object, source: str = SETTING) -> Trouble | None:
    """The Trouble in a connect setting's JSON object text ("": none); a mistake names ``source`` and the field."""
    if text is None or str(text).strip() == "":
        return None
    try:
        raw: Any = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise InputRejected(Problem(source, None, f"not a JSON object: {exc.msg}")) from None
    if not isinstance(raw, dict):
        raise InputRejected(Problem(source, None, "expected a JSON object, e.g. {\"reject_every\": 2}"))
    return validate_section(Trouble, raw, source)


def read_trouble(path: Path) -> Trouble:
    """A Trouble from a YAML (or JSON) file; a mistake names the file and the field."""
    return validate_section(Trouble, read_yaml(path), str(path))
