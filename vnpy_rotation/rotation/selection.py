"""Scores, selection with hysteresis and slot weights: the rotation template's middle steps.

All functions take arrays over decision rows × pool members and are pure; row i may depend on rows
< i only through the explicit ``held`` state (hysteresis), never on later rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..factors.library import FACTORS


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Cross-sectional rank of each row's finite values scaled to (0, 1]; ties share the mean rank."""
    return np.asarray(pd.DataFrame(values).rank(axis=1, method="average", pct=True).to_numpy(), dtype=float)


def composite_score(factors: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the factors' percentile ranks, each oriented so that higher is better.

    A member needs every weighted factor to be scored (NaN otherwise): a fund too young for the
    longest window waits rather than being scored on part of the model.
    """
    total = sum(weights.values())
    score: np.ndarray | None = None
    for name, weight in weights.items():
        ranked = percentile_ranks(FACTORS[name].direction * factors[name]) * (weight / total)
        score = ranked if score is None else score + ranked
    if score is None:
        raise ValueError("composite_score needs at least one weighted factor")
    return score


def select_with_hysteresis(scores: np.ndarray, eligible: np.ndarray, top_n: int, buffer: int) -> np.ndarray:
    """Top ``top_n`` by score each row; a holding stays while it ranks within ``top_n + buffer``.

    Only eligible members with a finite score can be held or chosen. Ties go to the earlier column.
    """
    rows, members = scores.shape
    chosen = np.zeros((rows, members), dtype=bool)
    usable = eligible & np.isfinite(scores)
    order = np.argsort(-np.where(usable, scores, -np.inf), axis=1, kind="stable")
    held: set[int] = set()
    for i in range(rows):
        ranked = [int(j) for j in order[i] if usable[i, j]]
        pick = [j for j in ranked[:top_n + buffer] if j in held]
        for j in ranked:
            if len(pick) >= top_n:
                break
            if j not in pick:
                pick.append(j)
        chosen[i, pick] = True
        held = set(pick)
    return chosen


def slot_weights(chosen: np.ndarray, top_n: int, max_single_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Each chosen member gets one of ``top_n`` equal slots, capped at ``max_single_weight``.

    Returns (member weights, the fraction left for the defensive asset: the empty slots).
    """
    weights = np.where(chosen, min(1.0 / top_n, max_single_weight), 0.0)
    empty = (top_n - chosen.sum(axis=1)) / top_n
    return weights, empty
