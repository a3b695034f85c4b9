"""Can a stage's slice of capital hold the candidate's portfolio? Whole lots, minimum commission, ADV caps.

A 5 % slice of a small account may not buy one lot of a high-priced stock. For every symbol the candidate
targets, :func:`check_slice` sizes the order at the stage's capital and says, with the rule, whether it can
be bought:

- **lots**: buys are whole lots (100 shares/units on SSE and SZSE main boards and funds: 上海证券交易所交易规则
  and 深圳证券交易所交易规则, 2023 revisions; STAR at least 200 shares then steps of 1: 上海证券交易所科创板
  股票交易特别规定; the per-instrument values live in ``market/instruments.yaml``). The target is rounded
  DOWN to whole lots (never spending more than the target); when that leaves zero, one lot is bought if it
  costs at most ``target × (1 + lot_tolerance)``, else the symbol is skipped ("one lot 30,150 CNY > target
  5,000 CNY"). Round-ups that together would spend more than the stage's capital are dropped, largest
  overshoot first.
- **minimum commission**: commission is ``max(value × rate, minimum)`` per order. The 5 CNY minimum is broker
  practice written into each client's contract, not an exchange rule (it dates from the 2002 notice of the
  CSRC, the State Development Planning Commission and the State Administration of Taxation,
  关于调整证券交易佣金收取标准的通知; brokers now set it freely and many waive it, "免五", often for ETFs),
  so rate and minimum are inputs. An order whose commission exceeds ``max_commission_bp`` of its value is
  flagged (still feasible: the cost is known, the operator decides).
- **ADV cap**: one order takes at most ``participation`` of the symbol's average daily traded value (CNY),
  as the backtester's participation cap does for a day's volume; capped below one lot, it is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from ..config import Frozen
from ..market.instruments import whole_lots
from .evidence import BP


class SliceRules(Frozen):
    """How a stage's slice is sized (see the module docstring for the rules and their sources)."""

    lot_tolerance: float = Field(default=0.10, ge=0.0, le=1.0)
    """Buy one lot when the target rounds to zero lots and one lot costs at most target × (1 + this)."""
    max_commission_bp: float = Field(default=10.0, gt=0.0)
    """Flag an order whose commission (the minimum included) exceeds this many bp of its value."""
    participation: float = Field(default=0.10, gt=0.0, le=1.0)
    """Largest share of the symbol's average daily traded value one order may take."""


@dataclass(frozen=True)
class SliceCheck:
    """One symbol at the stage's capital: what it should hold, what one lot costs, and whether it can.

    ``volume``/``order_value``: the whole-lot order (0 when not feasible); ``commission_bp``: its commission
    in bp of its value; ``commission_flag``: above ``max_commission_bp``; ``adv_capped``: the ADV cap cut it.
    ``reason`` states the rule that decided (empty when the target was simply rounded down to lots).
    """

    symbol: str
    target_value: float
    one_lot_value: float
    feasible: bool
    reason: str
    volume: int = 0
    order_value: float = 0.0
    commission_bp: float = 0.0
    commission_flag: bool = False
    adv_capped: bool = False
    rounded_up: bool = False


def commission(value: float, rate: float, minimum: float) -> float:
    """The broker's commission on one order of ``value`` CNY: ``max(value × rate, minimum)``."""
    return max(value * rate, minimum)


def _one(symbol: str, target: float, price: float | None, lot: int | None, step: int | None,
         adv: float | None, rate: float, minimum: float, rules: SliceRules) -> SliceCheck:
    if price is None or not price > 0.0:
        return SliceCheck(symbol, target, 0.0, False, "no price to size the order")
    if lot is None or lot <= 0:
        return SliceCheck(symbol, target, 0.0, False, "no lot size known (add the instrument to the table)")
    one_lot = lot * price
    if adv is None or not adv > 0.0:
        return SliceCheck(symbol, target, one_lot, False, "no average daily traded value (ADV) to cap the order")
    cap = rules.participation * adv
    allowed = min(target, cap)
    capped = cap < target
    if one_lot > target * (1.0 + rules.lot_tolerance):
        return SliceCheck(symbol, target, one_lot, False,
                          f"one lot {one_lot:,.0f} CNY > target {target:,.0f} CNY"
                          + (f" (+{rules.lot_tolerance:.0%} tolerance)" if rules.lot_tolerance else ""),
                          adv_capped=capped)
    if one_lot > cap:
        return SliceCheck(symbol, target, one_lot, False,
                          f"one lot {one_lot:,.0f} CNY > {rules.participation:.0%} of ADV {adv:,.0f} CNY",
                          adv_capped=True)
    # the relative nudge keeps 5,000 / 50 from flooring to 99.999... shares (99 is below a lot)
    volume = whole_lots(allowed / price * (1.0 + 1e-12), lot, step or lot)
    rounded_up = volume == 0
    reasons = []
    if rounded_up:
        volume = lot
        reasons.append(f"rounded up to one lot {one_lot:,.0f} CNY (target {target:,.0f} CNY)")
    if capped:
        reasons.append(f"capped at {rules.participation:.0%} of ADV {adv:,.0f} CNY")
    value = volume * price
    bp = commission(value, rate, minimum) / value * BP
    flag = bp > rules.max_commission_bp
    if flag:
        reasons.append(f"commission {commission(value, rate, minimum):.2f} CNY = {bp:.1f} bp of "
                       f"{value:,.0f} CNY > {rules.max_commission_bp:g} bp")
    return SliceCheck(symbol, target, one_lot, True, "; ".join(reasons), volume, value, bp, flag, capped, rounded_up)


def check_slice(weights: Mapping[str, float], prices: Mapping[str, float], lots: Mapping[str, int],
                capital: float, *, commission_rate: float, commission_min: float, adv: Mapping[str, float],
                rules: SliceRules | None = None, lot_steps: Mapping[str, int] | None = None,
                ) -> tuple[SliceCheck, ...]:
    """One :class:`SliceCheck` per symbol with a positive target weight, in the order of ``weights``.

    ``weights``: the candidate's target weights (fractions of the stage's capital, long only); ``prices``:
    the reference price per share/unit (CNY); ``lots``: the minimum buy quantity; ``lot_steps``: the step
    above it (default: the lot); ``capital``: the stage's capital in CNY (share × the strategy's capital);
    ``adv``: average daily traded value per symbol, CNY.
    """
    rules = rules or SliceRules()
    if not capital >= 0.0:
        raise ValueError(f"capital: must be >= 0 CNY, got {capital}")
    negative = [s for s, w in weights.items() if w < 0.0]
    if negative:
        raise ValueError(f"weights: A-share slices are long only, negative weights for {negative}")
    steps = lot_steps or {}
    checks = [_one(s, w * capital, prices.get(s), lots.get(s), steps.get(s), adv.get(s),
                   commission_rate, commission_min, rules)
              for s, w in weights.items() if w > 0.0]
    # round-ups spend beyond their targets: drop them, largest overshoot first, until the slice fits
    spent = sum(c.order_value for c in checks)
    ups = sorted((i for i, c in enumerate(checks) if c.rounded_up),
                 key=lambda i: checks[i].target_value - checks[i].order_value)
    for i in ups:
        if spent <= capital + 1e-6:
            break
        c = checks[i]
        spent -= c.order_value
        checks[i] = SliceCheck(c.symbol, c.target_value, c.one_lot_value, False,
                               f"one lot {c.one_lot_value:,.0f} CNY > target {c.target_value:,.0f} CNY and the "
                               f"slice's capital {capital:,.0f} CNY has no room for the round-up",
                               adv_capped=c.adv_capped)
    return tuple(checks)
