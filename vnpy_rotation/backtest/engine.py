"""The portfolio simulation: targets decided at the close of day t, filled from day t+1 on.

This module prepares plain arrays from :class:`MarketData`, the plan and the config, and hands them to
the compiled day loop in :mod:`~vnpy_rotation.backtest.kernel`, whose matcher is the single
implementation of the fill rules (:func:`~vnpy_rotation.backtest.matching.match` is its Python face,
used by the replay gateway). Records come back as arrays and become frames only when asked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from ..data.market_data import MarketData, round_to_tick
from ..errors import InputRejected, Problem
from ..risk.ladder import RUNGS, ladder_params
from ..risk.stops import PLAN, RiskRules, configured_ladders, risk_reason
from . import kernel
from .config import BacktestConfig, FillPrice
from .drift_response import apply_drift_response
from .limits import apply_limits
from .matching import reason_names
from .result import BacktestResult

TRADE_COLUMNS = ["datetime", "vt_symbol", "direction", "price", "volume", "value", "commission",
                 "stamp_duty", "transfer_fee", "slippage", "reason"]
ORDER_COLUMNS = ["date", "vt_symbol", "direction", "requested", "submitted", "filled", "price",
                 "status", "reason", "cause"]
_F = {name: k for k, name in enumerate(kernel.ORDER_FIELDS)}
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

    def holdings(self) -> np.ndarray:
        return self.holdings_array

    def cash(self) -> np.ndarray:
        return self.cash_array

    def market_value(self) -> np.ndarray:
        # holdings × nan_to_num(close) without nan_to_num's copy and infinity scans: the product, then
        # holdings × 0 where there is no close (the same bytes, -0.0 included). One day × symbol array.
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
        return self.order_rows[self.order_rows[:, _F["filled"]] > 0]

    @property
    def costs(self) -> np.ndarray:
        """Commission, stamp duty, transfer fee and slippage summed over all fills."""
        fills = self.fill_rows
        return fills[:, [_F["commission"], _F["stamp_duty"], _F["transfer_fee"], _F["slippage"]]].sum(axis=0)

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
        fills = self.fill_rows
        if order_reasons is None:
            reasons = self._reasons(fills)
        else:
            reasons = order_reasons if isinstance(order_reasons, str) else \
                order_reasons[self.order_rows[:, _F["filled"]] > 0]
        return pd.DataFrame({
            "datetime": _days(self.market, fills[:, _F["day"]]),
            "vt_symbol": _texts(self.market.symbols, fills[:, _F["symbol"]].astype(np.intp)),
            "direction": _texts(_SIDES, fills[:, _F["buy"]].astype(np.intp)),
            "price": fills[:, _F["price"]], "volume": fills[:, _F["filled"]],
            **{name: fills[:, _F[name]] for name in ("value", "commission", "stamp_duty", "transfer_fee", "slippage")},
            "reason": reasons,
        }, columns=TRADE_COLUMNS, copy=False)

    def _order_frame(self, reasons: ExtensionArray | str | None = None) -> pd.DataFrame:
        rows = self.order_rows
        filled, bits = rows[:, _F["filled"]], rows[:, _F["reasons"]].astype(np.int64)
        unique_bits, bit_codes = np.unique(bits, return_inverse=True)
        status = np.where(filled == 0, 0, np.where(bits != 0, 1, 2))
        return pd.DataFrame({
            "date": _days(self.market, rows[:, _F["day"]]),
            "vt_symbol": _texts(self.market.symbols, rows[:, _F["symbol"]].astype(np.intp)),
            "direction": _texts(_SIDES, rows[:, _F["buy"]].astype(np.intp)),
            "requested": np.round(rows[:, _F["requested"]], 4), "submitted": rows[:, _F["submitted"]],
            "filled": filled, "price": rows[:, _F["price"]],
            "status": _texts(_STATUSES, status),
            "reason": _texts(tuple(";".join(reason_names(b)) for b in unique_bits.tolist()), bit_codes.reshape(-1)),
            "cause": self._reasons(rows) if reasons is None else reasons,
        }, columns=ORDER_COLUMNS, copy=False)

    def to_result(self) -> BacktestResult:
        md = self.market
        holdings = self.holdings_array
        values = self.market_value()
        cash = self.cash_array
        market_value = values.sum(axis=1)
        equity = cash + market_value
        dates = md.days.rename("date")
        equity_frame = pd.DataFrame({"equity": equity, "cash": cash, "market_value": market_value},
                                    index=dates, copy=False)
        pnl = np.empty_like(values)  # day-on-day change in value plus cash flows: one pass to write it
        pnl[:1] = values[:1]
        np.subtract(values[1:], values[:-1], out=pnl[1:])
        pnl += self.flows_array
        held_i, held_j = np.nonzero(holdings)
        held_values = values[held_i, held_j]
        positions = pd.DataFrame({
            "date": md.days.values[held_i], "vt_symbol": _texts(md.symbols, held_j),
            "volume": holdings[held_i, held_j], "close": md.last_close[held_i, held_j],
            "market_value": held_values, "weight": held_values / equity[held_i],
        }, copy=False)
        acts = self.action_rows
        actions = pd.DataFrame({
            "date": _days(md, acts[:, 0]),
            "vt_symbol": _texts(md.symbols, acts[:, 1].astype(np.intp)),
            "kind": _texts(_KINDS, acts[:, 2].astype(np.intp)),
            "volume_before": acts[:, 3], "volume_after": acts[:, 4], "cash": acts[:, 5],
        }, copy=False)
        columns = pd.Index(list(md.symbols))
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


def _texts(vocabulary: Sequence[str] | np.ndarray, codes: np.ndarray) -> ExtensionArray:
    """``vocabulary[codes]`` as a text column, with the dtype of the same Python strings given row by row."""
    if not len(codes):  # (pandas keeps an empty column of objects as objects)
        return pd.array(np.empty(0, dtype=object), dtype=object)
    words = _words(vocabulary) if isinstance(vocabulary, tuple) else _inferred(vocabulary)
    return words.take(codes)


def _inferred(vocabulary: Sequence[str] | np.ndarray) -> ExtensionArray:
    return pd.Series(np.asarray(vocabulary, dtype=object), dtype=None).array


@functools.lru_cache(maxsize=64)
def _words(vocabulary: tuple[str, ...]) -> ExtensionArray:
    """The text array of a fixed vocabulary (symbols, sides, statuses), inferred once per process."""
    return _inferred(vocabulary)


def _days(md: MarketData, positions: np.ndarray) -> np.ndarray:
    """The dates of day positions (floats from the records), as the index's own datetime64 values."""
    return md.days.values[positions.astype(np.intp)]


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
    columns = list(plan.frame.columns)
    index = _symbol_index(tuple(md.symbols))  # (a tuple's ``in`` / ``index`` scan every name: quadratic at 5 000)
    unknown = [s for s in columns if s not in index]
    if unknown:
        raise InputRejected(Problem("targets", None, f"symbols without market data: {', '.join(unknown)}"))
    given = plan.frame.to_numpy(dtype=float)
    if columns == list(md.symbols):
        values = given.copy()
    else:  # symbols missing from the plan are targeted at zero
        values = np.zeros((len(given), len(md.symbols)))
        values[:, [index[s] for s in columns]] = given
    decided = pd.DatetimeIndex(plan.frame.index).values.astype("datetime64[ns]")
    day_values = md.days.values.astype("datetime64[ns]")
    positions = np.searchsorted(day_values, decided)
    valid = positions < len(day_values)
    valid[valid] = day_values[positions[valid]] == decided[valid]
    if not valid.all():
        bad = plan.frame.index[~valid][0]
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


def simulate(md: MarketData, plan: TargetPlan, config: BacktestConfig, history: MarketData | None = None) -> RawRun:
    """Run ``plan`` over ``md`` under ``config``'s rules, limits and drift response and the plan's risk rules.

    ``history``: the bars the strategy decided on, its warm-up before ``md`` included (default ``md``); the
    drift monitors read their windows from it and step the response from ``md``'s first day."""
    plan = effective_plan(md, plan, config, history)
    rules = config.rules
    plan_days, plan_targets, plan_rows = _plan_rows(md, plan)
    risk = _NO_RISK if plan.risk is None else plan.risk.kernel_args()
    named = configured_ladders(plan.risk, config.risk)
    ladders = ladder_params([ladder for _, ladder in named])
    exec_prices = fill_basis(md, config)
    stock = md.is_stock
    fee = config.stock_commission, config.etf_commission
    # The ex-dates from the per-day counts (a store keeps them: split and dividend are then read only on
    # those days, for the names held, not scanned whole).
    actions = md.action_counts()
    action_day = actions > 0
    # Initial room for a full turnover of up to 64 names per row plus retries; the kernel doubles a full
    # buffer in place, so a busier plan costs a copy, never a second run.
    order_capacity = max(1024, 3 * len(plan_days) * min(md.shape[1], 64))
    action_capacity = max(64, int(actions.sum()))
    holdings, cash, flows, orders, n_orders, actions, n_actions, rungs = kernel.run_days(
        exec_prices, md.volume, md.limit_up, md.limit_down, ~md.suspended, md.t0, md.split, md.dividend,
        action_day, md.lot, md.lot_step, md.tick, stock,
        np.where(stock, fee[0].rate, fee[1].rate), np.where(stock, fee[0].minimum, fee[1].minimum),
        md.stamp_rate, md.transfer_rate, plan_days, plan_targets, plan_rows, plan.kind == "weight",
        float(config.capital), float(config.participation_cap), config.slippage.unit == "bps",
        float(config.slippage.amount), config.resubmit, rules.lots, rules.t1, rules.price_limits,
        rules.suspension, rules.corporate_actions, rules.stamp_duty, rules.transfer_fee,
        rules.round_costs, rules.cash_check, md.last_close, risk, ladders, order_capacity, action_capacity)
    return RawRun(md, config, plan.reason, holdings, cash, flows, orders[:n_orders], actions[:n_actions],
                  plan.notes, rungs if named else None, tuple(name for name, _ in named), plan.drift_events)


def fill_basis(md: MarketData, config: BacktestConfig) -> np.ndarray:
    """The undisturbed price each symbol trades at on each day (open or VWAP, before slippage)."""
    if config.fill_price is FillPrice.OPEN:
        return _execution_prices(md, md.open, config.rules.suspension)
    return _execution_prices(md, _vwap(md), config.rules.suspension, owned=True)


def _vwap(md: MarketData) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(md.volume > 0, md.turnover / md.volume, np.nan)
    # Turnover / volume is not a tradable quote: put it on the tick grid and inside the bar.
    # Without turnover the day's average price is unknown: the open stands in.
    vwap = np.where(np.isfinite(vwap), round_to_tick(vwap, md.tick), md.open)
    return np.clip(vwap, md.low, md.high)


def _execution_prices(md: MarketData, fill_prices: np.ndarray, suspension: bool, owned: bool = False) -> np.ndarray:
    """The price each symbol trades (or, when it cannot, is valued) at on each day.

    Without a bar the previous close stands in: for valuing the portfolio when sizing weights, and, with
    the suspension rule off, as the fill price -- vnpy_portfoliostrategy fills against a flat stand-in bar
    built from the last close. ``owned``: ``fill_prices`` is a fresh array of this function's own, filled in
    place instead of copied.
    """
    # One output array and one mask, filled in place: no shifted copy of the last close, no third array.
    dtype = np.result_type(fill_prices, md.last_close)
    prices = fill_prices if owned and fill_prices.dtype == dtype else np.array(fill_prices, dtype=dtype)
    stand_in = ~np.isfinite(prices)
    if suspension:
        stand_in |= md.suspended
    if len(prices):
        prices[0, stand_in[0]] = np.nan
        np.copyto(prices[1:], md.last_close[:-1], where=stand_in[1:])
    return prices
