"""The monitor app's watchlists from the runtime folder: ``.vntrader/rotation_watchlists.yaml`` resolved against
the rotation pools file and the index constituents stored in the database (point-in-time: on ``day``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from vnpy.trader.utility import TEMP_DIR

from ...config import yaml_line
from ...fundamentals.universe import rebuild_membership
from ...monitor.watchlist import WATCHLIST_FILENAME, read_watchlists, resolve
from ...rotation.pools import read_pools


def index_members(index: str, day: date) -> tuple[str, ...]:
    """The constituents of ``index`` on ``day`` from the stored snapshots and changes (empty: none stored)."""
    from ...fundamentals.store import FundamentalStore

    store = FundamentalStore()
    snapshots = store.index_snapshots(index)
    if snapshots.empty:
        return ()
    changes = store.index_changes(index)
    # The newest snapshot at or before ``day`` (else the oldest), walked to ``day`` through the changes.
    eligible = snapshots[snapshots["day"] <= pd.Timestamp(day)]
    snap_day = (eligible if len(eligible) else snapshots)["day"].max()
    listed = snapshots.loc[snapshots["day"] == snap_day, "vt_symbol"].tolist()
    symbols = sorted(set(listed) | set(changes["vt_symbol"]))
    membership = rebuild_membership(snap_day, listed, changes, pd.DatetimeIndex([pd.Timestamp(day)]), symbols)
    return tuple(s for s, member in zip(symbols, membership.member[0]) if member)


@dataclass(frozen=True)
class ResolvedList:
    """A list's symbols on a day, and which of them came from the strategies' pools."""

    symbols: tuple[str, ...]
    pool_members: frozenset[str]


def load_watchlists(day: date, path: Path | None = None, pools_file: Path | str | None = None
                    ) -> dict[str, ResolvedList]:
    """List name → its symbols on ``day``. Bad content raises InputRejected naming ``file:line``."""
    path = path or TEMP_DIR / WATCHLIST_FILENAME
    spec_file = read_watchlists(path)
    pools: dict[str, list[str]] = {}
    if any(s.pools for s in spec_file.lists.values()):
        pools = dict(read_pools(pools_file).pools)
    text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else ""
    out = {}
    for name, spec in spec_file.lists.items():
        symbols = resolve(spec, pools, lambda index: index_members(index, day), str(path),
                          lambda field, name=name: yaml_line(text, ("lists", name, field)), f"lists.{name}.")
        out[name] = ResolvedList(symbols, frozenset(s for p in spec.pools for s in pools[p]))
    return out
