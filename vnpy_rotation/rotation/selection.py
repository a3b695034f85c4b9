"""Scores, selection with hysteresis and slot weights: the rotation template's middle steps.

All functions take arrays over decision rows × pool members and are pure; row i may depend on rows
< i only through the explicit ``held`` state (hysteresis), never on later rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..compiled import jit
from ..factors.library import FACTORS

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Cross-sectional rank of each row's finite values scaled to (0, 1]; ties share the mean rank."""
    return np.asarray(pd.DataFrame(values).rank(axis=1, method="average", pct=True).to_numpy(), dtype=float)


def composite_score(factors: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the factors' percentile ranks, each oriented so that higher is better.

    A member needs every weighted factor to be scored (NaN otherwise): a fund too young for the
    longest window waits rather than being scored on part of the model.
    """
    return weighted_ranks({name: percentile_ranks(FACTORS[name].direction * factors[name]) for name in weights},
                          weights)


def weighted_ranks(ranks: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Σ rank × weight / Σ weights over the factors' (oriented) percentile ranks, in ``weights`` order."""
    total = sum(weights.values())
    score: np.ndarray | None = None
    for name, weight in weights.items():
        ranked = ranks[name] * (weight / total)
        score = ranked if score is None else score + ranked
    if score is None:
        raise ValueError("composite_score needs at least one weighted factor")
    return score


def select_with_hysteresis(scores: np.ndarray, eligible: np.ndarray, top_n: int, buffer: int) -> np.ndarray:
    """Top ``top_n`` by score each row; a holding stays while it ranks within ``top_n + buffer``.

    Only eligible members with a finite score can be held or chosen. Ties go to the earlier column.
    """
    return select_ranked(*rank_usable(scores, eligible), top_n, buffer)


def rank_usable(scores: np.ndarray, eligible: np.ndarray) -> tuple[IntArray, BoolArray]:
    """(columns best score first per row, ties to the earlier column; which may be held or chosen)."""
    usable = eligible & np.isfinite(scores)
    return np.argsort(-np.where(usable, scores, -np.inf), axis=1, kind="stable"), usable


def select_ranked(order: IntArray, usable: BoolArray, top_n: int, buffer: int) -> BoolArray:
    """:func:`select_with_hysteresis` on the ranking of :func:`rank_usable`."""
    return _hysteresis(order, usable, top_n, buffer)


@jit(export=("i2", "b2", "int", "int"))
def _hysteresis(order: IntArray, usable: BoolArray, top_n: int, buffer: int) -> BoolArray:
    """The day loop (compiled: it carries the holdings from row to row). Per row: the holdings ranked
    within ``top_n + buffer`` stay, then the best-ranked others fill the slots up to ``top_n``."""
    rows, members = usable.shape
    chosen = np.zeros((rows, members), dtype=np.bool_)
    held = np.zeros(members, dtype=np.bool_)
    for i in range(rows):
        count = 0
        seen = 0
        for k in range(members):
            j = order[i, k]
            if not usable[i, j]:
                continue
            if seen >= top_n + buffer:
                break
            seen += 1
            if held[j]:
                chosen[i, j] = True
                count += 1
        for k in range(members):
            if count >= top_n:
                break
            j = order[i, k]
            if usable[i, j] and not chosen[i, j]:
                chosen[i, j] = True
                count += 1
        held[:] = chosen[i]
    return chosen


def slot_weights(chosen: np.ndarray, top_n: int, max_single_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Each chosen member gets one of ``top_n`` equal slots, capped at ``max_single_weight``.

    Returns (member weights, the fraction left for the defensive asset: the empty slots).
    """
    weights = np.where(chosen, min(1.0 / top_n, max_single_weight), 0.0)
    empty = (top_n - chosen.sum(axis=1)) / top_n
    return weights, empty
