"""A :class:`MarketData` as a folder of ``.npy`` arrays, opened memory-mapped (whole-market research).

At 5 000 stocks × 20 years one float64 day × symbol array is about 194 MB and a prepared VQM market holds
two dozen of them. Opened with ``mmap=True`` the arrays are copy-on-write maps of the files: a page is resident
only once a run reads it (the simulation reads the open and the last close whole, the split and dividend
arrays on the ex-dates only, a monthly strategy its decision rows), and every page read counts in the
process's resident set like any other memory (a write to a mapped array stays in the process). ``mmap=False``
reads every array into memory.

The store keeps the market's per-day count of corporate actions (``MarketData.actions_per_day``), so that a
run finds the ex-dates without reading the split and dividend arrays whole. Each file is flushed to disk and
its pages dropped from the page cache once written: a large write leaves the file cached in large blocks
(2 MiB folios on Linux 6.18), and a mapped read of one row then maps the whole block around it, so a monthly
strategy reading one row in twenty would map every page of its arrays. Read back from disk, only the pages
near what is read are mapped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.market_data import MarketData

META = "market.json"


def save_market(market: MarketData, folder: Path) -> Path:
    """Write every array of ``market`` (extras included) under ``folder``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extras").mkdir(exist_ok=True)
    if market.actions_per_day is None:
        market = dataclasses.replace(market, actions_per_day=market.action_counts())
    arrays = []
    for name in market.__dataclass_fields__:
        value = getattr(market, name)
        if isinstance(value, np.ndarray):
            _write(folder / f"{name}.npy", value)
            arrays.append(name)
    for name, value in market.extras.items():
        _write(folder / "extras" / f"{name}.npy", value)
    _write(folder / "days.npy", market.days.values.astype("datetime64[ns]"))
    readonly = [name for name in arrays if not getattr(market, name).flags.writeable]
    readonly += [f"extras/{name}" for name, value in market.extras.items() if not value.flags.writeable]
    meta = {"symbols": list(market.symbols), "arrays": arrays, "extras": list(market.extras), "readonly": readonly}
    (folder / META).write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _write(path: Path, value: np.ndarray) -> None:
    """``np.save``, then the file on disk and out of the page cache (see the module's docstring)."""
    with open(path, "wb") as file:
        np.save(file, value)
        file.flush()
        os.fsync(file.fileno())
        if hasattr(os, "posix_fadvise"):  # (not on Windows or macOS: nothing to drop there)
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def open_market(folder: Path, mmap: bool = True) -> MarketData:
    """The market saved by :func:`save_market`, its arrays mapped (``mmap``) or read.

    Mapped copy-on-write: a write stays in this process and never reaches the files. Each array is writable
    or read-only as it was when saved, so the compiled kernel runs the same machine code on the opened market
    as on the one saved (a read-only array is another numba type: another compilation)."""
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    mode = "c" if mmap else None
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode=mode) for name in meta["arrays"]}
    extras = {name: np.load(folder / "extras" / f"{name}.npy", mmap_mode=mode) for name in meta["extras"]}
    for name in meta["readonly"]:  # as saved: e.g. the loader's price panels are read-only views
        (extras[name[len("extras/"):]] if name.startswith("extras/") else arrays[name]).flags.writeable = False
    days = pd.DatetimeIndex(np.load(folder / "days.npy"))
    return MarketData(days=days, symbols=tuple(meta["symbols"]), **arrays, extras=extras)
