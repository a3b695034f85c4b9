"""Day × symbol arrays the simulation reads: prices, tradability, limit prices, lots, fees, actions.

Built once per data load from :class:`~vnpy_rotation.data.panels.Panels` and the instrument table;
every rule the matcher applies is looked up here as plain numpy, so a backtest never touches pandas
or the registry in its inner loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TypeVar

import numpy as np
import pandas as pd

from ..fundamentals.share_changes import Distribution, from_steps, holding_arrays, merge
from ..market.instruments import InstrumentRegistry, default_registry

if TYPE_CHECKING:  # the data layer imports vnpy; the simulation core must not (sweep workers, tests)
    from ..data.panels import Panels

T = TypeVar("T")


def round_to_tick(price: np.ndarray | float, tick: np.ndarray | float) -> np.ndarray:
    """Round half up to the tick, as the exchanges compute limit prices (四舍五入至最小变动价位)."""
    return np.floor(np.asarray(price) / tick + 0.5 + 1e-9) * tick


PER_SYMBOL = ("symbols", "lot", "lot_step", "tick", "is_stock")


@dataclass(frozen=True)
class MarketData:
    """Unadjusted trading data plus the rule arrays; NaN means no bar / no limit."""

    days: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    turnover: np.ndarray
    factor: np.ndarray  # cumulative backward adjustment factor
    suspended: np.ndarray  # bool: suspended, no bar, or zero volume
    is_st: np.ndarray
    last_close: np.ndarray  # close carried forward over suspensions (valuation price)
    limit_up: np.ndarray
    limit_down: np.ndarray
    split: np.ndarray  # holding multiplier on the ex-date (1 where none)
    dividend: np.ndarray  # cash per share held before the ex-date (0 where none)
    lot: np.ndarray
    lot_step: np.ndarray
    tick: np.ndarray
    is_stock: np.ndarray
    t0: np.ndarray  # (days × symbols) bool: shares bought that day may be sold that day
    stamp_rate: np.ndarray  # per day, charged on stock sells
    transfer_rate: np.ndarray  # per day, charged on stock buys and sells
    benchmark: np.ndarray | None = None  # per day: the benchmark's close (for relative-strength signals)
    # Per day: how many symbols have a split or a dividend (derived from those two arrays, e.g. by the
    # whole-market store, so that a run need not read them whole to find the ex-dates); None: counted when asked.
    actions_per_day: np.ndarray | None = None
    # Further day × symbol inputs a strategy attached (e.g. point-in-time fundamentals, index membership);
    # sliced with the days and perturbed by the look-ahead harness like the prices.
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.actions_per_day is not None and self.actions_per_day.shape != (len(self.days),):
            raise ValueError(f"actions_per_day has shape {self.actions_per_day.shape}, not ({len(self.days)},)")

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    def action_counts(self) -> np.ndarray:
        """Per day, how many symbols have a split or a dividend: ``actions_per_day`` when given, else counted."""
        if self.actions_per_day is not None:
            return self.actions_per_day
        return ((self.split != 1.0) | (self.dividend != 0.0)).sum(axis=1)

    def adjusted(self, field: str = "close") -> np.ndarray:
        """Backward-adjusted prices for signals (continuous through splits and distributions)."""
        return getattr(self, field) * self.factor

    def frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.days, columns=list(self.symbols), copy=False)

    def window(self, start: date | None, end: date | None) -> "MarketData":
        """The same data restricted to ``start..end`` (limits and actions stay as computed on the whole).

        The days are sorted, so the window is one contiguous row range: every day-indexed array (and every
        extra) is a read-only numpy view of this market's, nothing is copied. Read-only because a write into
        a view would change the parent: a caller that needs to change values copies them first.
        """
        if not self.days.is_monotonic_increasing:  # never built so; kept exact for a hand-made market
            keep = np.ones(len(self.days), dtype=bool)
            if start is not None:
                keep &= self.days >= pd.Timestamp(start)
            if end is not None:
                keep &= self.days <= pd.Timestamp(end)
            return self._rows(keep)
        lo = 0 if start is None else int(self.days.searchsorted(pd.Timestamp(start), side="left"))
        hi = len(self.days) if end is None else int(self.days.searchsorted(pd.Timestamp(end), side="right"))
        return self._rows(slice(lo, max(lo, hi)))

    def _rows(self, rows: slice | np.ndarray) -> "MarketData":
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name, value in fields.items():
            if name not in PER_SYMBOL and isinstance(value, (np.ndarray, pd.Index)):
                fields[name] = _read_only(value[rows])
        fields["extras"] = {name: _read_only(value[rows]) for name, value in self.extras.items()}
        return MarketData(**fields)


def _read_only(value: np.ndarray | pd.Index) -> np.ndarray | pd.Index:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False  # on the view only: the parent stays writable
    return value


class MarketMemo:
    """Values derived from markets, shared by the runs of one sweep chunk (factor panels, ranks, windows).

    Keyed by the market object itself (a strong reference is kept, so an ``id`` is never reused while the
    memo lives) and a key naming every input the value depends on besides the market. Values are read
    only; a memo lives as long as the chunk that created it, so nothing leaks to other markets or runs.
    """

    def __init__(self) -> None:
        self._markets: dict[int, tuple[MarketData, dict[object, object]]] = {}

    def get(self, market: MarketData, key: object, compute: "Callable[[], T]") -> "T":
        entry = self._markets.get(id(market))
        if entry is None or entry[0] is not market:
            entry = self._markets[id(market)] = (market, {})
        if key not in entry[1]:
            value = compute()
            for array in value if isinstance(value, tuple) else (value,):
                if isinstance(array, np.ndarray):
                    array.flags.writeable = False  # shared by every run of the chunk: a write would leak
            entry[1][key] = value
        return entry[1][key]  # type: ignore[return-value]

    def window(self, market: MarketData, start: date | None, end: date | None) -> MarketData:
        """``market.window(start, end)``, the same object for the same bounds (so values keyed on it hit)."""
        return self.get(market, ("window", start, end), lambda: market.window(start, end))


def derived(memo: MarketMemo | None, market: MarketData, key: object, compute: "Callable[[], T]") -> "T":
    """``compute()``, through ``memo`` when there is one (a sweep), else afresh (a single run)."""
    return compute() if memo is None else memo.get(market, key, compute)


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last finite value down each column (column by column: no day × symbol temporaries)."""
    filled = np.empty_like(values)
    rows = np.arange(len(values))
    for j in range(values.shape[1]):
        column = values[:, j]
        finite = np.isfinite(column)
        index = np.maximum.accumulate(np.where(finite, rows, 0))
        filled[:, j] = np.where(np.maximum.accumulate(finite), column[index], np.nan)
    return filled


def build_market_data(panels: Panels, registry: InstrumentRegistry | None = None,
                      records: Mapping[str, Sequence[Distribution]] | None = None) -> MarketData:
    """Rule arrays for ``panels`` from the instrument table (every symbol must be known to it).

    Each ex-date's factor step is split into new shares and cash per old share
    (:func:`~vnpy_rotation.fundamentals.share_changes.split_step`); ``records`` (vt_symbol → imported
    dividend records) replace that on their ex-dates.

    The panels' price arrays are shared, not copied; the derived arrays are computed one symbol at a
    time so building adds only what the MarketData keeps.
    """
    registry = registry or default_registry()
    days = panels.days
    symbols = tuple(panels.symbols)
    instruments = [registry.by_vt_symbol(s) for s in symbols]

    close = panels.close.to_numpy(dtype=float)
    volume = panels.volume.to_numpy(dtype=float)
    factor = panels.factor.to_numpy(dtype=float)
    suspended = panels.suspended.to_numpy(dtype=bool) | ~np.isfinite(close) | ~(np.nan_to_num(volume) > 0)
    is_st = panels.is_st.to_numpy(dtype=bool)
    last_close = forward_fill(close)

    shape = close.shape
    split, dividend = np.ones(shape), np.zeros(shape)
    limit_up, limit_down = np.empty(shape), np.empty(shape)
    t0 = np.zeros(shape, dtype=bool)
    tick = np.array([i.rules.tick for i in instruments])
    day_np = days.values.astype("datetime64[D]")
    for j, instrument in enumerate(instruments):
        step = np.ones(len(days))
        step[1:] = factor[1:, j] / factor[:-1, j]
        step[~np.isfinite(step) | (np.abs(step - 1.0) < 1e-12)] = 1.0
        previous_close = np.concatenate([[np.nan], last_close[:-1, j]])
        derived = from_steps(days, step, previous_close, per_ten=instrument.is_stock, tick=tick[j])
        split[:, j], dividend[:, j] = holding_arrays(days, merge(derived, (records or {}).get(symbols[j], ())))
        rules = instrument.rules
        pct = _schedule(day_np, rules.price_limits)
        if rules.st_price_limits and is_st[:, j].any():
            pct = np.where(is_st[:, j], _schedule(day_np, rules.st_price_limits), pct)
        if rules.t0_from is not None:
            t0[:, j] = day_np >= np.datetime64(rules.t0_from, "D")
        # The exchange's reference price after an ex-date is the previous close divided by the factor step.
        reference = previous_close / step
        limit_up[:, j] = round_to_tick(reference * (1 + pct), tick[j])
        limit_down[:, j] = round_to_tick(reference * (1 - pct), tick[j])

    return MarketData(
        days=days, symbols=symbols,
        open=panels.open.to_numpy(dtype=float), high=panels.high.to_numpy(dtype=float),
        low=panels.low.to_numpy(dtype=float), close=close, volume=volume,
        turnover=panels.turnover.to_numpy(dtype=float), factor=factor, suspended=suspended, is_st=is_st,
        last_close=last_close, limit_up=limit_up, limit_down=limit_down, split=split, dividend=dividend,
        lot=np.array([i.rules.lot for i in instruments], dtype=float),
        lot_step=np.array([i.rules.lot_step for i in instruments], dtype=float),
        tick=tick, is_stock=np.array([i.is_stock for i in instruments], dtype=bool), t0=t0,
        stamp_rate=np.nan_to_num(_schedule(day_np, registry.table.fees.stamp_duty_sell, "rate")),
        transfer_rate=np.nan_to_num(_schedule(day_np, registry.table.fees.transfer_fee, "rate")),
    )


def _schedule(days: np.ndarray, items: list, attr: str = "pct") -> np.ndarray:
    """A dated schedule (ascending ``from`` dates) evaluated on every day; NaN before its first date."""
    starts = np.array([np.datetime64(item.start, "D") for item in items])
    values = np.array([getattr(item, attr) for item in items] + [np.nan], dtype=float)
    index = np.searchsorted(starts, days, side="right") - 1
    return values[np.where(index >= 0, index, -1)]
