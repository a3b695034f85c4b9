"""Capacity: per-order limits against the fund's average turnover (the pool's ``max_adv_pct``).

An order's value is approximated by the change of target weight times the pool's capital (the
plan is decided at the close, before fills); a change larger than ``max_adv_pct`` × the 20-session
average turnover is cut to that size, and the rest waits for the next decision.
"""

from __future__ import annotations

import numpy as np


def cap_order_sizes(desired: np.ndarray, adv: np.ndarray, capital: float, max_adv_pct: float,
                    start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Targets whose row-to-row changes respect the ADV limit, and where the limit bound.

    ``desired`` and ``adv`` are decision rows × funds: weights of ``capital`` and 20-session average
    turnover in CNY (NaN or 0: the fund cannot be traded, its weight stays). Returns (allowed
    weights, binding mask).
    """
    allowed = np.empty_like(desired)
    binding = np.zeros(desired.shape, dtype=bool)
    previous = np.zeros(desired.shape[1]) if start is None else start.astype(float)
    limit = np.nan_to_num(max_adv_pct * adv / capital)
    for i in range(len(desired)):
        change = desired[i] - previous
        cut = np.minimum(np.maximum(change, -limit[i]), limit[i])  # np.clip's overhead dominates small rows
        binding[i] = np.abs(change - cut) > 1e-12
        previous = allowed[i] = previous + cut
    return allowed, binding
