"""``--watchlist NAME|FILE``: a pool of ``configs/etf_pools.yaml`` by name, or a YAML file of symbols (with
``--gateway xt`` also a list of the runtime folder's watchlist file, resolved by the monitor app).

A file is a mapping with ``symbols:`` (other keys, e.g. ``name:``, are ignored)::

    name: banks
    symbols: [600000.SSE, 000001.SZSE]
"""

from __future__ import annotations

from pathlib import Path

from ..config import read_yaml
from ..errors import InputRejected, Problem
from ..monitor.watchlist import VT_SYMBOL
from ..rotation.pools import read_pools


def read_watchlist(spec: str, *, required: bool = True) -> list[str] | None:
    """The watchlist's symbols in order, without duplicates; errors name the file. A name that is neither a
    file nor a pool is refused listing the pools, or with ``required=False`` gives None (the live monitor then
    looks it up in the runtime folder's watchlist file)."""
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return _from_file(path)
    pools = read_pools().pools
    if spec in pools:
        return list(pools[spec])
    if not required:
        return None
    raise InputRejected(Problem("--watchlist", None, f"{spec!r} is neither a file nor a pool ({', '.join(pools)})"))


def _from_file(path: Path) -> list[str]:
    symbols = read_yaml(path).get("symbols")
    if not isinstance(symbols, list) or not symbols:
        raise InputRejected(Problem(str(path), None, "symbols: a non-empty list of vt_symbols is needed "
                                    "(e.g. symbols: [600000.SSE, 000001.SZSE])"))
    bad = [str(s) for s in symbols if not VT_SYMBOL.match(str(s))]
    if bad:
        raise InputRejected(Problem(str(path), None, f"symbols: {', '.join(bad)} not CODE.SSE, CODE.SZSE or CODE.BSE"))
    return list(dict.fromkeys(str(s) for s in symbols))
