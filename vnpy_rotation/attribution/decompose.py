"""Daily P&L per symbol split into holdings, implementation shortfall, fees, distributions and a residual.

For symbol i on day t with end-of-day holdings h_t, the previous close on day t's share basis
P̃ = close_{t−1} / split_t, and fills q_k at price f_k on a day whose undisturbed fill price is b_t:

    P&L = h_t·(close_t − P̃)            holdings: as if the day's trades had filled at the decision close
        − Σ q_k·(b_t − P̃)              delay: decision close → open (or VWAP)
        − Σ q_k·(f_k − b_t)            execution: open (or VWAP) → fill, i.e. slippage
        − commission − stamp_duty − transfer_fee
        + dividend cash
        + (h′ − s·h_{t−1})·P̃           corporate_action: shares lost to rounding a split (h′ the shares after it)
        + residual

Every line is a contribution (what it adds to the P&L; a cost is negative). The identity is exact when
the book's holdings and cash follow these fills; the residual holds what does not (rounding to the fen,
a broker's different split arithmetic, cash flows the inputs do not carry).

The paper bridge: an order refused or reduced leaves u signed shares unbought or unsold; the intended
portfolio would have made u·(close_t − P̃) more that day (horizon: the decision close → the close of the
day it was refused). paper holdings P&L = holdings P&L + opportunity. It does not add to the actual P&L.
A refusal for a suspension is different: the close is carried over the suspension, so the day's move is 0
and the price gap shows only when trading resumes. The last refusal of a run of suspended days (no
suspended refusal of the same symbol and side the next day) is measured to the first tradable price after
it, the resumption day's open (or VWAP) on the refusal day's share basis: u·(b_resume − P̃). The actual
resumption-day fill still books that gap in ``delay``; the bridge says the suspension, not the order timing,
caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .records import FEE_KINDS, AttributionInput, FloatArray, IntArray

ACTUAL = ("holdings", "delay", "execution", *FEE_KINDS, "dividends", "corporate_action", "residual")


@dataclass(frozen=True)
class Cells:
    """A days × symbols grid that is zero but at a few cells (refusals are rare): each cell's flat position
    (day × symbols + symbol, ascending, once) and its value."""

    flat: IntArray
    value: FloatArray
    shape: tuple[int, int]

    @classmethod
    def summed(cls, day: IntArray, symbol: IntArray, value: FloatArray, shape: tuple[int, int]) -> Cells:
        """``np.add.at`` into a zero grid, without the grid: the values of a cell added in the order given."""
        cells, inverse = np.unique(day * shape[1] + symbol, return_inverse=True)
        sums = np.bincount(inverse.reshape(-1), weights=value, minlength=len(cells)).astype(np.float64, copy=False)
        return cls(cells.astype(np.int64), sums, shape)

    def at(self, flat: IntArray) -> FloatArray:
        """The values at flat positions (0 where no cell)."""
        where = np.searchsorted(self.flat, flat)
        found = where < len(self.flat)
        found[found] = self.flat[where[found]] == flat[found]
        out = np.zeros(len(flat))
        out[found] = self.value[where[found]]
        return out

    def dense(self) -> FloatArray:
        grid = np.zeros(self.shape)
        grid.reshape(-1)[self.flat] = self.value
        return grid

    def sum(self) -> float:
        return float(self.value.sum())


@dataclass(frozen=True)
class Decomposition:
    """``components``: name → days × symbols CNY (the ACTUAL lines, summing to ``pnl``);
    ``opportunity``: refusal reason → its cells of the days × symbols grid, CNY (the paper bridge)."""

    components: dict[str, FloatArray]
    pnl: FloatArray  # days × symbols: the actual P&L (the residual's last column holds the unassigned cash)
    opportunity: dict[str, Cells]
    prev_ref: FloatArray  # P̃: the previous close on each day's share basis
    cash_residual: FloatArray  # (days,) equity change not carried by any symbol


def previous_reference(data: AttributionInput) -> FloatArray:
    """P̃ = close_{t−1} / split_t: yesterday's close on today's share basis (a 2-for-1 split halves it)."""
    bars = data.bars
    prev = np.vstack([bars.prev_close[None, :], bars.close[:-1]])
    return np.asarray(prev / bars.split, dtype=np.float64)


def _per_day(data: AttributionInput, values: FloatArray) -> FloatArray:
    """Sum per-fill values into days × symbols."""
    out = np.zeros_like(data.holdings)
    np.add.at(out, (data.fills.day, data.fills.symbol), values)
    return out


def decompose(data: AttributionInput) -> Decomposition:
    bars, fills = data.bars, data.fills
    ref = previous_reference(data)
    held_before = np.vstack([data.start_holdings[None, :], data.holdings[:-1]])
    close_prev = np.vstack([bars.prev_close[None, :], bars.close[:-1]])
    # The kernel and brokers drop the fraction of a share a split leaves (no cash in lieu).
    after_split = np.where(bars.split != 1.0, np.floor(held_before * bars.split + 1e-9), held_before)
    with np.errstate(invalid="ignore"):
        holdings = np.nan_to_num(data.holdings * (bars.close - ref))
        corporate = np.nan_to_num(after_split * ref - held_before * close_prev)
    day_ref = ref[fills.day, fills.symbol]
    day_basis = bars.basis[fills.day, fills.symbol]
    components = {
        "holdings": holdings,
        "delay": -_per_day(data, fills.quantity * (day_basis - day_ref)),
        "execution": -_per_day(data, fills.quantity * (fills.price - day_basis)),
        "commission": -_per_day(data, fills.commission),
        "stamp_duty": -_per_day(data, fills.stamp_duty),
        "transfer_fee": -_per_day(data, fills.transfer_fee),
        "dividends": data.dividend_cash.astype(np.float64),
        "corporate_action": corporate,
    }
    # The actual P&L per symbol from the book: value change plus the symbol's cash flows.
    flows = (-_per_day(data, fills.quantity * fills.price) + components["commission"] + components["stamp_duty"]
             + components["transfer_fee"] + components["dividends"])
    with np.errstate(invalid="ignore"):
        pnl = np.nan_to_num(data.holdings * bars.close - held_before * close_prev) + flows
    explained = sum(components.values())
    components["residual"] = pnl - explained
    equity_prev = np.concatenate([[data.start_equity], data.equity[:-1]])
    cash_residual = (data.equity - equity_prev) - pnl.sum(axis=1)
    opportunity: dict[str, Cells] = {}
    missed = data.unfilled
    move = bars.close[missed.day, missed.symbol] - ref[missed.day, missed.symbol]
    if bars.suspended is not None and len(missed.day):
        move = np.where(_suspension_runs_end(data), _to_resumption(data, ref), move)
    value = np.nan_to_num(missed.quantity * move)
    for reason in sorted(set(missed.reason)):
        mask = np.array([r == reason for r in missed.reason], dtype=bool)
        opportunity[reason] = Cells.summed(missed.day[mask], missed.symbol[mask], value[mask], data.holdings.shape)
    return Decomposition(components, pnl, opportunity, ref, cash_residual)


def _suspension_runs_end(data: AttributionInput) -> np.ndarray:
    """Per refusal: for a suspension, and no suspended refusal of the same symbol and side the next day."""
    missed, m = data.unfilled, data.holdings.shape[1]
    suspended = np.array([r == "suspended" for r in missed.reason], dtype=bool)
    key = (missed.day * m + missed.symbol) * 2 + (missed.quantity > 0)
    following = key + 2 * m  # the same symbol and side one day later
    return np.asarray(suspended & ~np.isin(following, key[suspended]), dtype=bool)


def _to_resumption(data: AttributionInput, ref: FloatArray) -> FloatArray:
    """Per refusal: the first tradable basis after its day on its day's share basis, minus P̃ (NaN if none)."""
    bars, missed = data.bars, data.unfilled
    assert bars.suspended is not None
    n = len(bars.days)
    rows = np.arange(n)[:, None]
    first = np.minimum.accumulate(np.where(bars.suspended, n, rows)[::-1], axis=0)[::-1]  # first tradable ≥ t
    after = np.vstack([first[1:], np.full((1, first.shape[1]), n)])[missed.day, missed.symbol]
    at = np.minimum(after, n - 1)
    growth = np.cumprod(bars.split, axis=0)
    price = bars.basis[at, missed.symbol] * growth[at, missed.symbol] / growth[missed.day, missed.symbol]
    return np.asarray(np.where(after < n, price, np.nan) - ref[missed.day, missed.symbol], dtype=np.float64)


def daily_table(data: AttributionInput, parts: Decomposition) -> pd.DataFrame:
    """Long table: one row per day and symbol with any activity; the unassigned cash as symbol ``CASH``."""
    bars = data.bars
    m = data.holdings.shape[1]
    columns: dict[str, FloatArray] = {name: parts.components[name] for name in ACTUAL}
    columns["pnl"] = parts.pnl
    # Flat in row-major order whatever the grids' memory layout (reshape copies a column-major grid).
    active = (data.holdings != 0).reshape(-1)
    for grid in columns.values():
        active |= grid.reshape(-1) != 0
    for part in parts.opportunity.values():
        active[part.flat[part.value != 0]] = True
    # Only the active cells are gathered, in the row-major order (day, then symbol) of the whole grid: a table
    # of every day and symbol first would be days × symbols rows (5 000 symbols: gigabytes) to keep a few.
    cells = np.flatnonzero(active)
    day, symbol = np.divmod(cells, m)
    values = {name: grid.reshape(-1).take(cells) for name, grid in columns.items()}
    values.update({f"opportunity:{reason}": part.at(cells) for reason, part in parts.opportunity.items()})
    table = pd.DataFrame({"date": bars.days.values.take(day),
                          "strategy": _texts([data.strategy], np.zeros(len(cells), dtype=np.intp)),
                          "vt_symbol": _texts(bars.symbols, symbol), **values})
    cash = pd.DataFrame({"date": bars.days, "strategy": data.strategy, "vt_symbol": "CASH",
                         **{name: 0.0 for name in values}})
    cash["residual"] = parts.cash_residual
    cash["pnl"] = parts.cash_residual
    cash = cash[cash["residual"].abs() > 1e-9]
    out = pd.concat([table, cash], ignore_index=True) if len(cash) else table.reset_index(drop=True)
    return out.sort_values(["date", "vt_symbol"], kind="stable").reset_index(drop=True)


def _texts(vocabulary: Sequence[str], codes: IntArray) -> Any:
    """``vocabulary[codes]`` with the text dtype pandas gives those strings row by row (kept when empty)."""
    return pd.Series(np.array(vocabulary, dtype=object), dtype=None).array.take(codes)
