"""The portfolio simulation: targets decided at the close of day t, filled from day t+1 on.

This module prepares plain arrays from :class:`MarketData`, the plan and the config, and hands them to
the compiled day loop in :mod:`~vnpy_rotation.backtest.kernel`, whose matcher is the single
implementation of the fill rules (:func:`~vnpy_rotation.backtest.matching.match` is its Python face,
used by the replay gateway). Records come back as arrays and become frames only when asked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, NamedTuple, Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

try:  # pandas 3: a frame from ready blocks (its public low-level constructor)
    from pandas.api.internals import create_dataframe_from_blocks as _from_blocks
except ImportError:  # pragma: no cover - pandas before 3.0
    _from_blocks = None

from ..data.market_data import MarketData, MarketMemo, derived, round_to_tick
from ..errors import InputRejected, Problem
from ..risk.ladder import RUNGS, ladder_params
from ..risk.stops import PLAN, RiskRules, configured_ladders, risk_reason
from . import kernel
from .config import BacktestConfig, FillPrice
from .drift_response import apply_drift_response
from .limits import apply_limits
from .matching import reason_names
from .result import REFUSAL_REASONS, BacktestResult

TRADE_COLUMNS = ["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission",
                 "stamp_duty", "transfer_fee", "slippage", "reason"]
ORDER_COLUMNS = ["date", "vt_symbol", "direction", "requested", "submitted", "filled", "price",
                 "status", "reason", "cause"]
EQUITY_COLUMNS = ["equity", "cash", "market_value"]
POSITION_COLUMNS = ["date", "vt_symbol", "volume", "close", "market_value", "weight"]
ACTION_COLUMNS = ["date", "vt_symbol", "kind", "volume_before", "volume_after", "cash"]
_F = {name: k for k, name in enumerate(kernel.ORDER_FIELDS)}
# The record fields that become float columns, with their column positions (a frame's float columns are one block).
_TRADE_AMOUNTS = [_F[name] for name in ("filled", "price", "value", "commission", "stamp_duty", "transfer_fee",
                                        "slippage")]
_TRADE_AMOUNT_COLUMNS = np.array([TRADE_COLUMNS.index(name) for name in ("volume", "price", "value", "commission",
                                                                          "stamp_duty", "transfer_fee", "slippage")])
_ORDER_AMOUNTS = [_F[name] for name in ("requested", "submitted", "filled", "price")]
_ORDER_AMOUNT_COLUMNS = np.array([ORDER_COLUMNS.index(name) for name in ("requested", "submitted", "filled", "price")])
_EQUITY_AMOUNT_COLUMNS = np.arange(3)
_POSITION_AMOUNT_COLUMNS = np.arange(2, 6)  # volume, close, market_value, weight
_ACTION_AMOUNT_COLUMNS = np.arange(3, 6)  # volume_before, volume_after, cash (kernel.ACTION_FIELDS 3..5)
# One column's position, for every frame's columns.
_AT = [np.array([k]) for k in range(max(map(len, (TRADE_COLUMNS, ORDER_COLUMNS, POSITION_COLUMNS, ACTION_COLUMNS))))]
_COST_FIELDS = [_F["commission"], _F["stamp_duty"], _F["transfer_fee"], _F["slippage"]]
_NO_RISK = RiskRules().kernel_args()


@dataclass(frozen=True)
class TargetPlan:
    """Targets decided at the close of each index day: weights (fractions of equity) or share counts.

    A row is a complete portfolio: symbols missing from it are targeted at zero; NaN means "no
    instruction" and keeps the current holding (vnpy strategies send no order for a symbol without a bar).

    ``risk``: the risk rules :func:`simulate` applies on top of the rows (none by default). ``notes``:
    why each symbol has its target, same index and columns as ``frame`` (e.g. ``"VQM rank 3"``; NaN or
    None where there is nothing to say): it becomes the ``reason`` of the trades that row causes, which
    otherwise is ``reason``. ``drift_events``: the drift response's stage changes and raised flags
    (:mod:`~vnpy_rotation.backtest.drift_response`), set when the response is on.
    """

    frame: pd.DataFrame
    kind: Literal["weight", "shares"] = "weight"
    reason: str = "rebalance"
    # The strategy's diagnostics, written as CSV next to the results: frames, or functions building them
    # when asked (a parameter sweep never asks).
    tables: dict[str, pd.DataFrame | Callable[[], pd.DataFrame]] = field(default_factory=dict)
    risk: RiskRules | None = None
    notes: pd.DataFrame | None = None
    drift_events: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.notes is not None and not (self.notes.index.equals(self.frame.index)
                                           and set(self.notes.columns) <= set(self.frame.columns)):
            raise InputRejected(Problem("targets", None, "notes must have the index and columns of the targets"))

    def table(self, name: str) -> pd.DataFrame | None:
        value = self.tables.get(name)
        return value() if callable(value) else value


@dataclass
class RawRun:
    """The simulation's own record (arrays), turned into frames only when asked (sweeps skip that)."""

    market: MarketData
    config: BacktestConfig
    reason: str  # of plan orders without a note
    holdings_array: np.ndarray  # shares at each close (days × symbols)
    cash_array: np.ndarray  # cash at each close
    flows_array: np.ndarray  # cash in per day and symbol (fills, fees, distributions)
    order_rows: np.ndarray  # kernel.ORDER_FIELDS per order considered
    action_rows: np.ndarray  # kernel.ACTION_FIELDS per corporate action applied
    notes: pd.DataFrame | None = None  # TargetPlan.notes: plan row (position) × symbol
    rungs: np.ndarray | None = None  # each configured ladder's rung at each close (days × ladders)
    ladder_names: tuple[str, ...] = ()
    drift_events: pd.DataFrame | None = None  # TargetPlan.drift_events
    value_close: np.ndarray | None = None  # MarketInputs.value_close of the market, when already at hand

    def holdings(self) -> np.ndarray:
        return self.holdings_array

    def cash(self) -> np.ndarray:
        return self.cash_array

    def market_value(self) -> np.ndarray:
        # holdings × nan_to_num(close) without nan_to_num's copy and infinity scans: the product, then
        # holdings × 0 where there is no close (the same bytes, -0.0 included). One day × symbol array.
        if self.value_close is not None:  # the close with 0 where there is none, computed once per market
            return np.multiply(self.holdings_array, self.value_close)
        close = self.market.last_close
        if np.isinf(close).any():  # (never in loaded data: nan_to_num's large finite stand-ins)
            return self.holdings_array * np.nan_to_num(close)
        values = np.multiply(self.holdings_array, close)
        np.multiply(self.holdings_array, 0.0, out=values, where=np.isnan(close))
        return values

    def equity(self) -> np.ndarray:
        return self.cash_array + self.market_value().sum(axis=1)

    @property
    def fill_rows(self) -> np.ndarray:
        return self.order_rows.compress(self.order_rows[:, _F["filled"]] > 0, axis=0)  # (a mask index is slower)

    @property
    def fill_count(self) -> int:
        return int(np.count_nonzero(self.order_rows[:, _F["filled"]] > 0))

    @property
    def costs(self) -> np.ndarray:
        """Commission, stamp duty, transfer fee and slippage summed over all fills."""
        # Column by column over the filled rows, without copying every field of every fill: each sum adds a
        # contiguous column pairwise, as the sum over axis 0 of the fills' (column-major) cost columns did.
        rows = self.order_rows
        filled = rows[:, _F["filled"]] > 0
        return np.array([rows[filled, k].sum() for k in _COST_FIELDS])

    @property
    def trades(self) -> list[tuple]:
        """One tuple per fill, in ``TRADE_COLUMNS`` order."""
        return list(self._trade_frame().itertuples(index=False, name=None))

    @property
    def orders(self) -> list[tuple]:
        """One tuple per order considered, in ``ORDER_COLUMNS`` order (refusal reasons, then cause)."""
        return list(self._order_frame().itertuples(index=False, name=None))

    def _reasons(self, rows: np.ndarray) -> ExtensionArray | str:
        """Why each order was sent: the plan's note for its symbol, else the plan's reason; a risk rule
        and its trigger (``stock_stop -9.5%``). One string when that is the plan's reason for all."""
        cause = rows[:, _F["cause"]].astype(np.int64)
        if self.notes is None and not cause.any():
            return self.reason  # (a column of one value builds much faster)
        texts = np.full(len(rows), self.reason, dtype=object)
        risky = np.nonzero(cause != PLAN)[0]
        if len(risky):
            texts[risky] = [risk_reason(c, t) for c, t in zip(cause[risky].tolist(), rows[risky, _F["trigger"]].tolist())]
        if self.notes is not None and len(rows):
            planned = np.nonzero(cause == PLAN)[0]
            note = _cells(self.notes, list(self.market.symbols), rows[planned, _F["plan_row"]].astype(np.int64),
                          rows[planned, _F["symbol"]].astype(np.int64))
            given = ~pd.isna(note) & (note != "")
            texts[planned[given]] = [str(text) for text in note[given]]
        codes, vocabulary = pd.factorize(texts)  # a few distinct texts: one Python string each, not one per row
        return _texts(vocabulary, codes)

    def _trade_frame(self, order_reasons: ExtensionArray | str | None = None) -> pd.DataFrame:
        """``order_reasons``: the orders' ``_reasons`` when already built (a fill's is its order's)."""
        filled = self.order_rows[:, _F["filled"]] > 0
        fills = self.order_rows.compress(filled, axis=0)  # fill × field (compress: no mask indexing)
        fields = fills.T
        if order_reasons is None:
            reasons = self._reasons(fills)
        else:
            reasons = order_reasons if isinstance(order_reasons, str) else order_reasons[filled]
        # Text columns as vocabulary.take(codes), dates as the index's own array, the amounts as one block:
        # each column arrives with its final dtype, so nothing is converted or stacked again.
        return _block_frame(TRADE_COLUMNS, len(fills), [
            (_days(self.market, fields[_F["day"]]), _AT[0]),
            (_texts(self.market.symbols, fields[_F["symbol"]].astype(np.intp)), _AT[1]),
            (_texts(_SIDES, fields[_F["buy"]].astype(np.intp)), _AT[2]),
            (np.ascontiguousarray(fields[_TRADE_AMOUNTS]), _TRADE_AMOUNT_COLUMNS),
            (_constant(reasons, len(fills)), _AT[10]),
        ])

    def _order_frame(self, reasons: ExtensionArray | str | None = None) -> pd.DataFrame:
        fields = self.order_rows.T  # field × order views
        filled, bits = fields[_F["filled"]], fields[_F["reasons"]].astype(np.intp)
        status = (filled != 0) * (2 - (bits != 0))  # refused 0 (nothing filled), partial 1, filled 2
        amounts = np.array(fields[_ORDER_AMOUNTS])  # requested, submitted, filled, price: one C-ordered copy
        np.round(amounts[0], 4, out=amounts[0])
        return _block_frame(ORDER_COLUMNS, len(filled), [
            (_days(self.market, fields[_F["day"]]), _AT[0]),
            (_texts(self.market.symbols, fields[_F["symbol"]].astype(np.intp)), _AT[1]),
            (_texts(_SIDES, fields[_F["buy"]].astype(np.intp)), _AT[2]),
            (amounts, _ORDER_AMOUNT_COLUMNS),
            (_texts(_STATUSES, status), _AT[7]),
            (_texts(_REFUSAL_TEXTS, bits), _AT[8]),
            (_constant(self._reasons(self.order_rows) if reasons is None else reasons, len(filled)), _AT[9]),
        ])

    def to_result(self) -> BacktestResult:
        md = self.market
        holdings = self.holdings_array
        values = self.market_value()
        n_days = len(md.days)
        dates = md.days.rename("date")
        totals = np.empty((3, n_days))  # equity, cash, market value: the equity frame's one block
        equity, cash, market_value = totals
        np.copyto(cash, self.cash_array)
        values.sum(axis=1, out=market_value)
        np.add(cash, market_value, out=equity)
        equity_frame = _block_frame(EQUITY_COLUMNS, n_days, [(totals, _EQUITY_AMOUNT_COLUMNS)], dates)
        pnl = np.empty_like(values)  # day-on-day change in value plus cash flows: one pass to write it
        pnl[:1] = values[:1]
        np.subtract(values[1:], values[:-1], out=pnl[1:])
        pnl += self.flows_array
        # Held cells in row-major order (as np.nonzero gives them), found on a boolean mask: a float array's
        # nonzero scan is several times slower, and flat positions read each array with one take.
        held = np.flatnonzero(holdings != 0)
        held_i, held_j = np.divmod(held, holdings.shape[1])
        held_rows = np.empty((4, len(held)))  # volume, close, market value, weight
        holdings.ravel().take(held, out=held_rows[0])
        md.last_close.ravel().take(held, out=held_rows[1])
        values.ravel().take(held, out=held_rows[2])
        np.divide(held_rows[2], equity.take(held_i), out=held_rows[3])
        positions = _block_frame(POSITION_COLUMNS, len(held), [
            (md.days.array.take(held_i), _AT[0]), (_texts(md.symbols, held_j), _AT[1]),
            (held_rows, _POSITION_AMOUNT_COLUMNS),
        ])
        acts = self.action_rows.T
        actions = _block_frame(ACTION_COLUMNS, len(self.action_rows), [
            (_days(md, acts[0]), _AT[0]),
            (_texts(md.symbols, acts[1].astype(np.intp)), _AT[1]),
            (_texts(_KINDS, acts[2].astype(np.intp)), _AT[2]),
            (np.array(acts[3:6]), _ACTION_AMOUNT_COLUMNS),
        ])
        columns = symbol_columns(md.symbols)
        reasons = self._reasons(self.order_rows)
        return BacktestResult(equity=equity_frame, trades=self._trade_frame(reasons),
                              orders=self._order_frame(reasons),
                              positions=positions,
                              holdings_value=pd.DataFrame(values, index=dates, columns=columns, copy=False),
                              symbol_pnl=pd.DataFrame(pnl, index=dates, columns=columns, copy=False),
                              cash_flows=actions, initial_capital=self.config.capital,
                              settings=self.config.model_dump(mode="json"), risk_days=self._risk_days(),
                              drift_events=self.drift_events)

    def _risk_days(self) -> pd.DataFrame | None:
        if self.rungs is None or not self.ladder_names:
            return None
        codes = self.rungs.astype(np.intp)
        frame = pd.DataFrame({name: _texts(RUNGS, codes[:, k]) for k, name in enumerate(self.ladder_names)},
                             index=self.market.days.rename("date"), copy=False)
        frame.insert(0, "rung", _texts(RUNGS, codes.max(axis=1)))
        return frame


# Text columns are built as vocabulary.take(codes): one Python string per distinct value instead of one per
# row. The vocabulary goes through pandas' own inference, so the column has the dtype pandas gives a column
# of Python strings (``str`` on pandas 3, ``object`` before).
_SIDES = ("sell", "buy")  # kernel.ORDER_FIELDS "buy": 0 or 1
_STATUSES = ("refused", "partial", "filled")
_KINDS = ("split", "dividend")  # kernel.ACTION_FIELDS "dividend": 0 or 1
# Every combination of refusal bits (kernel.ORDER_FIELDS "reasons"), indexed by the bits themselves.
_REFUSAL_TEXTS = tuple(";".join(reason_names(bits)) for bits in range(1 << len(REFUSAL_REASONS)))


def _texts(vocabulary: Sequence[str] | np.ndarray, codes: np.ndarray) -> ExtensionArray:
    """``vocabulary[codes]`` as a text column, with the dtype of the same Python strings given row by row."""
    if not len(codes):  # (pandas keeps an empty column of objects as objects)
        return pd.array(np.empty(0, dtype=object), dtype=object)
    if not isinstance(vocabulary, tuple):
        return _inferred(vocabulary).take(codes)
    words = _words(vocabulary)
    arrow = _arrow_words(vocabulary)
    if arrow is None:
        return words.take(codes)
    # Arrow text: pyarrow's gather on the vocabulary's own array, wrapped once (pandas' ``take`` converts and
    # checks the indices again on top of it: about 35 µs instead of 20 µs for 2 000 rows).
    import pyarrow as pa  # (present whenever the vocabulary is arrow text)

    return type(words)(arrow.take(pa.array(codes)), dtype=words.dtype)


def _inferred(vocabulary: Sequence[str] | np.ndarray) -> ExtensionArray:
    return pd.Series(np.asarray(vocabulary, dtype=object), dtype=None).array


@functools.lru_cache(maxsize=64)
def _words(vocabulary: tuple[str, ...]) -> ExtensionArray:
    """The text array of a fixed vocabulary (symbols, sides, statuses), inferred once per process."""
    return _inferred(vocabulary)


@functools.lru_cache(maxsize=64)
def _arrow_words(vocabulary: tuple[str, ...]) -> Any:
    """The pyarrow array under ``_words(vocabulary)`` when pandas keeps that text in Arrow, else None."""
    words = _words(vocabulary)
    if not isinstance(words, pd.arrays.ArrowStringArray):
        return None
    import pyarrow as pa

    arrow = pa.array(words)
    return arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow


def _days(md: MarketData, positions: np.ndarray) -> ExtensionArray:
    """The dates of day positions (floats from the records), as the index's own datetime array."""
    return md.days.array.take(positions.astype(np.intp))


def _constant(texts: ExtensionArray | str, length: int) -> ExtensionArray:
    """A text column: ``texts`` as given, or one string repeated, with the dtype pandas gives a column built
    from that string (``str`` on pandas 3 even when empty), taken from a cached one-word vocabulary."""
    if not isinstance(texts, str):
        return texts
    word = _words((texts,))
    if isinstance(word, pd.arrays.ArrowStringArray) and length:
        # Arrow text: the repeated string's buffers written directly (offsets a range, data the bytes n times)
        # instead of a gather through ``take``: about 5 µs instead of 25 µs for 2 000 rows.
        import pyarrow as pa  # (installed with pandas' arrow strings; imported here only when they are in use)

        arrow_type = pa.array(word).type
        if arrow_type == pa.large_string():
            encoded = texts.encode()
            offsets = np.arange(length + 1, dtype=np.int64) * len(encoded)
            values = pa.Array.from_buffers(arrow_type, length,
                                           [None, pa.py_buffer(offsets), pa.py_buffer(encoded * length)])
            return pd.arrays.ArrowStringArray(values, dtype=word.dtype)
    return word.take(np.zeros(length, dtype=np.intp))


def _block_frame(columns: Sequence[str], length: int, blocks: Sequence[tuple[np.ndarray | ExtensionArray, np.ndarray]],
                 index: pd.Index | None = None) -> pd.DataFrame:
    """The frame named ``columns`` (a RangeIndex of ``length`` rows when ``index`` is None) from its blocks,
    each ``(values, positions)``: one column (an array of its final dtype) or several float columns (a C-ordered
    2-D array, one row per column). Through pandas' block constructor: no per-column inference, no stacking of
    float columns that arrive one by one (together about half of the dict constructor's cost)."""
    index = pd.RangeIndex(length) if index is None else index
    if _from_blocks is not None:
        # A numpy column (an empty text column is one of objects) goes in as a one-row 2-D block.
        ready = [(values.to_numpy().reshape(1, -1) if isinstance(values, pd.arrays.NumpyExtensionArray) else values,
                  positions) for values, positions in blocks]
        return _from_blocks(ready, index=index, columns=symbol_columns(tuple(columns)))
    by_position: dict[int, np.ndarray | ExtensionArray] = {}  # pandas before 3.0: the public constructor
    for values, positions in blocks:
        by_position.update(zip(positions.tolist(), values if values.ndim == 2 else [values]))
    return pd.DataFrame({name: by_position[k] for k, name in enumerate(columns)}, index=index, copy=False)


def symbol_columns(symbols: tuple[str, ...]) -> pd.Index:
    """The symbols as column labels: a fresh Index (its name is the caller's to set) on the cached text array
    (the Index ``pd.Index(list(symbols))`` gives, without inferring the text type of every name each run)."""
    if not symbols:
        return pd.Index([])
    return _labels(tuple(symbols)).view()  # (a view: its own name, the cached Index's data)


@functools.lru_cache(maxsize=64)
def _labels(symbols: tuple[str, ...]) -> pd.Index:
    return pd.Index(_words(symbols), copy=False)


def _cells(frame: pd.DataFrame, symbols: list[str], rows: np.ndarray, symbol_positions: np.ndarray) -> np.ndarray:
    """``frame`` (plan rows × some of ``symbols``) at (row position, symbol position) pairs, NaN where the
    symbol is not a column."""
    # Each symbol's column in ``frame`` (-1 where it has none): reads the pairs from the frame's own values
    # instead of re-indexing it to every symbol (an object array of rows × all symbols).
    own = {name: k for k, name in enumerate(frame.columns)}
    where = np.array([own.get(symbol, -1) for symbol in symbols], dtype=np.intp)
    columns = where[symbol_positions]
    cells = np.full(len(rows), np.nan, dtype=object)
    present = columns >= 0
    cells[present] = frame.to_numpy(dtype=object)[rows[present], columns[present]]
    return cells


@functools.lru_cache(maxsize=16)
def _symbol_index(symbols: tuple[str, ...]) -> dict[str, int]:
    """Each symbol's column position (the first, as ``tuple.index`` gives it)."""
    index: dict[str, int] = {}
    for k, symbol in enumerate(symbols):
        index.setdefault(symbol, k)
    return index


def _plan_rows(md: MarketData, plan: TargetPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Execution day positions (decision day + 1), their full target vectors and their positions in
    ``plan.frame``, in day order."""
    frame = plan.frame
    given = frame.to_numpy(dtype=float)
    if md.symbols and frame.columns.is_(_labels(tuple(md.symbols))):  # the market's own labels (weights_frame's)
        values = given.copy()
    else:
        columns = frame.columns.tolist()  # (list() walks an arrow-backed index one boxed element at a time)
        index = _symbol_index(tuple(md.symbols))  # (a tuple's ``in`` / ``index`` scan every name: quadratic at 5 000)
        unknown = [s for s in columns if s not in index]
        if unknown:
            raise InputRejected(Problem("targets", None, f"symbols without market data: {', '.join(unknown)}"))
        if columns == list(md.symbols):
            values = given.copy()
        else:  # symbols missing from the plan are targeted at zero
            values = np.zeros((len(given), len(md.symbols)))
            values[:, [index[s] for s in columns]] = given
    decided = np.asarray(pd.DatetimeIndex(frame.index).values, dtype="datetime64[ns]")
    day_values = np.asarray(md.days.values, dtype="datetime64[ns]")
    positions = np.searchsorted(day_values, decided)
    valid = positions < len(day_values)
    valid[valid] = day_values[positions[valid]] == decided[valid]
    if not valid.all():
        bad = frame.index[~valid][0]
        raise InputRejected(Problem("targets", None, f"decision day {bad} is not a trading day of the data"))
    keep = ~np.isnan(given).all(axis=1) & (positions + 1 < len(day_values)) if len(given) else positions >= 0
    order = np.argsort(positions[keep], kind="stable")
    return ((positions[keep][order] + 1).astype(np.int64), values[keep][order].reshape(-1, len(md.symbols)),
            np.arange(len(given), dtype=np.int64)[keep][order])


def effective_plan(md: MarketData, plan: TargetPlan, config: BacktestConfig,
                   history: MarketData | None = None) -> TargetPlan:
    """``plan`` as the kernel receives it: ``config``'s exposure limits, then the drift response (stepped from
    ``md``'s first day, its monitors reading ``history``, default ``md``). The look-ahead harness checks this."""
    plan = apply_limits(plan, config, md)
    return apply_drift_response(plan, config, md if history is None else history,
                                md.days[0] if len(md.days) else None)


class MarketInputs(NamedTuple):
    """The kernel's day × symbol inputs that depend only on the market, the fill price, the suspension rule
    and the commission schedules (:func:`market_inputs`): a sweep computes them once per market."""

    exec_prices: np.ndarray  # fill_basis
    tradable: np.ndarray  # not suspended
    action_day: np.ndarray  # any split or dividend that day
    action_count: int  # stock-days with one
    commission_rate: np.ndarray  # per symbol
    commission_min: np.ndarray
    value_close: np.ndarray | None  # the last close with 0 where there is none (RawRun.market_value); None: an inf


def market_inputs(md: MarketData, config: BacktestConfig) -> MarketInputs:
    stock = md.is_stock
    fee = config.stock_commission, config.etf_commission
    # The ex-dates from the per-day counts a store keeps (split and dividend are then read only on those days,
    # for the names held, not scanned whole), else counted in the same pass as the prices.
    count = md.actions_per_day is None
    prices, value_close, counted, any_inf = _market_pass(md, config, count, valuation=True)
    actions = counted if count else md.actions_per_day
    return MarketInputs(prices, ~md.suspended, actions > 0, int(actions.sum()),
                        np.where(stock, fee[0].rate, fee[1].rate), np.where(stock, fee[0].minimum, fee[1].minimum),
                        None if any_inf else value_close)


def _market_pass(md: MarketData, config: BacktestConfig, count_actions: bool, valuation: bool) -> tuple:
    """:func:`kernel.market_pass` on the fill basis ``config`` names (open, or the VWAP written over in place)."""
    if config.fill_price is FillPrice.OPEN:
        basis, out = md.open, np.empty(md.open.shape)
    else:
        basis = out = _vwap(md)
    return kernel.market_pass(basis, out, md.last_close, md.suspended, md.split, md.dividend,
                              config.rules.suspension, count_actions, valuation)


def _inputs_key(config: BacktestConfig) -> tuple:
    """Every setting :func:`market_inputs` reads."""
    fees = config.stock_commission, config.etf_commission
    return ("market_inputs", config.fill_price, config.rules.suspension, *((f.rate, f.minimum) for f in fees))


def simulate(md: MarketData, plan: TargetPlan, config: BacktestConfig, history: MarketData | None = None,
             *, memo: MarketMemo | None = None) -> RawRun:
    """Run ``plan`` over ``md`` under ``config``'s rules, limits and drift response and the plan's risk rules.

    ``history``: the bars the strategy decided on, its warm-up before ``md`` included (default ``md``); the
    drift monitors read their windows from it and step the response from ``md``'s first day. ``memo`` (a
    sweep chunk's): the inputs that depend only on ``md`` and the config (:class:`MarketInputs`) are
    computed once for all its runs."""
    plan = effective_plan(md, plan, config, history)
    rules = config.rules
    plan_days, plan_targets, plan_rows = _plan_rows(md, plan)
    risk = _NO_RISK if plan.risk is None else plan.risk.kernel_args()
    named = configured_ladders(plan.risk, config.risk)
    ladders = ladder_params([ladder for _, ladder in named])
    given = derived(memo, md, _inputs_key(config), lambda: market_inputs(md, config))
    # Initial room for a full turnover of up to 64 names per row plus retries; the kernel doubles a full
    # buffer in place, so a busier plan costs a copy, never a second run.
    order_capacity = max(1024, 3 * len(plan_days) * min(md.shape[1], 64))
    action_capacity = max(64, given.action_count)
    holdings, cash, flows, orders, n_orders, actions, n_actions, rungs = kernel.run_days(
        given.exec_prices, md.volume, md.limit_up, md.limit_down, given.tradable, md.t0, md.split, md.dividend,
        given.action_day, md.lot, md.lot_step, md.tick, md.is_stock, given.commission_rate, given.commission_min,
        md.stamp_rate, md.transfer_rate, plan_days, plan_targets, plan_rows, plan.kind == "weight",
        float(config.capital), float(config.participation_cap), config.slippage.unit == "bps",
        float(config.slippage.amount), config.resubmit, rules.lots, rules.t1, rules.price_limits,
        rules.suspension, rules.corporate_actions, rules.stamp_duty, rules.transfer_fee,
        rules.round_costs, rules.cash_check, md.last_close, risk, ladders, order_capacity, action_capacity)
    return RawRun(md, config, plan.reason, holdings, cash, flows, orders[:n_orders], actions[:n_actions],
                  plan.notes, rungs if named else None, tuple(name for name, _ in named), plan.drift_events,
                  given.value_close)


def fill_basis(md: MarketData, config: BacktestConfig) -> np.ndarray:
    """The undisturbed price each symbol trades at on each day (open or VWAP, before slippage), a stand-in where
    it cannot trade (:func:`kernel.market_pass`)."""
    return _market_pass(md, config, count_actions=False, valuation=False)[0]


def _vwap(md: MarketData) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(md.volume > 0, md.turnover / md.volume, np.nan)
    # Turnover / volume is not a tradable quote: put it on the tick grid and inside the bar.
    # Without turnover the day's average price is unknown: the open stands in.
    vwap = np.where(np.isfinite(vwap), round_to_tick(vwap, md.tick), md.open)
    return np.clip(vwap, md.low, md.high)


