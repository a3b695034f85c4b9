"""Capacity: per-order limits against the fund's average turnover (the pool's ``max_adv_pct``).

An order's value is approximated by the change of target weight times the pool's capital (the
plan is decided at the close, before fills); a change larger than ``max_adv_pct`` × the 20-session
average turnover is cut to that size, and the rest waits for the next decision.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..compiled import jit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def cap_order_sizes(desired: np.ndarray, adv: np.ndarray, capital: float, max_adv_pct: float,
                    start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Targets whose row-to-row changes respect the ADV limit, and where the limit bound.

    ``desired`` and ``adv`` are decision rows × funds: weights of ``capital`` and 20-session average
    turnover in CNY (NaN or 0: the fund cannot be traded, its weight stays). Returns (allowed
    weights, binding mask).
    """
    previous = np.zeros(desired.shape[1]) if start is None else start.astype(float)
    limit = np.nan_to_num(max_adv_pct * adv / capital)
    return _cap_rows(np.asarray(desired, dtype=float), limit, previous)


@jit(export=("f2", "f2", "f1"))
def _cap_rows(desired: FloatArray, limit: FloatArray, previous: FloatArray) -> tuple[FloatArray, BoolArray]:
    """The day loop (compiled: each row starts from the previous row's allowed weights). The clamp is
    written as numpy's ``minimum(maximum(change, -limit), limit)`` evaluates it (NaN propagates)."""
    allowed = np.empty_like(desired)
    binding = np.zeros(desired.shape, dtype=np.bool_)
    now = previous.copy()
    for i in range(desired.shape[0]):
        for j in range(desired.shape[1]):
            change = desired[i, j] - now[j]
            low = -limit[i, j]
            cut = change if (change >= low or np.isnan(change)) else low
            cut = cut if (cut <= limit[i, j] or np.isnan(cut)) else limit[i, j]
            binding[i, j] = abs(change - cut) > 1e-12
            now[j] = allowed[i, j] = now[j] + cut
    return allowed, binding
