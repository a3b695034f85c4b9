"""Plan-level limits: per-position and per-pool concentration caps, a turnover and a cost budget.

They act on a plan's target WEIGHT rows (decision days × symbols, fractions of equity; NaN = no
instruction, keep the holding) before anything is simulated or sent, so the backtest, the replay and the
live stage see the same limited rows. Applied in this order, each on the result of the one before:

1. ``max_position_weight``: each weight above the cap is clipped to it. The excess stays in cash: it is
   not handed to the other names (redistributing would raise weights the strategy chose, and could push
   them over the cap in turn).
2. ``max_pool_weight``: where a pool's weights sum above the cap, its members are scaled pro rata so the
   pool sits at the cap (the rest stays in cash). A member without instruction (NaN) counts at its
   carried target and is not scaled.
3. ``max_turnover`` and ``cost_budget_bps``: the move from the previous row's (limited) targets to the new
   row is scaled by one factor s ≤ 1 so that the row's one-way turnover (the larger of the buys and the
   sells, in fractions of equity) is at most ``max_turnover`` and its estimated fees (buys × buy rate +
   sells × sell rate) at most ``cost_budget_bps`` of equity. The rest of the move waits for the next row.
   The first row moves from cash.

A convex blend of two rows within the caps is within the caps, so step 3 never breaks steps 1-2, and
applying the limits to their own output changes nothing (they are idempotent). Caps only ever lower a
weight; the turnover budget slows both buys and sells (a sale held back leaves a weight above the new
target), so it never raises the turnover of a row, not every weight.

Each cell records the rules that bound it (a bit mask); :func:`reasons` turns them into texts such as
``max_position_weight 10.0%`` that become part of the order reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, model_validator

from ..compiled import jit
from ..config import Frozen

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The rules, in the order they are applied (bit k of a cell's mask = rule k bound it).
RULES = ("max_position_weight", "max_pool_weight", "max_turnover", "cost_budget")
POSITION, POOL, TURNOVER, COST = 1, 2, 4, 8
EPS = 1e-9  # a limit is binding only when exceeded by more than this (so limited rows stay put)


class LimitsConfig(Frozen):
    """Plan-level limits (fractions of equity: 0.10 = 10 %); ``None`` turns a limit off (all off by default).

    ``pools`` maps a symbol to its pool's name for ``max_pool_weight``; symbols not in it belong to no
    pool. ``cost_budget_bps``: the estimated fees of one rebalance, in basis points of equity, from the
    backtest config's commission rates and the stamp duty and transfer fee of the decision day (minimum
    commissions and slippage are not counted: they depend on order sizes and prices the plan does not know).
    """

    max_position_weight: float | None = Field(default=None, gt=0, le=1)
    max_pool_weight: float | None = Field(default=None, gt=0, le=1)
    pools: dict[str, str] = Field(default_factory=dict)
    max_turnover: float | None = Field(default=None, gt=0, le=1)  # one-way, per rebalance
    cost_budget_bps: float | None = Field(default=None, gt=0, le=10_000)

    @model_validator(mode="after")
    def _pools_given(self) -> LimitsConfig:
        if self.max_pool_weight is not None and not self.pools:
            raise ValueError("max_pool_weight needs pools (symbol: pool name)")
        return self

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_position_weight, self.max_pool_weight, self.max_turnover,
                                           self.cost_budget_bps))

    def pool_index(self, symbols: list[str]) -> tuple[IntArray, tuple[str, ...]]:
        """Each symbol's pool number (−1: none) and the pool names, numbered in first-seen order."""
        names = tuple(dict.fromkeys(self.pools.values()))
        number = {name: k for k, name in enumerate(names)}
        return np.array([number.get(self.pools.get(s, ""), -1) for s in symbols], dtype=np.int64), names


@dataclass(frozen=True)
class Limited:
    """The limited rows, and why: ``bound`` (same shape) holds each cell's binding rules as a bit mask of
    :data:`RULES`; ``scale`` the factor the turnover and cost budgets applied to each row's move (1: none)."""

    weights: FloatArray
    bound: npt.NDArray[np.uint8]
    scale: FloatArray


def _off(value: float | None) -> float:
    return np.nan if value is None else float(value)


def limit_weights(weights: FloatArray, config: LimitsConfig, symbols: list[str],
                  buy_rate: FloatArray | None = None, sell_rate: FloatArray | None = None) -> Limited:
    """Apply ``config`` to ``weights`` (rows × symbols, NaN = keep); the input is not modified.

    ``buy_rate``/``sell_rate``: the fee per unit of value bought / sold in each cell (rows × symbols), for
    the cost budget (zero when not given). Rows are taken in order; the first moves from cash.
    """
    w = np.array(weights, dtype=np.float64, copy=True).reshape(len(weights), len(symbols))
    bound = np.zeros(w.shape, dtype=np.uint8)
    scale = np.ones(len(w))
    if not config.active or w.size == 0:
        return Limited(w, bound, scale)
    pool, names = config.pool_index(symbols)
    zeros = np.zeros(w.shape)
    buy = zeros if buy_rate is None else np.asarray(buy_rate, dtype=np.float64)
    sell = zeros if sell_rate is None else np.asarray(sell_rate, dtype=np.float64)
    cost = _off(config.cost_budget_bps) / 1e4
    _limit_rows(w, bound, scale, _off(config.max_position_weight), _off(config.max_pool_weight), pool,
                len(names), _off(config.max_turnover), cost, buy, sell)
    return Limited(w, bound, scale)


@jit()
def _limit_rows(w: FloatArray, bound: npt.NDArray[np.uint8], scale: FloatArray, position_cap: float, pool_cap: float,
                pool: IntArray, pools: int, max_turnover: float, cost_budget: float, buy: FloatArray,
                sell: FloatArray) -> None:
    """The limits row by row, in place. Compiled: the turnover budget makes each row depend on the one
    before (the held targets), which no array expression captures; one pass costs a few ms for 2,500 × 300."""
    n, m = w.shape
    held = np.zeros(m)  # the limited targets in force (NaN cells carry the last instruction)
    sums = np.zeros(pools)
    kept = np.zeros(pools)
    factor = np.ones(pools)
    capped = position_cap == position_cap
    pooled = pool_cap == pool_cap and pools > 0
    for i in range(n):
        row, mask = w[i], bound[i]
        if pooled:
            sums[:] = 0.0
            kept[:] = 0.0
        for j in range(m):  # the position cap, and each pool's sum (a NaN member at its carried target)
            x = row[j]
            if x != x:
                if pooled and pool[j] >= 0:
                    kept[pool[j]] += held[j]
                continue
            if capped and x > position_cap + EPS:
                x = row[j] = position_cap
                mask[j] = POSITION
            if pooled and pool[j] >= 0:
                sums[pool[j]] += x
        if pooled:
            for k in range(pools):
                over = sums[k] + kept[k] > pool_cap + EPS
                factor[k] = max(pool_cap - kept[k], 0.0) / sums[k] if over else 1.0
        buys, sells, fees = 0.0, 0.0, 0.0
        for j in range(m):  # the pool scaling, then the move from the held targets
            x = row[j]
            if x != x:
                continue
            if pooled and pool[j] >= 0 and factor[pool[j]] < 1.0 and x > 0:
                x = row[j] = x * factor[pool[j]]
                mask[j] |= POOL
            move = x - held[j]
            if move > 0:
                buys += move
                fees += move * buy[i, j]
            else:
                sells -= move
                fees -= move * sell[i, j]
        s, rules = 1.0, 0
        turnover = max(buys, sells)
        if max_turnover == max_turnover and turnover > max_turnover + EPS:
            s, rules = max_turnover / turnover, TURNOVER
        if cost_budget == cost_budget and fees > cost_budget + EPS * 1e-4:
            s, rules = min(s, cost_budget / fees), rules | COST
        scale[i] = s
        for j in range(m):
            x = row[j]
            if x != x:
                continue
            if rules and abs(x - held[j]) > EPS:
                x = row[j] = held[j] + s * (x - held[j])
                mask[j] |= rules
            held[j] = x


def reasons(limited: Limited, config: LimitsConfig, symbols: list[str]) -> npt.NDArray[np.object_]:
    """Each cell's binding rules and their values as text (``None`` where none bound), in :data:`RULES`
    order, e.g. ``max_pool_weight bond 30.0%; max_turnover 20.0% (move x0.50)``.

    A text depends only on the cell's rules, its pool (when the pool cap bound) and its row's scale (when a
    budget bound): each distinct one is formatted once and looked up (a budget binding on every row limits
    nearly every cell)."""
    out = np.full(limited.bound.shape, None, dtype=object)
    pool, names = config.pool_index(symbols)
    rows, cols = np.nonzero(limited.bound)
    mask = limited.bound[rows, cols].astype(np.int64)
    width = len(names) + 1  # pool + 1 (0: no pool)
    in_pool = np.where(mask & POOL, pool[cols] + 1, 0)
    budget_row = np.where(mask & (TURNOVER | COST), rows, -1) + 1
    codes, keys = pd.factorize((budget_row * 16 + mask) * width + in_pool)
    texts = np.empty(len(keys), dtype=object)
    for u, key in enumerate(keys.tolist()):
        rest, k = divmod(key, width)
        i, bits = divmod(rest, 16)
        parts = []
        if bits & POSITION:
            parts.append(f"max_position_weight {config.max_position_weight:.1%}")
        if bits & POOL:
            parts.append(f"max_pool_weight {names[k - 1]} {config.max_pool_weight:.1%}")
        if bits & TURNOVER:
            parts.append(f"max_turnover {config.max_turnover:.1%} (move x{limited.scale[i - 1]:.2f})")
        if bits & COST:
            parts.append(f"cost_budget {config.cost_budget_bps:g}bp (move x{limited.scale[i - 1]:.2f})")
        texts[u] = "; ".join(parts)
    out[rows, cols] = texts[codes]
    return out
