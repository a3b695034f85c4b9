"""Watchlists: the user's lists in the runtime folder, resolved against the strategies' pools and index members.

The file (``.vntrader/rotation_watchlists.yaml``) names lists; each list takes explicit symbols, pools of the
rotation pools file and/or an index whose stored constituents (point-in-time, on the day the monitor starts)
join it::

    lists:
      banks:
        symbols: [600000.SSE, 000001.SZSE]
      etf:
        pools: [A_SHARE, QDII]        # configs/etf_pools.yaml (or the strategy's pools_file)
      csi300:
        index: 000300.SSE             # constituents stored by ``run.py import`` of index membership

Resolving needs no database here: the caller passes the pools and a function giving an index's members.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

from pydantic import Field, field_validator

from ..config import Frozen, read_yaml, validate_at
from ..errors import InputRejected, Problem

__all__ = ["WATCHLIST_FILENAME", "WatchlistFile", "WatchlistSpec", "read_watchlists", "resolve"]

WATCHLIST_FILENAME = "rotation_watchlists.yaml"
VT_SYMBOL = re.compile(r"^\d{6}\.(SSE|SZSE|BSE)$")


def _check_symbols(values: list[str]) -> list[str]:
    bad = [v for v in values if not VT_SYMBOL.match(str(v))]
    if bad:
        raise ValueError(f"{bad[0]!r} is not CODE.SSE, CODE.SZSE or CODE.BSE (six digits)")
    return values


class WatchlistSpec(Frozen):
    """One list: explicit symbols, then the members of the named pools, then the index's constituents."""

    symbols: list[str] = Field(default_factory=list)
    pools: list[str] = Field(default_factory=list)
    index: str | None = None

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, values: list[str]) -> list[str]:
        return _check_symbols(values)

    @field_validator("index")
    @classmethod
    def _index(cls, value: str | None) -> str | None:
        if value is not None:
            _check_symbols([value])
        return value


class WatchlistFile(Frozen):
    lists: dict[str, WatchlistSpec] = Field(default_factory=dict)


def read_watchlists(path: Path) -> WatchlistFile:
    """The validated file; a missing file is an empty one; bad content raises InputRejected naming ``file:line``."""
    if not Path(path).exists():
        return WatchlistFile()
    raw = read_yaml(path)
    return validate_at(WatchlistFile, raw, str(path), Path(path).read_text(encoding="utf-8"))


def resolve(spec: WatchlistSpec, pools: Mapping[str, Sequence[str]],
            index_members: Callable[[str], Sequence[str]], source: str = "watchlist",
            line_of: Callable[[str], int | None] = lambda field: None, prefix: str = "") -> tuple[str, ...]:
    """The list's symbols in order (explicit, pools, index), each once. An unknown pool or an index without
    stored members raises InputRejected naming ``source``, the field's line (``line_of(field)``) and the field
    (after ``prefix``)."""
    out: dict[str, None] = dict.fromkeys(spec.symbols)
    for name in spec.pools:
        if name not in pools:
            known = ", ".join(pools)
            reason = f"{prefix}pools: {name!r} is not a pool; known: {known}"
            raise InputRejected(Problem(source, line_of("pools"), reason))
        out.update(dict.fromkeys(pools[name]))
    if spec.index is not None:
        members = index_members(spec.index)
        if not members:
            reason = f"{prefix}index: no constituents of {spec.index} are stored (import its membership first)"
            raise InputRejected(Problem(source, line_of("index"), reason))
        out.update(dict.fromkeys(members))
    return tuple(out)
