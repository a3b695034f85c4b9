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
    """The lines of every cell that can carry any: each day and symbol held at the open or the close, traded,
    paid a distribution or refused an order (``cells``: flat positions day × symbols + symbol, ascending, once).
    Every other cell's lines are all zero, so nothing days × symbols is built: on a whole market such a grid is
    hundreds of MB, and the split needed about fifteen of them.

    ``components``: name → CNY per cell (the ACTUAL lines, summing to ``pnl``); ``opportunity``: refusal reason →
    its cells, CNY (the paper bridge); ``cash_residual``: per day, the equity change not carried by any symbol."""

    cells: IntArray
    components: dict[str, FloatArray]
    pnl: FloatArray
    opportunity: dict[str, Cells]
    cash_residual: FloatArray
    shape: tuple[int, int]

    def dense(self, values: FloatArray) -> FloatArray:
        """Per-cell ``values`` as a days × symbols grid (0 elsewhere)."""
        return Cells(self.cells, values, self.shape).dense()


def previous_reference(data: AttributionInput) -> FloatArray:
    """P̃ = close_{t−1} / split_t: yesterday's close on today's share basis (a 2-for-1 split halves it)."""
    bars = data.bars
    prev = np.vstack([bars.prev_close[None, :], bars.close[:-1]]).astype(np.float64, copy=False)
    return np.divide(prev, bars.split, out=prev)  # (in place: one grid)


def holdings_grid(data: AttributionInput, ref: FloatArray) -> FloatArray:
    """The holdings line of every day and symbol (the segment attribution weighs whole grids), in one grid."""
    with np.errstate(invalid="ignore"):
        grid = np.subtract(data.bars.close, ref, dtype=np.float64)
        grid *= data.holdings
    return np.nan_to_num(grid, copy=False)


def _previous(grid: np.ndarray, first: np.ndarray, day: IntArray, symbol: IntArray) -> np.ndarray:
    """``grid``'s value the day before each cell (``first`` before day 0)."""
    earlier = np.maximum(day - 1, 0)
    return np.where(day > 0, grid[earlier, symbol], first[symbol])


def _cells(data: AttributionInput) -> IntArray:
    """Every cell that can carry a line (see :class:`Decomposition`), ascending."""
    n, m = data.holdings.shape
    held = np.flatnonzero(data.holdings != 0)  # (row-major positions whatever the grid's layout)
    fills, missed = data.fills, data.unfilled
    return np.unique(np.concatenate([
        held, held[held < (n - 1) * m] + m, np.flatnonzero(data.start_holdings != 0),  # held at the close, the open
        fills.day * m + fills.symbol, missed.day * m + missed.symbol,
        np.flatnonzero(data.dividend_cash != 0)]).astype(np.int64))


def _row_sums(cells: IntArray, values: FloatArray, shape: tuple[int, int], block: int = 1 << 20) -> FloatArray:
    """Per day, the sum of the day's cells: a days × symbols grid's ``sum(axis=1)``, bit for bit (each row added
    as numpy adds a row of the grid, zeros included), a block of rows at a time."""
    n, m = shape
    out = np.zeros(n)
    step = max(1, block // max(m, 1))
    bounds = np.searchsorted(cells, np.arange(0, n + step, step) * m)
    for k, lo in enumerate(range(0, n, step)):
        rows = min(step, n - lo)
        grid = np.zeros((rows, m))
        part = slice(bounds[k], bounds[k + 1])
        grid.reshape(-1)[cells[part] - lo * m] = values[part]
        out[lo:lo + rows] = grid.sum(axis=1)
    return out


def decompose(data: AttributionInput) -> Decomposition:
    bars, fills = data.bars, data.fills
    shape = data.holdings.shape
    cells = _cells(data)
    day, symbol = np.divmod(cells, shape[1])
    held = data.holdings[day, symbol]
    held_before = _previous(data.holdings, data.start_holdings, day, symbol)
    close = bars.close[day, symbol]
    close_prev = _previous(bars.close, bars.prev_close, day, symbol)
    split = bars.split[day, symbol]
    ref = np.asarray(close_prev / split, dtype=np.float64)
    # The kernel and brokers drop the fraction of a share a split leaves (no cash in lieu).
    after_split = np.where(split != 1.0, np.floor(held_before * split + 1e-9), held_before)
    with np.errstate(invalid="ignore"):
        holdings = np.nan_to_num(held * (close - ref))
        corporate = np.nan_to_num(after_split * ref - held_before * close_prev)
    at = np.searchsorted(cells, fills.day * shape[1] + fills.symbol)  # each fill's cell

    def per_cell(values: FloatArray) -> FloatArray:
        out = np.zeros(len(cells))
        np.add.at(out, at, values)
        return out

    fill_ref = ref[at]
    fill_basis = bars.basis[fills.day, fills.symbol]
    components = {
        "holdings": holdings,
        "delay": -per_cell(fills.quantity * (fill_basis - fill_ref)),
        "execution": -per_cell(fills.quantity * (fills.price - fill_basis)),
        "commission": -per_cell(fills.commission),
        "stamp_duty": -per_cell(fills.stamp_duty),
        "transfer_fee": -per_cell(fills.transfer_fee),
        "dividends": data.dividend_cash[day, symbol].astype(np.float64),
        "corporate_action": corporate,
    }
    # The actual P&L per symbol from the book: value change plus the symbol's cash flows.
    flows = (-per_cell(fills.quantity * fills.price) + components["commission"] + components["stamp_duty"]
             + components["transfer_fee"] + components["dividends"])
    with np.errstate(invalid="ignore"):
        pnl = np.nan_to_num(held * close - held_before * close_prev) + flows
    explained = sum(components.values())
    components["residual"] = pnl - explained
    equity_prev = np.concatenate([[data.start_equity], data.equity[:-1]])
    cash_residual = (data.equity - equity_prev) - _row_sums(cells, pnl, shape)
    missed = data.unfilled
    missed_at = np.searchsorted(cells, missed.day * shape[1] + missed.symbol)
    move = close[missed_at] - ref[missed_at]
    if bars.suspended is not None and len(missed.day):
        move = np.where(_suspension_runs_end(data), _to_resumption(data, ref[missed_at]), move)
    value = np.nan_to_num(missed.quantity * move)
    opportunity: dict[str, Cells] = {}
    for reason in sorted(set(missed.reason)):
        mask = np.array([r == reason for r in missed.reason], dtype=bool)
        opportunity[reason] = Cells.summed(missed.day[mask], missed.symbol[mask], value[mask], shape)
    return Decomposition(cells, components, pnl, opportunity, cash_residual, shape)


def _suspension_runs_end(data: AttributionInput) -> np.ndarray:
    """Per refusal: for a suspension, and no suspended refusal of the same symbol and side the next day."""
    missed, m = data.unfilled, data.holdings.shape[1]
    suspended = np.array([r == "suspended" for r in missed.reason], dtype=bool)
    key = (missed.day * m + missed.symbol) * 2 + (missed.quantity > 0)
    following = key + 2 * m  # the same symbol and side one day later
    return np.asarray(suspended & ~np.isin(following, key[suspended]), dtype=bool)


def _to_resumption(data: AttributionInput, ref: FloatArray) -> FloatArray:
    """Per refusal: the first tradable basis after its day on its day's share basis, minus its P̃ (``ref``; NaN
    if none). One column at a time, for the refused symbols only."""
    bars, missed = data.bars, data.unfilled
    assert bars.suspended is not None
    price = np.full(len(missed.day), np.nan)
    for j in np.unique(missed.symbol):
        mine = np.flatnonzero(missed.symbol == j)
        tradable = np.flatnonzero(~bars.suspended[:, j])
        if not len(tradable):  # suspended all along: no resumption in the window (NaN: no opportunity)
            continue
        where = np.searchsorted(tradable, missed.day[mine], side="right")  # the first tradable day after
        resumes = where < len(tradable)
        after = tradable[np.minimum(where, len(tradable) - 1)]
        growth = np.cumprod(bars.split[:, j])
        moved = bars.basis[after, j] * growth[after] / growth[missed.day[mine]]
        price[mine] = np.where(resumes, moved, np.nan)
    return np.asarray(price - ref, dtype=np.float64)


def daily_table(data: AttributionInput, parts: Decomposition) -> pd.DataFrame:
    """Long table: one row per day and symbol with any activity; the unassigned cash as symbol ``CASH``."""
    bars = data.bars
    m = parts.shape[1]
    columns: dict[str, FloatArray] = {name: parts.components[name] for name in ACTUAL}
    columns["pnl"] = parts.pnl
    day, symbol = np.divmod(parts.cells, m)
    active = data.holdings[day, symbol] != 0
    opportunity = {reason: part.at(parts.cells) for reason, part in parts.opportunity.items()}
    for line in (*columns.values(), *opportunity.values()):
        active |= line != 0
    # Rows in the cells' order: row-major, day then symbol.
    keep = np.flatnonzero(active)
    values = {name: column.take(keep) for name, column in columns.items()}
    values.update({f"opportunity:{reason}": column.take(keep) for reason, column in opportunity.items()})
    day, symbol = day.take(keep), symbol.take(keep)
    table = pd.DataFrame({"date": bars.days.values.take(day),
                          "strategy": _texts([data.strategy], np.zeros(len(keep), dtype=np.intp)),
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
