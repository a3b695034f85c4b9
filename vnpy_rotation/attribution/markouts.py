"""Post-fill markouts: how the price moved after each fill (the daily-bar analogue of adverse selection).

markout_k = (close_{t+k} − fill)·q in CNY (q signed, so a buy followed by a rise is positive) and
sign(q)·(close_{t+k} / fill − 1) in basis points, with close_{t+k} put on the fill day's share basis by
the splits in between (dividends are not added back). A diagnostic beside the bridge, not a P&L line;
NaN when t+k is past the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .records import AttributionInput

HORIZONS = (1, 5)


def markouts(data: AttributionInput) -> pd.DataFrame:
    bars, fills = data.bars, data.fills
    n = len(bars.days)
    # cumulative split multiplier: close on day u × growth[u] / growth[t] is on day t's share basis
    growth = np.cumprod(bars.split, axis=0)
    table = pd.DataFrame({"date": bars.days[fills.day], "vt_symbol": np.array(bars.symbols, dtype=object)[fills.symbol],
                          "quantity": fills.quantity, "price": fills.price})
    side = np.sign(fills.quantity)
    for k in HORIZONS:
        later = fills.day + k
        inside = later < n
        at = np.minimum(later, n - 1)
        close = bars.close[at, fills.symbol] * growth[at, fills.symbol] / growth[fills.day, fills.symbol]
        close = np.where(inside, close, np.nan)
        table[f"markout_t{k}_cny"] = (close - fills.price) * fills.quantity
        table[f"markout_t{k}_bp"] = side * (close / fills.price - 1.0) * 1e4
    return table
