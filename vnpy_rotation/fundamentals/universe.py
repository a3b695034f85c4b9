"""Point-in-time index membership, rebuilt backwards from a snapshot and the change history.

Membership on day D = the snapshot's list with every change dated after D (and on or before the
snapshot) undone: a later ``in`` is removed, a later ``out`` put back. A change takes effect on its
date (CSI adjusts constituents effective the first trading day after the second Friday of June and
December; the files give that effective date).

What this cannot know is reported, never hidden: changes between the last recorded change and the
snapshot (the shipped history ends 2022-12-12, the snapshot is 2024-08-19), undo steps that contradict
the list (a name removed that was not a member), and members without market data (survivorship: the
shipped bars are of 2024 constituents only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Membership:
    """Day × symbol membership plus what the reconstruction could not vouch for."""

    member: np.ndarray  # bool, days × symbols
    members_per_day: np.ndarray  # how many constituents the index had each day (with or without data)
    warnings: list[str] = field(default_factory=list)


def rebuild_membership(snapshot_day: pd.Timestamp, snapshot: list[str], changes: pd.DataFrame,
                       days: pd.DatetimeIndex, symbols: tuple[str, ...] | list[str]) -> Membership:
    """Membership of ``symbols`` on ``days`` from a snapshot list and ``changes`` (day, vt_symbol, change ±1)."""
    changes = changes[changes["day"] <= snapshot_day].sort_values("day", kind="stable")
    warnings: list[str] = []
    current = set(snapshot)
    # Walk back from the snapshot: the set just before each change date.
    states: list[tuple[pd.Timestamp, frozenset[str]]] = [(snapshot_day, frozenset(current))]
    conflicts = 0
    for day, group in reversed(list(changes.groupby("day", sort=True))):
        for symbol, change in zip(group["vt_symbol"], group["change"]):
            if change > 0:
                conflicts += symbol not in current
                current.discard(symbol)
            else:
                conflicts += symbol in current
                current.add(symbol)
        states.append((day - pd.Timedelta(days=1), frozenset(current)))
    states.reverse()  # ascending: each state holds from the previous boundary's next day to its own day
    if conflicts:
        warnings.append(f"{conflicts} recorded change(s) contradict the snapshot when undone: changes are "
                        "missing between them, so membership before them is approximate")
    last_change = changes["day"].max() if len(changes) else None
    if last_change is None:
        warnings.append("no membership changes stored: the universe is today's list on every day "
                        "(survivorship bias: past members that left the index are missing)")
    elif (snapshot_day - last_change).days > 200:
        warnings.append(f"no membership changes recorded between {last_change.date()} and the snapshot of "
                        f"{snapshot_day.date()}: names added or removed in between are wrong before then")
    if len(days) and days[-1] > snapshot_day:
        warnings.append(f"days after the snapshot of {snapshot_day.date()} use the snapshot's list")

    bounds = np.array([s[0] for s in states], dtype="datetime64[ns]")
    index = np.minimum(np.searchsorted(bounds, days.values.astype("datetime64[ns]"), side="left"), len(states) - 1)
    column = {s: j for j, s in enumerate(symbols)}
    member = np.zeros((len(days), len(symbols)), dtype=bool)
    sizes = np.array([len(s[1]) for s in states])
    for k in np.unique(index):
        cols = [column[s] for s in states[k][1] if s in column]
        rows = np.nonzero(index == k)[0]
        member[np.ix_(rows, cols)] = True
    return Membership(member, sizes[index], warnings)


def coverage_warning(membership: Membership, eligible_days: np.ndarray | None = None) -> str | None:
    """A warning when the data covers clearly fewer names than the index had (survivorship)."""
    rows = slice(None) if eligible_days is None else eligible_days
    with_data = membership.member[rows].sum(axis=1)
    total = membership.members_per_day[rows]
    if not len(total) or total.sum() == 0:
        return None
    share = float(with_data.sum() / total.sum())
    if share < 0.95:
        return (f"only {share:.0%} of the index's point-in-time members have market data on average "
                "(the others were not imported; names that left the index are usually the missing ones): "
                "results carry survivorship bias")
    return None
