"""Typed inputs of the P&L attribution: daily bars, holdings, fills, unfilled orders and segments.

Arrays are ``days × symbols`` unless said otherwise; day and symbol indices are positions in
``Bars.days`` and ``Bars.symbols``. Quantities are signed shares: + bought, − sold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

FEE_KINDS = ("commission", "stamp_duty", "transfer_fee")
CASH_SEGMENT = "CASH"


@dataclass(frozen=True)
class Bars:
    """Prices on the days attributed, plus the close before the first day.

    ``close`` is the valuation close (carried forward over suspensions); ``basis`` the undisturbed fill
    price of the day (the bar's open, or its VWAP when the run fills at VWAP); ``split`` the holding
    multiplier on an ex-date (1 elsewhere) and ``dividend`` the cash per share held before the ex-date.
    ``suspended`` (optional, bool): no trading that day; a suspended refusal is measured to the resumption.
    """

    days: pd.DatetimeIndex
    symbols: tuple[str, ...]
    prev_close: FloatArray  # (symbols,) the close before ``days[0]``
    close: FloatArray
    basis: FloatArray
    split: FloatArray
    dividend: FloatArray
    suspended: NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Fills:
    """One entry per fill; fees are CNY paid (≥ 0)."""

    day: IntArray
    symbol: IntArray
    quantity: FloatArray  # signed
    price: FloatArray
    commission: FloatArray
    stamp_duty: FloatArray
    transfer_fee: FloatArray


@dataclass(frozen=True)
class Unfilled:
    """One entry per order refused or reduced: the signed quantity not filled and why."""

    day: IntArray
    symbol: IntArray
    quantity: FloatArray  # signed: + a buy not done, − a sell not done
    reason: tuple[str, ...]  # the first refusal reason, or ``rounding`` when none was recorded


@dataclass(frozen=True)
class Benchmark:
    """Brinson–Fachler segments: each symbol's segment and the benchmark.

    ``weights`` (days × ``segments``, each row summing to 1) is the benchmark's weight of each segment on
    each day; ``members`` (days × symbols, bool) says which symbols make up the benchmark on each day, each
    segment equal-weighted over its members. A held symbol whose segment is not in ``segments`` gets a
    segment of its own with benchmark weight 0. ``defensive``: the symbols a strategy parks empty slots in
    (a bond ETF); their drag against the benchmark is reported on its own line.
    """

    name: str
    segment_of: tuple[str, ...]  # per symbol
    segments: tuple[str, ...]
    weights: FloatArray
    members: NDArray[np.bool_]
    defensive: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributionInput:
    """One strategy's book over ``bars.days``: holdings at each close and the equity."""

    strategy: str
    bars: Bars
    start_holdings: FloatArray  # (symbols,) shares held before ``days[0]``
    holdings: FloatArray  # shares at each close
    start_equity: float
    equity: FloatArray  # (days,) at each close
    fills: Fills
    unfilled: Unfilled
    dividend_cash: FloatArray  # CNY credited per day and symbol
    benchmark: Benchmark | None = None
